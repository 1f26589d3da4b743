"""Figures of how training goes: perplexity, gradient norms (global and per parameter
group) and the overlay of saved runs. Pure: telemetry DataFrames in, plotly figures out;
``views.py`` and ``compare.py`` pass them to ``st.plotly_chart``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.charts import palette
from dashboard.charts.base import (
    apply_layout,
    line_trace,
    numeric_column,
    steps_x,
)
from dashboard.charts.events import add_events
from dashboard.charts.thinning import downsample
from gru_core.i18n import _
from gru_core.step.stats import (
    CLIP_THRESHOLD,
    CLIPPED,
    GRAD_NORM,
    GRAD_NORM_CLIPPED,
    PERPLEXITY,
    STEP,
    group_column,
)

# Epochs drawn with a marker each: up to this many points a trace, about one per 10 px of a
# 700 px chart. More markers overlap into a thick line and cost the browser a node each (the
# book's 500 epochs tripled the chart's drawing time: benchmarks/chart_draw.py).
MAX_MARKERS = 70


def perplexity_figure(
    steps: pd.DataFrame, epochs: pd.DataFrame, events: pd.DataFrame | None = None
) -> go.Figure:
    """Batch perplexity per step (faint), train and validation perplexity per epoch; log y.
    The epochs' lines carry a marker per epoch while they have at most MAX_MARKERS points."""
    fig = go.Figure()
    fig.add_trace(
        line_trace(
            steps_x(steps),
            numeric_column(steps, PERPLEXITY),
            _("batch perplexity"),
            log=True,
            line=palette.BATCH.line(width=1),
            opacity=0.3,
        )
    )
    epoch_x = numeric_column(epochs, STEP)
    for column, name, style in (
        ("train_perplexity", _("train (per epoch)"), palette.TRAIN),
        ("val_perplexity", _("validation (per epoch)"), palette.VALIDATION),
    ):
        values = numeric_column(epochs, column)
        trace = line_trace(epoch_x, values, name, log=True, line=style.line())
        if len(trace.x) <= MAX_MARKERS:
            trace.update(mode="lines+markers", marker=style.marker(size=6))
        fig.add_trace(trace)
    add_events(fig, events, steps)
    return apply_layout(
        fig, _("Perplexity"), _("training step"), _("perplexity (log)"), "perplexity", True
    )


def clipped_share(steps: pd.DataFrame) -> float:
    """Fraction of the rows in ``steps`` whose gradients were clipped (0.0 when empty)."""
    if steps.empty or CLIPPED not in steps.columns:
        return 0.0
    clipped = steps[CLIPPED].astype(object).where(steps[CLIPPED].notna(), False)
    return float(clipped.astype(bool).mean())


def _change_points(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first point of each run of equal values (NaN equal to NaN), and the last."""
    if len(y) == 0:
        return x, y
    same = (y[1:] == y[:-1]) | (np.isnan(y[1:]) & np.isnan(y[:-1]))
    keep = np.concatenate([[True], ~same])
    keep[-1] = True
    return x[keep], y[keep]


def grad_norm_figure(steps: pd.DataFrame, events: pd.DataFrame | None = None) -> go.Figure:
    """Global gradient norm before and after clipping, and the clip threshold; log y."""
    x = steps_x(steps)
    fig = go.Figure()
    # 'after' is drawn first, wide and pale, so the thin 'before' line stays visible on top
    # of it where they coincide (every step that was not clipped).
    for column, name, line in (
        (GRAD_NORM_CLIPPED, _("after clipping"), palette.AFTER_CLIP.line(width=4)),
        (GRAD_NORM, _("before clipping"), palette.BEFORE_CLIP.line(width=1.2)),
    ):
        opacity = 0.45 if column == GRAD_NORM_CLIPPED else 1.0
        fig.add_trace(
            line_trace(x, numeric_column(steps, column), name, log=True, line=line, opacity=opacity)
        )
    # The threshold: NaN (clipping off) stays in as a gap; non-positive is off too.
    threshold = numeric_column(steps, CLIP_THRESHOLD)
    threshold = np.where(np.isfinite(threshold) & (threshold > 0), threshold, np.nan)
    keep = np.isfinite(x)
    tx, ty = _change_points(x[keep], threshold[keep])
    tx, ts = downsample(tx, dict(y=ty))
    clipping = bool(np.isfinite(ts["y"]).any())  # at some step shown
    fig.add_trace(
        go.Scatter(
            x=tx,
            y=ts["y"],
            name=_("clip threshold") if clipping else _("clip threshold (off)"),
            mode="lines",
            connectgaps=False,
            line=palette.THRESHOLD.line(shape="hv", width=1.5),
        )
    )
    add_events(fig, events, steps)
    # The share in the title, short: a subtitle would sit where a narrow column's legend wraps.
    if clipping:
        note = _("{share} of steps clipped").format(share=f"{clipped_share(steps):.0%}")
    else:
        note = _("clipping off")
    title = _("Gradient norm · {note}").format(note=note)
    return apply_layout(fig, title, _("training step"), _("||g|| (log)"), "grad_norm", log_y=True)


def param_group_figure(steps: pd.DataFrame) -> go.Figure:
    """One line per parameter group (``group:*`` columns): its gradient norm; log y."""
    x = steps_x(steps)
    fig = go.Figure()
    columns = [c for c in steps.columns if str(c).startswith(group_column(""))]
    for i, column in enumerate(columns):
        name = str(column).removeprefix(group_column(""))
        line = palette.series(i).line(width=1.2)
        fig.add_trace(line_trace(x, numeric_column(steps, column), name, log=True, line=line))
    return apply_layout(
        fig,
        _("Gradient norm per parameter group"),
        _("training step"),
        _("||g|| (log)"),
        "param_groups",
        log_y=True,
    )


def compare_figure(
    runs: dict[str, pd.DataFrame],
    y: str,
    title: str,
    log_y: bool = True,
    x: str = STEP,
    x_title: str | None = None,
    y_title: str | None = None,
) -> go.Figure:
    """One line per saved run: column ``y`` against column ``x`` (runs lacking them skipped).
    Axis titles default to the column names; pass human ones."""
    fig = go.Figure()
    for name, frame in runs.items():
        if x in frame.columns and y in frame.columns:
            style = palette.series(len(fig.data))
            fig.add_trace(
                line_trace(
                    numeric_column(frame, x), numeric_column(frame, y), name, log=log_y,
                    line=style.line(), marker=style.marker(size=5),
                )
            )  # fmt: skip
    y_label = _("{title} (log scale)") if log_y else "{title}"
    y_label = y_label.format(title=y_title or y)
    return apply_layout(fig, title, x_title or x, y_label, f"compare:{y}", log_y=log_y)


def split_outliers(
    runs: dict[str, pd.DataFrame], column: str, decades: float = 2.0
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Leave out runs whose median of ``column`` is more than ``decades`` powers of ten away
    from the median of all runs' medians (so one exploded run does not squash the rest).
    Returns the kept runs and, for each one left out, 'name (median 1.2e+12)'."""
    medians = {}
    for name, frame in runs.items():
        values = numeric_column(frame, column)
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            medians[name] = float(np.median(values))
    if len(medians) < 3:  # with two runs there is no telling which one is the outlier
        return dict(runs), []
    centre = float(np.median(np.log10(list(medians.values()))))
    hidden = {n for n, m in medians.items() if abs(np.log10(m) - centre) > decades}
    kept = {n: f for n, f in runs.items() if n not in hidden}
    left_out = _("{name} (median {median})")
    return kept, [left_out.format(name=n, median=f"{medians[n]:.3g}") for n in runs if n in hidden]
