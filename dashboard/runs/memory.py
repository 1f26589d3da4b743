"""Saved runs in this process's memory: ``MemoryRunStore`` (gone when the server stops).

The store of last resort (a location that cannot hold a database) and the mirror that
``FallbackRunStore`` keeps in case the disk fails. Same bounds and errors as every store.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from dashboard.runs.records import (
    PER_TOKEN,
    TOTAL,
    StoredRun,
    StoredShare,
    check_bounds,
    check_pin_room,
    check_token,
    evictions,
    progress_from_json,
    progress_json,
)


class MemoryRunStore:
    """A RunStore in this process's memory (thread-safe); gone when the server stops."""

    def __init__(
        self, *, per_token: int = PER_TOKEN, total: int = TOTAL, status_message: str | None = None
    ) -> None:
        self.per_token, self.total = check_bounds(per_token, total)
        self.status_message = status_message
        self.notice: str | None = None
        self._shares: dict[str, StoredShare] = {}
        self._progress: dict[str, str] = {}  # token -> JSON text
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

    def save_share(self, share: StoredShare) -> None:
        with self._lock:  # a bench has one watch link: its older ones end
            for watch in [w for w, s in self._shares.items() if s.bench == share.bench]:
                del self._shares[watch]
            self._shares[share.watch] = share

    def get_share(self, watch: str) -> StoredShare | None:
        with self._lock:
            return self._shares.get(watch)

    def share_of_bench(self, bench: str) -> StoredShare | None:
        with self._lock:
            mine = [s for s in self._shares.values() if s.bench == bench]
        return max(mine, key=lambda s: s.shared_at, default=None)

    def delete_share(self, watch: str) -> None:
        with self._lock:
            self._shares.pop(watch, None)

    def save_progress(self, token: str, body: dict[str, Any]) -> None:
        check_token(token)
        text = progress_json(body)
        with self._lock:
            self._progress[token] = text

    def get_progress(self, token: str) -> dict[str, Any] | None:
        check_token(token)
        with self._lock:
            text = self._progress.get(token)
        return None if text is None else progress_from_json(text)

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
