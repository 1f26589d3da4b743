"""Saved runs that outlive a reload: the ``RunStore`` interface and how the dashboard gets one.

Runs are keyed by an unguessable browser token (``new_token``; the page keeps it in its URL
or a cookie), so after F5 or a server restart the same token lists the same runs, and one
token never sees another's. Plain Python, no ``st.*``.

Bounds, the same in every store: at most ``per_token`` runs per token and ``total`` overall;
past a bound the oldest unpinned run goes first (``run_records.evictions``). At most
``per_token - 1`` runs per token can be pinned (ValueError past that), so a finished run can
always be saved; pinned runs go only when the global bound is full of pinned runs.

``open_run_store`` never raises for a bad database: a damaged file is kept as a backup and
replaced; an unusable location gives a ``MemoryRunStore``; a failure later (disk full, file
deleted) switches to memory for the rest of the process. Each case sets ``status_message``.
A server database for a multi-server deployment is another class with the RunStore methods
that raises ``StorageError`` when it fails; ``FallbackRunStore`` handles the rest.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Protocol, TypeVar

from dashboard.runs.records import (
    PER_TOKEN,
    TOTAL,
    CorruptStoreError,
    StorageError,
    StoredRun,
    check_bounds,
    check_pin_room,
    check_token,
    evictions,
    new_run_id,
    new_token,
    valid_token,
)
from dashboard.runs.sqlite import SQLiteRunStore
from gru_core.sources import default_cache_dir

__all__ = [
    "RunStore",
    "MemoryRunStore",
    "FallbackRunStore",
    "SQLiteRunStore",
    "StoredRun",
    "StorageError",
    "open_run_store",
    "PER_TOKEN",
    "TOTAL",
    "new_token",
    "new_run_id",
    "valid_token",
]

RUNS_DB_ENV = "GRU_LAB_RUNS_DB"  # env var: where the database lives (a file path)
RUNS_DB_FILE = "runs.sqlite3"  # its name under default_cache_dir() otherwise
MIRROR_TOTAL = 256  # runs FallbackRunStore keeps in memory in case the database fails
_IN_MEMORY = "saved runs are kept in memory until the server restarts"
T = TypeVar("T")


class RunStore(Protocol):
    """Where saved runs live. Every method raises ValueError for an invalid token."""

    @property
    def status_message(self) -> str | None:
        """Why the store is not fully working (a damaged file, memory only), else None."""

    def list_runs(self, token: str) -> list[StoredRun]:
        """The token's runs, oldest first."""

    def get(self, token: str, run_id: str) -> StoredRun | None:
        """One run of the token's, or None."""

    def save(self, token: str, run: StoredRun) -> None:
        """Add or replace (same run_id) a run, then evict beyond the bounds."""

    def set_pinned(self, token: str, run_id: str, pinned: bool) -> None:
        """Pin or unpin (no-op for an unknown run; ValueError past the pin limit)."""

    def delete(self, token: str, run_id: str) -> None:
        """Forget a run (no-op for an unknown run)."""


class MemoryRunStore:
    """A RunStore in this process's memory (thread-safe); gone when the server stops."""

    def __init__(
        self, *, per_token: int = PER_TOKEN, total: int = TOTAL, status_message: str | None = None
    ) -> None:
        self.per_token, self.total = check_bounds(per_token, total)
        self.status_message = status_message
        self._runs: dict[tuple[str, str], tuple[int, StoredRun]] = {}  # key -> (seq, run)
        self._seq = 0
        self._lock = threading.Lock()

    def list_runs(self, token: str) -> list[StoredRun]:
        check_token(token)
        with self._lock:
            return [run for _, run in self._ordered(token)]

    def get(self, token: str, run_id: str) -> StoredRun | None:
        check_token(token)
        with self._lock:
            entry = self._runs.get((token, run_id))
        return None if entry is None else entry[1]

    def save(self, token: str, run: StoredRun) -> None:
        check_token(token)
        key = (token, run.run_id)
        with self._lock:
            if run.pinned:
                check_pin_room(self._pinned_others(key), self.per_token)
            self._put(key, run)
            mine = [(k, r.pinned) for k, r in self._ordered(token)]
            for k in evictions(mine, self.per_token, key):
                del self._runs[k]
            if len(self._runs) > self.total:
                every = [(k, r.pinned) for k, r in self._ordered()]
                for k in evictions(every, self.total, key):
                    del self._runs[k]

    def set_pinned(self, token: str, run_id: str, pinned: bool) -> None:
        check_token(token)
        key = (token, run_id)
        with self._lock:
            entry = self._runs.get(key)
            if entry is None or entry[1].pinned == bool(pinned):
                return
            if pinned:
                check_pin_room(self._pinned_others(key), self.per_token)
            self._runs[key] = (entry[0], dataclasses.replace(entry[1], pinned=bool(pinned)))

    def delete(self, token: str, run_id: str) -> None:
        check_token(token)
        with self._lock:
            self._runs.pop((token, run_id), None)

    def replace_token(self, token: str, runs: list[StoredRun]) -> None:
        """Make ``runs`` (oldest first) the token's runs, as read from another store."""
        check_token(token)
        with self._lock:
            for key in [k for k in self._runs if k[0] == token]:
                del self._runs[key]
            for run in runs[-self.per_token :]:
                self._put((token, run.run_id), run)
            every = [(k, r.pinned) for k, r in self._ordered()]
            for k in evictions(every, self.total, None):
                del self._runs[k]

    def _put(self, key: tuple[str, str], run: StoredRun) -> None:
        """Insert or replace, keeping a replaced run's place in the insertion order."""
        if key in self._runs:
            seq = self._runs[key][0]
        else:
            self._seq += 1
            seq = self._seq
        self._runs[key] = (seq, run)

    def _ordered(self, token: str | None = None) -> list[tuple[tuple[str, str], StoredRun]]:
        """(key, run) pairs, oldest first, for one token or all."""
        items = [(k, v) for k, v in self._runs.items() if token is None or k[0] == token]
        items.sort(key=lambda item: (item[1][1].created, item[1][0]))
        return [(k, run) for k, (_, run) in items]

    def _pinned_others(self, key: tuple[str, str]) -> int:
        return sum(
            1 for k, (_, r) in self._runs.items() if k[0] == key[0] and r.pinned and k != key
        )


