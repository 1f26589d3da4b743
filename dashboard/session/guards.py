"""What ties a session's work to its browser tab: the grace after the tab goes, and the guard
that stops a sweep then (a lab's is ``lab.CloseOnRelease``). Plain Python, no ``st.*``: the
session-scoped ``st.cache_resource`` that holds a guard is in ``screens/resources.py``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

CLOSE_GRACE_ENV = "GRU_LAB_CLOSE_GRACE_S"  # seconds; default 30


def close_grace_s() -> float:
    """A closed tab's job stops this long after its websocket goes (a reconnect cancels it)."""
    return float(os.environ.get(CLOSE_GRACE_ENV, "30"))


class StopOnRelease:
    """A sweep tied to its session: when the tab goes, the sweep stops after the grace."""

    def __init__(self, job: Any) -> None:
        self.job = job

    def release(self) -> None:
        timer = threading.Timer(close_grace_s(), self.job.stop, kwargs={"wait": False})
        timer.daemon = True
        timer.start()
