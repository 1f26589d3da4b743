"""One statistics schema: the step's stats layout (``gru_core.step.stats``) names every
statistic; records, telemetry and charts read it. These tests fail when a statistic is added
to the layout but not recorded or not shown, or when a chart asks for a column it lacks."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.charts import base, cells, events, training
from dashboard.views import compare
from gru_core.config import TrainConfig
from gru_core.model.gates import GATES
from gru_core.run.records import EpochRecord, StepRecord
from gru_core.run.telemetry import EVENT_COLUMNS, Telemetry
from gru_core.run.trainer import build_record
from gru_core.step import stats
from gru_core.step.core import StepCore
from gru_core.step.stats import FLOWS, HOST_ONLY, StatsLayout

ROOT = Path(__file__).resolve().parents[1]


def layout_of(model: str) -> StatsLayout:
    config = TrainConfig(model=model, hidden_size=4, num_steps=5, batch_size=2, num_epochs=1)
    return StepCore([config], 7, "cpu").layout


def recorded(layout: StatsLayout) -> tuple[np.ndarray, Telemetry]:
    """A stats row of distinct values (finite θ, clipped, not diverged) stored as a record."""
    index = layout.index
    row = 1.0 + np.arange(layout.width) / 1000
    row[index[stats.CLIPPED]], row[index[stats.DIVERGED]] = 1.0, 0.0
    tel = Telemetry()
    tel.add_step(build_record(layout, row, step=7, epoch=2, tokens=10, want_flow=True))
    return row, tel


def is_flow(column: str) -> bool:
    return column.split(":")[0] in FLOWS


@pytest.mark.parametrize("model", ["gru", "lstm", "rnn"])
def test_every_statistic_of_the_layout_is_recorded_and_shown(model: str) -> None:
    layout = layout_of(model)
    row, tel = recorded(layout)
    snap = tel.snapshot()
    assert tuple(snap.steps.columns) == layout.step_columns
    shown = [c for c in layout.columns if c not in HOST_ONLY and not is_flow(c)]
    assert set(shown) <= set(layout.step_columns)
    for column in shown:
        assert snap.steps[column].iloc[0] == pytest.approx(row[layout.index[column]]), column
    for i, flow in enumerate((snap.flow, snap.flow_last, snap.flow_late)):
        start = layout.index[stats.flow_column(FLOWS[i], 1)]
        assert np.array_equal(flow[0], row[start : start + layout.num_steps])
    assert not set(HOST_ONLY) & set(layout.step_columns)
    assert snap.steps[stats.STEP].iloc[0] == 7 and snap.steps[stats.TOKENS].iloc[0] == 10


def test_record_fields_are_named_after_the_schema() -> None:
    names = {f.name for f in dataclasses.fields(StepRecord)}
    assert set(stats.BASE_COLUMNS) <= names
    assert {f"grad_{f}" for f in FLOWS} <= names
    assert set(stats.INTEGER_COLUMNS + stats.BOOLEAN_COLUMNS) <= set(stats.BASE_COLUMNS)


class Spy:
    """Records every column a chart reads through ``numeric_column``, and from which frame."""

    def __init__(self) -> None:
        self.asked: list[tuple[pd.DataFrame, str]] = []
        self.real = base.numeric_column

    def __call__(self, frame: pd.DataFrame, name: str) -> np.ndarray:
        self.asked.append((frame, name))
        return self.real(frame, name)


def test_charts_ask_only_for_columns_the_schema_has(monkeypatch: pytest.MonkeyPatch) -> None:
    layout = layout_of("gru")
    _, tel = recorded(layout)
    tel.add_epoch(EpochRecord(1, 7, 9.0, 8.0, 1e4, "the", "the", 1.0))
    tel.add_event(7, stats.CLIP_THRESHOLD, 0.5)
    tel.add_event(7, stats.LR, 0.1)
    snap = tel.snapshot()
    spy = Spy()
    for module in (base, cells, events, training):
        monkeypatch.setattr(module, "numeric_column", spy)
    training.perplexity_figure(snap.steps, snap.epochs, snap.events)
    training.grad_norm_figure(snap.steps, snap.events)
    training.param_group_figure(snap.steps)
    for gate in layout.gates:
        cells.gate_bands_figure(snap.steps, gate)
    for metric in compare.METRICS.values():
        frame = compare.metric_frame(_Run(snap.steps, snap.epochs), metric)
        x = stats.STEP if metric.table == "steps" else stats.EPOCH
        training.compare_figure({"run": frame}, metric.column, "title", x=x)
    assert spy.asked
    allowed = {
        id(snap.steps): set(layout.step_columns),
        id(snap.epochs): {f.name for f in dataclasses.fields(EpochRecord)},
    }
    for frame, name in spy.asked:
        columns = allowed.get(id(frame), set(frame.columns))
        assert name in columns or name in EVENT_COLUMNS, f"a chart asks for {name!r}"
    steps_asked = {name for frame, name in spy.asked if frame is snap.steps}
    assert {stats.PERPLEXITY, stats.GRAD_NORM, stats.CLIP_THRESHOLD} <= steps_asked
    assert stats.gate_column("Z", stats.SATURATED) in steps_asked


@dataclasses.dataclass
class _Run:
    steps: pd.DataFrame
    epochs: pd.DataFrame


def statistic_names() -> set[str]:
    """Every steps column any model can have, bare gate suffixes included."""
    names = set(stats.BASE_COLUMNS) | set(stats.GATE_SUFFIXES)
    names |= {stats.gate_column(g, s) for g in GATES for s in stats.GATE_SUFFIXES}
    return names | {stats.group_column(g) for g in stats.PARAM_GROUPS}


# Dicts whose keys may equal a statistic's name without being a column: the probe, the
# captions, the live knobs (keyed by config field: clip_threshold, lr).
NOT_FRAMES = ("probe", "CAPTIONS", "LIVE_KNOBS")


def column_literals(path: Path) -> list[str]:
    """String literals a module uses as a column: frame["x"] (not a key of NOT_FRAMES),
    numeric_column(frame, "x"), "x" in frame, Metric(table, "x", ...), and the
    "gnorm:" / "group:" prefixes anywhere."""
    names, found = statistic_names(), []
    for node in ast.walk(ast.parse(path.read_text())):
        literals: list[ast.expr] = []
        if isinstance(node, ast.Subscript) and not (
            isinstance(node.value, ast.Name) and node.value.id in NOT_FRAMES
        ):
            literals = [node.slice, *getattr(node.slice, "elts", [])]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("numeric_column", "Metric"):
                literals = node.args[1:2]
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            literals = [node.left]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith(("gnorm:", "group:")):
                found.append(f"{path.name}:{node.lineno} {node.value!r}")
        for lit in literals:
            if isinstance(lit, ast.Constant) and lit.value in names:
                found.append(f"{path.name}:{lit.lineno} {lit.value!r}")
    return found


def test_no_literal_statistic_names_in_the_dashboards_charts_and_views() -> None:
    paths = sorted((ROOT / "dashboard" / "charts").glob("*.py"))
    paths += sorted((ROOT / "dashboard" / "views").glob("*.py"))
    assert len(paths) > 6
    found = [hit for path in paths for hit in column_literals(path)]
    assert not found, "use the names of gru_core.step.stats: " + ", ".join(found)


def test_the_literal_scanner_finds_what_it_should(tmp_path: Path) -> None:
    source = 'steps["grad_norm"]\nnumeric_column(f, "Z:p95")\n"group:biases"\nprobe["step"]\n'
    (tmp_path / "x.py").write_text(source)
    assert len(column_literals(tmp_path / "x.py")) == 3
