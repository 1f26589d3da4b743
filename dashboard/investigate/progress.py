"""A bench's investigation progress, saved with its runs (``RunStore.save_progress``).

``Progress`` holds what the saved runs do not: the maps the student made (``MapFact``), the
views they opened on a run (``ViewMark``), each step as it was first completed (its result,
quoting the student's numbers, so a run evicted later does not undo it), the answers in their
own words, and the investigation they are in. ``ProgressBook`` keeps one bench's progress and
writes it through to the store on every change, so a reload (or a restart) finds it again.
Plain Python: no ``st.*``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dashboard.investigate.evidence import MapFact, ViewMark
from dashboard.runs.records import RunStore, StorageError
from gru_core.i18n import N_, Note

MAX_MAPS = 16  # maps kept (the newest); each is a few kB
MAX_ANSWER = 4000  # characters kept of an answer


@dataclass(frozen=True)
class Progress:
    active: str | None = None  # the investigation the student is in
    done: Mapping[str, str] = field(default_factory=dict)  # step id -> its result when done
    answers: Mapping[str, str] = field(default_factory=dict)  # investigation -> own words
    maps: tuple[MapFact, ...] = ()
    views: frozenset[ViewMark] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "done": dict(self.done),
            "answers": dict(self.answers),
            "maps": [m.to_dict() for m in self.maps],
            "views": sorted([v.view, v.model, v.steps] for v in self.views),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Progress:
        """Progress from ``to_dict`` (ValueError / KeyError / TypeError when damaged)."""
        return cls(
            d.get("active"),
            {str(k): str(v) for k, v in d.get("done", {}).items()},
            {str(k): str(v) for k, v in d.get("answers", {}).items()},
            tuple(MapFact.from_dict(m) for m in d.get("maps", ())),
            frozenset(ViewMark(str(v), str(m), int(s)) for v, m, s in d.get("views", ())),
        )


class ProgressBook:
    """One bench's progress, written through to ``store`` under ``token`` (thread-safe)."""

    def __init__(self, store: RunStore | None = None, token: str | None = None) -> None:
        self.store, self.token = (store, token) if store is not None and token else (None, None)
        self.progress = Progress()
        self.problem: Note | None = None  # why the last load or save failed, else None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Replace the progress with the store's (kept as is when there is none)."""
        if self.store is None or self.token is None:
            return
        try:
            body = self.store.get_progress(self.token)
            if body is not None:
                self.progress = Progress.from_dict(body)
        except (StorageError, ValueError, KeyError, TypeError) as exc:
            self.problem = Note(N_("investigation progress could not be read: {why}"), why=str(exc))

    def _update(self, **changes: Any) -> Progress:
        with self._lock:
            new = replace(self.progress, **changes)
            if new == self.progress:
                return new
            self.progress = new
        if self.store is not None and self.token is not None:
            try:
                self.store.save_progress(self.token, new.to_dict())
                self.problem = None
            except (StorageError, ValueError) as exc:
                self.problem = Note(N_("investigation progress was not saved: {why}"), why=str(exc))
        return new

    def set_active(self, key: str | None) -> None:
        self._update(active=key)

    def mark_done(self, step_id: str, result: str) -> None:
        """Keep a step's result the first time it is done."""
        if step_id not in self.progress.done:
            self._update(done={**self.progress.done, step_id: result})

    def answer(self, key: str, text: str) -> None:
        self._update(answers={**self.progress.answers, key: text[:MAX_ANSWER]})

    def add_map(self, fact: MapFact) -> None:
        if fact.cells and fact not in self.progress.maps:
            self._update(maps=(*self.progress.maps, fact)[-MAX_MAPS:])

    def saw(self, mark: ViewMark) -> None:
        if mark not in self.progress.views:
            self._update(views=self.progress.views | {mark})

    def reset(self, key: str, step_ids: tuple[str, ...]) -> None:
        """Start an investigation over: its steps and answer forgotten (runs and maps stay)."""
        done = {k: v for k, v in self.progress.done.items() if k not in step_ids}
        answers = {k: v for k, v in self.progress.answers.items() if k != key}
        self._update(done=done, answers=answers)
