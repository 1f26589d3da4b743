"""A disk store that never fails silently: ``FallbackRunStore``.

Every change goes to the primary store (the SQLite file) and to a bounded in-memory mirror.
When the primary raises ``StorageError`` (locked by another program past its busy timeout,
disk full, the file deleted), the change is kept in the mirror and in a backlog, and
``status_message`` says that runs are not reaching the disk. Every later call tries the
primary again, first replaying the backlog, so the runs saved meanwhile reach the disk as
soon as it works and the message goes away; nothing switches to memory for good.

A primary that could not even be opened (locked at start) is opened at the next call
(``reopen``). Plain Python, no ``st.*``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from functools import reduce
from typing import Any, TypeVar

from dashboard.runs.memory import MemoryRunStore
from dashboard.runs.records import (
    PER_TOKEN,
    TOTAL,
    Note,
    RunStore,
    StorageError,
    StoredRun,
    StoredShare,
    check_token,
)
from gru_core.i18n import N_

MIRROR_TOTAL = 256  # runs kept in memory in case the database fails; also the backlog's bound
PENDING = N_("runs saved now are kept in memory only, and written to the disk once it works again")
T = TypeVar("T")
# What the primary failed at, by the verb the store passes (one sentence each, to translate).
_TRIED = {
    "read": N_(
        "Could not read the saved-runs database ({err}): saved runs are not reaching the "
        "disk; {pending}."
    ),
    "write to": N_(
        "Could not write to the saved-runs database ({err}): saved runs are not reaching the "
        "disk; {pending}."
    ),
}


class FallbackRunStore:
    """A primary RunStore, a memory mirror, and a backlog of changes the primary missed."""

    def __init__(
        self,
        primary: RunStore | None,
        *,
        per_token: int = PER_TOKEN,
        total: int = TOTAL,
        notice: str | None = None,
        reopen: Callable[[], RunStore] | None = None,
        problem: str | None = None,
    ) -> None:
        """``primary`` None: not open yet, ``reopen()`` opens it (``problem`` says why not)."""
        if primary is None and reopen is None:
            raise ValueError("FallbackRunStore needs a primary store or a way to open one")
        self._primary = primary
        self._reopen = reopen
        self._mirror: MemoryRunStore = MemoryRunStore(
            per_token=per_token, total=min(total, max(per_token, MIRROR_TOTAL))
        )
        self.notice = notice  # what happened at start (a damaged file kept aside), told once
        self._problem = problem  # why changes are not reaching the primary now, else None
        self._backlog: deque[Callable[[RunStore], None]] = deque(maxlen=MIRROR_TOTAL)
        self._lock = threading.RLock()  # held while the backlog is replayed

    @property
    def degraded(self) -> bool:
        """True while the primary is failing or owes changes: runs live in memory only."""
        return self._problem is not None or bool(self._backlog)

    @property
    def status_message(self) -> str | None:
        """The trouble now (runs not reaching the disk, a damaged row), else None."""
        primary = self._primary
        parts = [self._problem, None if primary is None else primary.status_message]
        shown = [p if isinstance(p, Note) else Note("{text}", text=p) for p in parts if p]
        return reduce(Note.then, shown) if shown else None

    # -- runs --------------------------------------------------------------------------------
    def list_runs(self, token: str) -> list[StoredRun]:
        check_token(token)
        runs = self._try("read", lambda store: store.list_runs(token))
        if runs is None:
            return self._mirror.list_runs(token)
        self._mirror.replace_token(token, runs)
        return runs

    def get(self, token: str, run_id: str) -> StoredRun | None:
        check_token(token)
        found = self._try("read", lambda store: [store.get(token, run_id)])
        return self._mirror.get(token, run_id) if found is None else found[0]

    def save(self, token: str, run: StoredRun) -> None:
        check_token(token)
        self._change(lambda store: store.save(token, run))

    def set_pinned(self, token: str, run_id: str, pinned: bool) -> None:
        check_token(token)
        self._change(lambda store: store.set_pinned(token, run_id, pinned))

    def delete(self, token: str, run_id: str) -> None:
        check_token(token)
        self._change(lambda store: store.delete(token, run_id))

    # -- watch links -------------------------------------------------------------------------
    def save_share(self, share: StoredShare) -> None:
        self._change(lambda store: store.save_share(share))

    def get_share(self, watch: str) -> StoredShare | None:
        found = self._try("read", lambda store: [store.get_share(watch)])
        return self._mirror.get_share(watch) if found is None else found[0]

    def share_of_bench(self, bench: str) -> StoredShare | None:
        found = self._try("read", lambda store: [store.share_of_bench(bench)])
        return self._mirror.share_of_bench(bench) if found is None else found[0]

    def delete_share(self, watch: str) -> None:
        self._change(lambda store: store.delete_share(watch))

    # -- investigation progress --------------------------------------------------------------
    def save_progress(self, token: str, body: dict[str, Any]) -> None:
        check_token(token)
        self._change(lambda store: store.save_progress(token, body))

    def get_progress(self, token: str) -> dict[str, Any] | None:
        check_token(token)
        found = self._try("read", lambda store: [store.get_progress(token)])
        return self._mirror.get_progress(token) if found is None else found[0]

    # -- the primary, tried again at every call --------------------------------------------
    def _change(self, apply: Callable[[RunStore], None]) -> None:
        """Apply a change to the primary, else keep it for later; then to the mirror."""
        with self._lock:
            if self._try("write to", lambda store: [apply(store)]) is None:
                apply(self._mirror)  # errors (the pin limit) reach the caller
                self._backlog.append(apply)
                return
        with suppress(ValueError):  # the primary accepted; the mirror may know fewer runs
            apply(self._mirror)

    def _try(self, verb: str, call: Callable[[RunStore], T]) -> T | None:
        """``call(primary)`` after replaying the backlog, or None (and the problem noted)
        when the primary fails; the next call tries again."""
        with self._lock:
            try:
                primary = self._open()
                while self._backlog:
                    with suppress(ValueError):  # e.g. a pin that no longer fits: dropped
                        self._backlog[0](primary)
                    self._backlog.popleft()
                result = call(primary)
            except StorageError as err:
                self._problem = Note(_TRIED[verb], err=err, pending=Note(PENDING))
                return None
            self._problem = None
            return result

    def _open(self) -> RunStore:
        if self._primary is None:
            assert self._reopen is not None
            self._primary = self._reopen()
        return self._primary
