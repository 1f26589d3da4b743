"""Which benches have a run in flight, across the server's sessions. Plain Python, no ``st.*``.

A bench (its ``?bench=`` token) may be open in several sessions: a second tab, or a page left
for a new one while its run was ending (that session's lab saves the run when it ends, up to
the close grace after its tab has gone). The investigations page redraws its progress while
any lab of its bench is still training or saving (``Lab.active``), so a run saved by another
session ticks its step without a click. The shared instance is ``screens/resources.py``'s
``bench_work()``.
"""

from __future__ import annotations

import threading
import weakref

from dashboard.session.lab import Lab


class BenchWork:
    """The labs of every session, by bench token (weakly held: a session gone, its lab goes).
    Thread-safe."""

    def __init__(self) -> None:
        self._labs: dict[str, weakref.WeakValueDictionary[int, Lab]] = {}  # by id(lab)
        self._lock = threading.Lock()

    def add(self, token: str, lab: Lab) -> None:
        """``lab`` works for the bench ``token`` (adding it again changes nothing)."""
        with self._lock:
            self._labs.setdefault(token, weakref.WeakValueDictionary())[id(lab)] = lab

    def busy(self, token: str) -> bool:
        """Whether a lab of the bench has a run training, or ended and still being saved."""
        with self._lock:
            held = self._labs.get(token)
            labs = list(held.values()) if held is not None else []
            if not labs:
                self._labs.pop(token, None)  # every session of the bench has gone
        return any(lab.active for lab in labs)