class FallbackRunStore:
    """A primary RunStore that switches to memory, for good, when it raises StorageError.

    Every change also goes to a bounded in-memory mirror (``MIRROR_TOTAL`` runs), refreshed
    from each listing, so runs already seen in this process survive the switch.
    """

    def __init__(
        self,
        primary: RunStore,
        *,
        per_token: int = PER_TOKEN,
        total: int = TOTAL,
        status_message: str | None = None,
    ) -> None:
        self._primary: RunStore | None = primary
        self._mirror = MemoryRunStore(per_token=per_token, total=min(total, MIRROR_TOTAL))
        self._message = status_message
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """True once the primary failed and runs live in memory only."""
        return self._primary is None

    @property
    def status_message(self) -> str | None:
        primary = self._primary
        parts = [self._message, None if primary is None else primary.status_message]
        return " ".join(p for p in parts if p) or None

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
        self._change("write to", lambda store: store.save(token, run))

    def set_pinned(self, token: str, run_id: str, pinned: bool) -> None:
        check_token(token)
        self._change("write to", lambda store: store.set_pinned(token, run_id, pinned))

    def delete(self, token: str, run_id: str) -> None:
        check_token(token)
        self._change("write to", lambda store: store.delete(token, run_id))

    def _change(self, verb: str, apply: Callable[[RunStore], None]) -> None:
        """Apply a change to the primary (if still working), then to the mirror."""
        if self._try(verb, lambda store: [apply(store)]) is None:
            apply(self._mirror)  # memory only now: its errors (pin limit) reach the caller
            return
        with suppress(ValueError):  # the primary accepted; the mirror may know fewer runs
            apply(self._mirror)

    def _try(self, verb: str, call: Callable[[RunStore], T]) -> T | None:
        """``call(primary)``, or None once the primary has failed (now or before)."""
        primary = self._primary
        if primary is None:
            return None
        try:
            return call(primary)
        except StorageError as err:
            with self._lock:
                if self._primary is primary:
                    self._primary = None
                    failed = f"Could not {verb} the saved-runs database ({err}); {_IN_MEMORY}."
                    self._message = " ".join(m for m in (self._message, failed) if m)
            return None


def open_run_store(
    path: str | os.PathLike[str] | None = None, *, per_token: int = PER_TOKEN, total: int = TOTAL
) -> RunStore:
    """The dashboard's run store; never raises for a damaged or unusable database.

    The file is ``path``, else ``$GRU_LAB_RUNS_DB``, else ``<default_cache_dir()>/runs.sqlite3``.
    A damaged or foreign file is renamed to ``<file>.corrupt-YYYYmmdd-HHMMSS`` and a new one is
    started; a location that cannot hold a database gives a MemoryRunStore. Both say so in
    ``status_message``. ValueError only for bad bounds.
    """
    where = Path(path or os.environ.get(RUNS_DB_ENV) or default_cache_dir() / RUNS_DB_FILE)
    where = where.expanduser()
    bounds = {"per_token": per_token, "total": total}
    try:
        return FallbackRunStore(SQLiteRunStore(where, **bounds), **bounds)
    except CorruptStoreError as err:
        try:
            backup = _move_aside(where)
        except OSError as move_err:
            message = (
                f"The saved-runs database at {where} is damaged ({err}) and could not be moved "
                f"aside ({move_err.strerror or move_err}); {_IN_MEMORY}."
            )
            return MemoryRunStore(**bounds, status_message=message)
        note = (
            f"The saved-runs database at {where} was damaged ({err}); it was kept as {backup} "
            "and a new, empty one was started."
        )
    except StorageError as err:
        message = f"The saved-runs database at {where} cannot be used ({err}); {_IN_MEMORY}."
        return MemoryRunStore(**bounds, status_message=message)
    try:
        return FallbackRunStore(SQLiteRunStore(where, **bounds), **bounds, status_message=note)
    except StorageError as err:
        message = f"{note} The new one cannot be used either ({err}); {_IN_MEMORY}."
        return MemoryRunStore(**bounds, status_message=message)


def _move_aside(path: Path) -> Path:
    """Rename a damaged database (and its -wal/-shm files) to a timestamped backup."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, backup)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, backup.with_name(backup.name + suffix))
    return backup
