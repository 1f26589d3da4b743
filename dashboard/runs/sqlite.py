"""Saved runs in an embedded SQLite database (stdlib ``sqlite3``), one file per server.

Every operation opens its own short connection, so any of Streamlit's script threads may
call it; a process lock serialises writers, and ``BEGIN IMMEDIATE`` makes a save and its
evictions one transaction even across processes sharing the file. Connections after the
first open use ``mode=rw``: a file deleted mid-session is an error, not a new empty database.

Failures raise ``StorageError`` (``StoreBusyError`` when another connection held the write lock
past ``busy_timeout_s``); a damaged, foreign or empty (0-byte) file found when opening raises
``CorruptStoreError``. A ``shares`` table beside the runs keeps the watch links (``StoredShare``),
a ``progress`` table each bench's investigation progress (one JSON object per browser token).
``run_store.open_run_store`` turns both errors into a message, a backup and an in-memory fallback,
so this class stays a plain adapter that a server database can replace (same methods, same errors).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from dashboard.runs.codec import decode_frame, encode_frame
from dashboard.runs.records import (
    PER_TOKEN,
    TOTAL,
    CorruptStoreError,
    StorageError,
    StoreBusyError,
    StoredRun,
    StoredShare,
    check_bounds,
    check_pin_room,
    check_run_id,
    check_token,
    evictions,
    progress_from_json,
    progress_json,
    unreadable,
)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 10.0  # how long a connection waits for another writer's lock
_FIELDS = ("run_id", "name", "created", "pinned", "corpus_name")
_JSON_FIELDS = ("start_config", "end_config", "outcome")
_FRAME_FIELDS = ("steps", "epochs")
_COLUMNS = ("seq", "token", *_FIELDS, *_JSON_FIELDS, *_FRAME_FIELDS)
_SELECT = f"SELECT {', '.join(_FIELDS + _JSON_FIELDS + _FRAME_FIELDS)} FROM runs"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order: breaks ties in created
    token TEXT NOT NULL,                    -- browser token (run_records.valid_token)
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,                  -- epoch seconds
    pinned INTEGER NOT NULL,                -- 0 or 1
    corpus_name TEXT NOT NULL,
    start_config TEXT NOT NULL,             -- JSON object
    end_config TEXT NOT NULL,               -- JSON object
    outcome TEXT NOT NULL,                  -- JSON object
    steps BLOB NOT NULL,                    -- codec.encode_frame (Arrow IPC; old rows GLF1)
    epochs BLOB NOT NULL,
    UNIQUE (token, run_id)
);
CREATE INDEX IF NOT EXISTS runs_by_token ON runs (token, created, seq);
CREATE INDEX IF NOT EXISTS runs_by_age ON runs (created, seq);
"""
_SHARES = """
CREATE TABLE IF NOT EXISTS shares (
    watch TEXT PRIMARY KEY,                 -- the watch link's token
    bench TEXT NOT NULL,                    -- the owner's browser token
    shared_at REAL NOT NULL                 -- epoch seconds
);
CREATE TABLE IF NOT EXISTS progress (       -- a bench's investigation progress
    token TEXT PRIMARY KEY,                 -- the bench's browser token
    body TEXT NOT NULL                      -- JSON object (investigate/progress.py)
);
"""


