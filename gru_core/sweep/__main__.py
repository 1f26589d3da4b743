"""Entry point: ``python -m gru_core.sweep --help``."""

import sys

from gru_core.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main())
