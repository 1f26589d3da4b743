"""Ctrl-C as a request, not an exception: the command lines stop cleanly at the next step.

``sigint_requests()`` installs, for the duration of a ``with`` block, a SIGINT handler that only
sets a ``threading.Event``; the command line polls it between steps (training) or between
timed waits (a sweep) and stops its work itself, so no ``KeyboardInterrupt`` is ever raised
inside a torch call or a ``Thread.join``. (On CPython < 3.13 a KeyboardInterrupt raised inside
``Thread.join`` marks the still-running thread as finished; the local sweep's worker then died
with "terminate called without an active exception".) The handler does nothing else: printing
from a signal handler can re-enter a buffered stream. The previous handler comes back when the
block ends. Off the main thread (where Python cannot install handlers) the event is simply
never set.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def sigint_requests() -> Iterator[threading.Event]:
    """An Event set by SIGINT (Ctrl-C) while the block runs (module docstring)."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        requested.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)
