"""Knob changes on a chart: a dotted vertical line and a label ("clip 1→0.1") per change.

Live knob changes (clip threshold, learning rate) arrive as telemetry events; the latest
MAX_EVENT_LINES are drawn on the training-step charts, their labels staggered over
EVENT_ROWS rows so they never overlap. Pure functions; nothing here calls Streamlit.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.base import INK, LEGEND_PX, numeric_column, relayout, steps_x
from dashboard.charts.palette import EVENT
from gru_core.config import LIVE_KNOBS
from gru_core.i18n import _
from gru_core.run.telemetry import EVENT_COLUMNS
from gru_core.step.stats import STEP

MAX_EVENT_LINES = 50  # latest knob changes drawn as vertical lines
EVENT_ROWS = 3  # change labels are staggered over this many rows so they never overlap
EVENT_LABELS = {name: knob.label for name, knob in LIVE_KNOBS.items()}


def _fmt(value: float) -> str:
    return _("off") if not math.isfinite(value) else f"{value:g}"


def _event_marks(events: pd.DataFrame | None, steps: pd.DataFrame) -> tuple[list, list]:
    """Dotted vertical lines and labels ("clip 1→0.1") for the latest knob changes.

    The value before a kind's first event is read from the steps column of the same name
    (clip_threshold, lr) at the last step before the change, when there is one.
    """
    if events is None or events.empty or not set(EVENT_COLUMNS) <= set(events.columns):
        return [], []
    ordered = events.sort_values(STEP, kind="stable")
    step_x = steps_x(steps)
    previous: dict[str, float] = {}
    marks: list[tuple[float, str]] = []
    for step, kind, value in zip(
        numeric_column(ordered, STEP),
        ordered["kind"].astype(str),
        numeric_column(ordered, "value"),
        strict=True,
    ):
        if not math.isfinite(step):
            continue
        if kind not in previous and kind in steps.columns:
            before = np.flatnonzero(step_x < step)
            if len(before):
                previous[kind] = float(numeric_column(steps, kind)[before[-1]])
        label = _(EVENT_LABELS[kind]) if kind in EVENT_LABELS else kind
        text = f"{label} {_fmt(value)}"
        if kind in previous:
            text = f"{label} {_fmt(previous[kind])}→{_fmt(value)}"
        previous[kind] = float(value)
        marks.append((float(step), text))
    marks = marks[-MAX_EVENT_LINES:]
    line = EVENT.line(width=1)
    shapes = [
        dict(type="line", xref="x", yref="paper", x0=s, x1=s, y0=0, y1=1, line=line)
        for s, _text in marks
    ]
    notes = []
    xs = [s for s, _text in marks]
    finite = step_x[np.isfinite(step_x)]
    span = float(np.ptp(np.concatenate([finite, xs]))) if len(xs) else 0.0
    for (s, text), row in zip(marks, _label_rows(xs, span), strict=True):
        note = dict(
            x=s, xref="x", y=1 - 0.08 * (row or 0), yref="paper", showarrow=False,
            xanchor="left", yanchor="top", font=dict(size=LEGEND_PX - 1, color=INK),
            bgcolor="rgba(255,255,255,0.8)", hovertext=text,
        )  # fmt: skip
        # A label with no free row is not drawn; its line keeps the change on hover.
        note["text"] = text if row is not None else ""
        notes.append(note)
    return shapes, notes


def _label_rows(xs: list[float], span: float, min_gap: float = 0.12) -> list[int | None]:
    """A row (0 = top) for each label at ``xs`` so that labels closer than ``min_gap`` of the
    chart's x ``span`` never share a row; None when all EVENT_ROWS rows are taken there."""
    if not xs:
        return []
    span = span or 1.0
    last: list[float] = [-math.inf] * EVENT_ROWS
    rows: list[int | None] = []
    for x in xs:
        row = next((r for r in range(EVENT_ROWS) if (x - last[r]) / span >= min_gap), None)
        if row is not None:
            last[row] = x
        rows.append(row)
    return rows


def add_events(fig: go.Figure, events: pd.DataFrame | None, steps: pd.DataFrame) -> None:
    shapes, notes = _event_marks(events, steps)
    if shapes:
        relayout(fig, dict(shapes=shapes, annotations=notes))
