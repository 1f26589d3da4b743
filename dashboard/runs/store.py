"""Saved runs that outlive a reload: the ``RunStore`` interface and how the dashboard gets one.

Runs are keyed by an unguessable browser token (``new_token``; the page keeps it in its URL
and a cookie), so after F5 or a server restart the same token lists the same runs, and one
token never sees another's. Plain Python, no ``st.*``.

Bounds, the same in every store: at most ``per_token`` runs per token and ``total`` overall;
past a bound the oldest unpinned run goes first (``records.evictions``). At most
``per_token - 1`` runs per token can be pinned (ValueError past that), so a finished run can
always be saved; pinned runs go only when the global bound is full of pinned runs.

``open_run_store`` never raises for a bad database, and never fails silently:

- a damaged, foreign or empty (truncated) file is renamed to a timestamped backup beside it
  and a new one is started; ``notice`` says so (the page tells each session once);
- a file locked by another program at start is opened at the next call; a failure later
  (locked past the busy timeout, disk full, file deleted) keeps runs in memory only until
  the disk works again (``fallback.FallbackRunStore``); ``status_message`` says so meanwhile;
- only a location that cannot hold a database at all (or a newer GRU Lab's file) gives a
  ``MemoryRunStore`` for the whole process, and its ``status_message`` says that.

A server database for a multi-server deployment is another class with the RunStore methods
that raises ``StorageError`` when it fails; ``FallbackRunStore`` handles the rest.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from dashboard.runs.fallback import MIRROR_TOTAL, FallbackRunStore
from dashboard.runs.memory import MemoryRunStore
from dashboard.runs.records import (
    PER_TOKEN,
    TOTAL,
    CorruptStoreError,
    Note,
    RunStore,
    StorageError,
    StoreBusyError,
    StoredRun,
    StoredShare,
    new_run_id,
    new_token,
    valid_token,
)
from dashboard.runs.sqlite import BUSY_TIMEOUT_S, SQLiteRunStore
from gru_core.i18n import N_
from gru_core.sources import default_cache_dir

__all__ = [
    "RunStore",
    "MemoryRunStore",
    "FallbackRunStore",
    "SQLiteRunStore",
    "StoredRun",
    "StoredShare",
    "StorageError",
    "open_run_store",
    "MIRROR_TOTAL",
    "PER_TOKEN",
    "TOTAL",
    "new_token",
    "new_run_id",
    "valid_token",
]

RUNS_DB_ENV = "GRU_LAB_RUNS_DB"  # env var: where the database lives (a file path)
RUNS_DB_FILE = "runs.sqlite3"  # its name under default_cache_dir() otherwise
_IN_MEMORY = N_("saved runs are kept in memory until the server restarts")


def open_run_store(
    path: str | os.PathLike[str] | None = None,
    *,
    per_token: int = PER_TOKEN,
    total: int = TOTAL,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
) -> RunStore:
    """The dashboard's run store; never raises for a damaged or unusable database.

    The file is ``path``, else ``$GRU_LAB_RUNS_DB``, else ``<default_cache_dir()>/runs.sqlite3``.
    A damaged, foreign or empty file is renamed to ``<file>.corrupt-YYYYmmdd-HHMMSS`` and a new
    one is started (``notice`` says so); a location that cannot hold a database gives a
    MemoryRunStore (``status_message`` says so). ``busy_timeout_s``: how long a call waits
    for another program's write lock. ValueError only for bad bounds.
    """
    where = Path(path or os.environ.get(RUNS_DB_ENV) or default_cache_dir() / RUNS_DB_FILE)
    where = where.expanduser()
    bounds = {"per_token": per_token, "total": total}

    def sqlite() -> SQLiteRunStore:
        return SQLiteRunStore(where, **bounds, busy_timeout_s=busy_timeout_s)

    note = None
    try:
        return FallbackRunStore(sqlite(), **bounds)
    except CorruptStoreError as err:
        try:
            backup = _move_aside(where)
        except OSError as move_err:
            message = Note(
                N_(
                    "The saved-runs database at {where} is damaged ({err}) and could not be "
                    "moved aside ({reason}); {in_memory}."
                ),
                where=where, err=err, reason=move_err.strerror or move_err,
                in_memory=Note(_IN_MEMORY),
            )  # fmt: skip
            return MemoryRunStore(**bounds, status_message=message)
        note = Note(
            N_(
                "The saved-runs database at {where} was damaged ({err}); it was kept as "
                "{backup} and a new, empty one was started."
            ),
            where=where, err=err, backup=backup,
        )  # fmt: skip
    except StoreBusyError as err:  # the file is fine: open it at the next call
        problem = Note(
            N_("The saved-runs database is busy ({err}); it is tried again at each save."),
            err=err,
        )
        return FallbackRunStore(None, **bounds, reopen=sqlite, problem=problem)
    except StorageError as err:
        message = Note(
            N_("The saved-runs database at {where} cannot be used ({err}); {in_memory}."),
            where=where, err=err, in_memory=Note(_IN_MEMORY),
        )  # fmt: skip
        return MemoryRunStore(**bounds, status_message=message)
    try:
        return FallbackRunStore(sqlite(), **bounds, notice=note)
    except StorageError as err:
        message = note.then(
            Note(
                N_("The new one cannot be used either ({err}); {in_memory}."),
                err=err,
                in_memory=Note(_IN_MEMORY),
            )  # fmt: skip
        )
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