class SQLiteRunStore:
    """A RunStore in the SQLite file at ``path`` (created, with its folder, if missing)."""

    def __init__(
        self,
        path: str | Path,
        *,
        per_token: int = PER_TOKEN,
        total: int = TOTAL,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        self.per_token, self.total = check_bounds(per_token, total)
        self.busy_timeout_s = busy_timeout_s
        self.status_message: str | None = None  # a Note when stored rows could not be read
        self.notice: str | None = None
        self._uri = self.path.as_uri()
        self._write_lock = threading.Lock()
        self._open()

    # -- the RunStore interface --------------------------------------------------------------
    def list_runs(self, token: str) -> list[StoredRun]:
        """The token's runs, oldest first; rows that fail to decode are skipped and noted."""
        check_token(token)
        with self._connection() as conn:
            rows = conn.execute(_SELECT + " WHERE token = ? ORDER BY created, seq", (token,))
            rows = rows.fetchall()
        return [run for run in map(self._decode, rows) if run is not None]

    def get(self, token: str, run_id: str) -> StoredRun | None:
        """The token's run with this id, or None (also for a damaged row, noted)."""
        check_token(token)
        with self._connection() as conn:
            row = conn.execute(
                _SELECT + " WHERE token = ? AND run_id = ?", (token, run_id)
            ).fetchone()
        return None if row is None else self._decode(row)

    def save(self, token: str, run: StoredRun) -> None:
        """Insert or replace (same run_id) ``run``, then evict beyond the bounds."""
        check_token(token)
        row = _to_row(token, run)
        with self._transaction() as conn:
            if run.pinned:
                check_pin_room(self._pinned_others(conn, token, run.run_id), self.per_token)
            names = ", ".join(("token",) + _FIELDS + _JSON_FIELDS + _FRAME_FIELDS)
            updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[3:])
            conn.execute(
                f"INSERT INTO runs ({names}) VALUES ({', '.join('?' * len(row))}) "
                f"ON CONFLICT (token, run_id) DO UPDATE SET {updates}",
                row,
            )
            mine = conn.execute(
                "SELECT run_id, pinned FROM runs WHERE token = ? ORDER BY created, seq", (token,)
            ).fetchall()
            drop = evictions([(r, bool(p)) for r, p in mine], self.per_token, run.run_id)
            conn.executemany(
                "DELETE FROM runs WHERE token = ? AND run_id = ?", [(token, r) for r in drop]
            )
            (count,) = conn.execute("SELECT count(*) FROM runs").fetchone()
            if count > self.total:
                every = conn.execute(
                    "SELECT token, run_id, pinned FROM runs ORDER BY created, seq"
                ).fetchall()
                rows = [((t, r), bool(p)) for t, r, p in every]
                conn.executemany(
                    "DELETE FROM runs WHERE token = ? AND run_id = ?",
                    evictions(rows, self.total, (token, run.run_id)),
                )

    def set_pinned(self, token: str, run_id: str, pinned: bool) -> None:
        """Pin or unpin a run (a no-op for an unknown run; ValueError when pins are full)."""
        check_token(token)
        with self._transaction() as conn:
            if pinned:
                check_pin_room(self._pinned_others(conn, token, run_id), self.per_token)
            conn.execute(
                "UPDATE runs SET pinned = ? WHERE token = ? AND run_id = ?",
                (int(bool(pinned)), token, run_id),
            )

    def delete(self, token: str, run_id: str) -> None:
        """Forget a run (a no-op for an unknown run)."""
        check_token(token)
        with self._transaction() as conn:
            conn.execute("DELETE FROM runs WHERE token = ? AND run_id = ?", (token, run_id))

    # -- shared runs' watch links ---------------------------------------------------------
    def save_share(self, share: StoredShare) -> None:
        """Keep a watch link; a bench has one (its older links end)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM shares WHERE bench = ?", (share.bench,))
            conn.execute(
                "INSERT OR REPLACE INTO shares (watch, bench, shared_at) VALUES (?, ?, ?)",
                (share.watch, share.bench, float(share.shared_at)),
            )

    def get_share(self, watch: str) -> StoredShare | None:
        return self._share("watch", watch)

    def share_of_bench(self, bench: str) -> StoredShare | None:
        return self._share("bench", bench)

    def delete_share(self, watch: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM shares WHERE watch = ?", (watch,))

    def _share(self, column: str, token: str) -> StoredShare | None:
        check_token(token)
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT watch, bench, shared_at FROM shares WHERE {column} = ? "
                "ORDER BY shared_at DESC LIMIT 1",
                (token,),
            ).fetchone()
        return None if row is None else StoredShare(*row)

    # -- investigation progress ------------------------------------------------------------
    def save_progress(self, token: str, body: dict[str, Any]) -> None:
        row = (check_token(token), progress_json(body))
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO progress (token, body) VALUES (?, ?)", row)

    def get_progress(self, token: str) -> dict[str, Any] | None:
        with self._connection() as conn:
            query = "SELECT body FROM progress WHERE token = ?"
            row = conn.execute(query, (check_token(token),)).fetchone()
        return None if row is None else progress_from_json(row[0])  # ValueError: damaged

    # -- connections -------------------------------------------------------------------------
    def _open(self) -> None:
        """Create or check the file: CorruptStoreError if damaged, foreign or empty."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            empty = self.path.is_file() and self.path.stat().st_size == 0
        except OSError as err:
            raise StorageError(f"cannot create {self.path.parent}: {err.strerror or err}") from err
        if empty:  # SQLite would take it for a new database: runs that were there are gone
            raise CorruptStoreError("the file is empty (0 bytes): it was truncated")
        with self._write_lock, self._connection(create=True) as conn:
            try:
                check = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            except sqlite3.OperationalError:
                raise  # locked or unreadable: not evidence of damage
            except sqlite3.DatabaseError as err:
                raise CorruptStoreError(str(err)) from err
            if check != ["ok"]:
                raise CorruptStoreError("integrity check: " + "; ".join(map(str, check[:3])))
            if tables - {"sqlite_sequence"}:
                self._check_schema(conn, tables)
                if not {"shares", "progress"} <= tables:  # a file from before they were kept
                    conn.executescript(_SHARES)
            else:
                with suppress(sqlite3.Error):  # WAL is an optimisation, not a requirement
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(  # one transaction: a second process may be creating it too
                    f"BEGIN IMMEDIATE; {_SCHEMA} {_SHARES} INSERT INTO schema_version SELECT "
                    f"{SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM schema_version); COMMIT;"
                )

    def _check_schema(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        if not {"schema_version", "runs"} <= tables:
            raise CorruptStoreError(f"it holds other tables ({', '.join(sorted(tables))})")
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
        if len(versions) == 1 and isinstance(versions[0], int) and versions[0] > SCHEMA_VERSION:
            raise StorageError(
                f"it was written by a newer GRU Lab (schema {versions[0]}; this one reads "
                f"{SCHEMA_VERSION}); it was left as it is"
            )
        if versions != [SCHEMA_VERSION]:
            raise CorruptStoreError(f"unexpected schema version {versions!r}")
        columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
        if columns != set(_COLUMNS):
            raise CorruptStoreError("the runs table does not have GRU Lab's columns")

    @contextmanager
    def _connection(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        """A short-lived autocommit connection; sqlite3 and OS errors become StorageError."""
        uri = f"{self._uri}?mode={'rwc' if create else 'rw'}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout_s, isolation_level=None)
        except (sqlite3.Error, OSError) as err:
            raise StorageError(f"cannot open {self.path}: {err}") from err
        try:
            yield conn
        except sqlite3.OperationalError as err:
            if getattr(err, "sqlite_errorcode", None) in (
                sqlite3.SQLITE_BUSY,
                sqlite3.SQLITE_LOCKED,
            ):
                raise StoreBusyError(
                    f"{self.path} stayed locked by another program for over "
                    f"{self.busy_timeout_s:g} s"
                ) from err
            raise StorageError(f"{self.path}: {err}") from err
        except (sqlite3.Error, OSError) as err:
            raise StorageError(f"{self.path}: {err}") from err
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed on success, rolled back on any exception."""
        with self._write_lock, self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _decode(self, row: tuple[Any, ...]) -> StoredRun | None:
        """A row as a StoredRun, or None with status_message set if it is damaged."""
        try:
            return _from_row(row)
        except ValueError as err:
            self.status_message = unreadable(self.path, err)
            return None

    @staticmethod
    def _pinned_others(conn: sqlite3.Connection, token: str, run_id: str) -> int:
        query = "SELECT count(*) FROM runs WHERE token = ? AND pinned = 1 AND run_id != ?"
        return int(conn.execute(query, (token, run_id)).fetchone()[0])


# -- rows --------------------------------------------------------------------------------
def _to_row(token: str, run: StoredRun) -> tuple[Any, ...]:
    """A StoredRun as the values for (token, *_FIELDS, *_JSON_FIELDS, *_FRAME_FIELDS)."""
    head = (token, run.run_id, run.name, float(run.created), int(run.pinned), run.corpus_name)
    try:
        texts = tuple(json.dumps(getattr(run, f), allow_nan=True) for f in _JSON_FIELDS)
    except TypeError as err:
        raise ValueError(
            f"run {run.run_id}: configs and outcome must be plain JSON: {err}"
        ) from err
    return head + texts + tuple(encode_frame(getattr(run, f)) for f in _FRAME_FIELDS)


def _from_row(row: tuple[Any, ...]) -> StoredRun:
    """A row from _SELECT back to a StoredRun (ValueError if any part is damaged)."""
    run_id, name, created, pinned, corpus_name, *texts, steps, epochs = row
    dicts = []
    for text in texts:
        try:
            value = json.loads(text)
        except (TypeError, json.JSONDecodeError, RecursionError) as err:
            raise ValueError(f"run {run_id!r} has damaged JSON: {err}") from err
        if not isinstance(value, dict):
            raise ValueError(f"run {run_id!r} has a JSON field that is not an object")
        dicts.append(value)
    start_config, end_config, outcome = dicts
    return StoredRun(
        run_id=check_run_id(run_id),
        name=name,
        created=created,
        pinned=bool(pinned),
        start_config=start_config,
        end_config=end_config,
        corpus_name=corpus_name,
        outcome=outcome,
        steps=decode_frame(steps),
        epochs=decode_frame(epochs),
    )
