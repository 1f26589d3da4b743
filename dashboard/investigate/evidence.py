"""What an investigation's checks read: the student's own runs, maps and opened views.

Plain frozen records built from what the bench keeps (``RunFact`` from a ``SavedRun``,
``MapFact`` from a finished trainability map, ``ViewMark`` when a view was open on a run),
gathered in one ``Evidence``. Maps and view marks are not saved runs, so they travel in the
bench's progress (``progress.py``) as plain dicts (``to_dict`` / ``from_dict``).
Pure data and functions: no ``st.*``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dashboard.charts.flow import normalise_at_end
from dashboard.runs.saved import SavedRun
from gru_core.sweep.results import CellResult, summarize
from gru_core.sweep.spec import SweepSpec

TRAINED = ("learned", "memorised")  # verdicts of a run that learned its training text


@dataclass(frozen=True)
class RunFact:
    """One saved run, as a check reads it (the settings it started with, how it ended)."""

    name: str
    model: str  # config model: 'gru', 'rnn', 'gru_reset_only', ...
    hidden: int
    init_std: float
    clip: float | None  # θ, None = clipping off
    lr: float
    steps: int  # sequence length T
    verdict: str
    perplexity: float | None  # final training perplexity
    val_perplexity: float | None  # final validation perplexity
    flow_last: tuple[float, ...] = ()  # ‖∂ℓ_T/∂H_t‖, t = 1..T

    @property
    def trained(self) -> bool:
        return self.verdict in TRAINED

    def reach_ratio(self, back: int) -> float | None:
        """‖∂ℓ_T/∂H_{T-back}‖ / ‖∂ℓ_T/∂H_T‖ (None when not recorded or out of the window)."""
        if not self.flow_last or back >= len(self.flow_last):
            return None
        value = float(normalise_at_end(np.asarray(self.flow_last))[0][-1 - back])
        return value if math.isfinite(value) else None


def run_fact(run: SavedRun) -> RunFact:
    c = run.start_config
    v = run.verdict
    return RunFact(
        run.name, c.model, c.hidden_size, c.init_std, c.clip_threshold, c.lr, c.num_steps,
        v.kind, v.final_perplexity, v.final_val_perplexity, tuple(run.flow_last),
    )  # fmt: skip


@dataclass(frozen=True)
class MapCell:
    model: str
    x: Any  # the x axis value (None = clipping off)
    y: Any
    verdict: str | None
    perplexity: float | None
    diverged_step: int | None = None  # the earliest step a seed diverged at


@dataclass(frozen=True)
class MapFact:
    """A finished (or stopped) trainability map: its axes, size and cells' outcomes."""

    x_axis: str
    y_axis: str
    models: tuple[str, ...]
    hidden: int  # the base hidden size (the axis's values when hidden is an axis)
    steps: int
    epochs: int
    cells: tuple[MapCell, ...]
    edges: tuple[tuple[str, int, float | None], ...] = ()  # (model, hidden, std at λ = 0)
    seconds: float = 0.0  # how long it took

    def axes(self) -> frozenset[str]:
        return frozenset((self.x_axis, self.y_axis))

    def of(self, model: str) -> list[MapCell]:
        return [c for c in self.cells if c.model == model]

    def value(self, cell: MapCell, axis: str) -> Any:
        """A cell's value on ``axis`` (the base setting when it is not an axis)."""
        if axis == self.x_axis:
            return cell.x
        if axis == self.y_axis:
            return cell.y
        return {"hidden_size": self.hidden, "num_steps": self.steps}.get(axis)

    def at_hidden(self, hidden: int) -> bool:
        return "hidden_size" not in self.axes() and self.hidden == hidden

    def edge(self, model: str) -> float | None:
        return next((std for m, h, std in self.edges if m == model and h == self.hidden), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "x_axis": self.x_axis, "y_axis": self.y_axis, "models": list(self.models),
            "hidden": self.hidden, "steps": self.steps, "epochs": self.epochs,
            "cells": [
                [c.model, c.x, c.y, c.verdict, _finite(c.perplexity), c.diverged_step]
                for c in self.cells
            ],
            "edges": [list(e) for e in self.edges], "seconds": self.seconds,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MapFact:
        return cls(
            str(d["x_axis"]), str(d["y_axis"]), tuple(map(str, d["models"])), int(d["hidden"]),
            int(d["steps"]), int(d["epochs"]), tuple(MapCell(*c) for c in d["cells"]),
            tuple((str(m), int(h), s) for m, h, s in d.get("edges", ())),
            float(d.get("seconds", 0.0)),
        )  # fmt: skip


def map_fact(
    spec: SweepSpec,
    results: Sequence[CellResult],
    edges: Mapping[tuple[str, int], float | None] | None = None,
    seconds: float = 0.0,
) -> MapFact:
    """A map's finished cells (over their seeds, ``summarize``) as a MapFact."""
    cells = tuple(
        MapCell(s.model, s.x, s.y, s.verdict, s.perplexity, s.diverged_step)
        for s in summarize(results)
        if s.done and s.verdict is not None
    )
    b = spec.base
    return MapFact(
        spec.x_axis, spec.y_axis, tuple(spec.models), b.hidden_size, b.num_steps, b.num_epochs,
        cells, tuple((m, h, s) for (m, h), s in sorted((edges or {}).items())), seconds,
    )  # fmt: skip


@dataclass(frozen=True)
class ViewMark:
    """A view was open while the lab held a run of this model and sequence length."""

    view: str
    model: str
    steps: int


@dataclass(frozen=True)
class Evidence:
    runs: tuple[RunFact, ...] = ()
    maps: tuple[MapFact, ...] = ()
    views: frozenset[ViewMark] = field(default_factory=frozenset)

    @classmethod
    def gather(
        cls, runs: Iterable[SavedRun], maps: Iterable[MapFact], views: Iterable[ViewMark]
    ) -> Evidence:
        return cls(tuple(run_fact(r) for r in runs), tuple(maps), frozenset(views))


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
