"""Entry point: ``python -m gru_core --help``."""

import sys

from gru_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
