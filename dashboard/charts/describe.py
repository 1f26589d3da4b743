"""Every chart's text alternative, in words from the data it draws: what a screen reader reads
in place of the picture (``views/display.chart(fig, key, alt=...)``), and what a reader who
cannot tell the lines apart reads beside it.

One function per chart kind, each a sentence or two with the numbers that matter: where a
curve started and ended, its peak, the threshold, how many runs learned. Pure (data in, a
string out, in the language in force: ``gru_core.i18n``); nothing here calls Streamlit.

    perplexity(steps, epochs)   "Perplexity fell from 28.1 to 1.05 over 3,640 steps. ..."
    grad_norm(steps)            "Gradient norm before clipping peaked at 1.2e+03 at step 12; ..."
    gate_bands(steps, gate)     "Update gate Z: median 0.5 at step 1, 0.31 at step 200. ..."
    map_summary(results, spec)  "16 of 32 finished runs learned; 3 diverged. Best validation ..."
    lines(fig), bars(fig), heatmap(fig)   any other figure, read from its traces
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.base import numeric_column, steps_x
from dashboard.charts.training import clipped_share
from gru_core.config import MODEL_TITLES
from gru_core.i18n import _, ngettext
from gru_core.model.gates import label as gate_label
from gru_core.step.stats import (
    CLIP_THRESHOLD,
    GRAD_NORM,
    PERPLEXITY,
    SATURATED,
    STEP,
    gate_column,
    group_column,
    percentile_suffix,
)
from gru_core.sweep.results import CellResult
from gru_core.sweep.spec import AXIS_TITLES, SweepSpec, axis_label

MAX_LINES = 6  # lines named in a generic description; the rest are counted


def number(x: float) -> str:
    """A measured value as a chart shows it: 3 significant figures, '1.05', '1.2e+03'."""
    return "—" if not math.isfinite(x) else f"{x:.3g}"


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def then(first: str, second: str) -> str:
    """Two sentences one after the other (a space between them in English, none in Chinese)."""
    return _("{first} {second}").format(first=first, second=second)


def _trend(start: float, end: float) -> str:
    return _("fell") if end < start else _("rose") if end > start else _("stayed")


def perplexity(steps: pd.DataFrame, epochs: pd.DataFrame) -> str:
    """Batch perplexity from the first step to the last, and the last validation value."""
    x, y = _finite(steps_x(steps), numeric_column(steps, PERPLEXITY))
    if y.size == 0:
        return _("Perplexity: no steps yet.")
    n = int(x[-1])
    text = ngettext(
        "Perplexity {trend} from {start} to {end} over {n} step.",
        "Perplexity {trend} from {start} to {end} over {n} steps.",
        n,
    ).format(trend=_trend(y[0], y[-1]), start=number(y[0]), end=number(y[-1]), n=f"{n:,}")
    _x, val = _finite(numeric_column(epochs, STEP), numeric_column(epochs, "val_perplexity"))
    if val.size:
        last = _("Validation perplexity {value} at the last epoch.").format(value=number(val[-1]))
        text = then(text, last)
    return text


def grad_norm(steps: pd.DataFrame) -> str:
    """The peak of the gradient norm before clipping, the threshold θ and the clipped share."""
    x, g = _finite(steps_x(steps), numeric_column(steps, GRAD_NORM))
    if g.size == 0:
        return _("Gradient norm: no steps yet.")
    peak = int(np.argmax(g))
    text = _("Gradient norm before clipping peaked at {peak} at step {step}; last {last}.").format(
        peak=number(g[peak]), step=f"{int(x[peak]):,}", last=number(g[-1])
    )
    theta = numeric_column(steps, CLIP_THRESHOLD)
    theta = theta[np.isfinite(theta) & (theta > 0)]
    if theta.size == 0:
        return then(text, _("Clipping off."))
    share = clipped_share(steps)
    clipped = _("θ = {theta}: {share} of steps clipped.")
    return then(text, clipped.format(theta=number(theta[-1]), share=f"{share:.0%}"))


def gate_bands(steps: pd.DataFrame, gate: str) -> str:
    """A gate's median over training and its saturated share at the last step."""
    name = gate_label(gate)
    x, median = _finite(
        steps_x(steps), numeric_column(steps, gate_column(gate, percentile_suffix(50)))
    )
    if median.size == 0:
        return _("{gate}: no statistics yet.").format(gate=name)
    text = _("{gate}: median {start} at step {first}, {end} at step {last}.").format(
        gate=name,
        start=number(median[0]),
        first=f"{int(x[0]):,}",
        end=number(median[-1]),
        last=f"{int(x[-1]):,}",
    )
    saturated = numeric_column(steps, gate_column(gate, SATURATED))
    saturated = saturated[np.isfinite(saturated)]
    if saturated.size:
        share = _("{share} of its values saturated at the last step.")
        text = then(text, share.format(share=f"{saturated[-1]:.0%}"))
    return text


def param_groups(steps: pd.DataFrame) -> str:
    """The parameter groups with the largest and smallest gradient norm at the last step."""
    last: dict[str, float] = {}
    for column in (c for c in steps.columns if str(c).startswith(group_column(""))):
        values = numeric_column(steps, column)
        values = values[np.isfinite(values)]
        if values.size:
            last[str(column).removeprefix(group_column(""))] = float(values[-1])
    if not last:
        return _("Gradient norm per parameter group: no steps yet.")
    hi, lo = max(last, key=last.__getitem__), min(last, key=last.__getitem__)
    return _(
        "Gradient norm per parameter group at the last step: largest {hi} ({hi_value}), "
        "smallest {lo} ({lo_value})."
    ).format(hi=hi, hi_value=number(last[hi]), lo=lo, lo_value=number(last[lo]))


def map_summary(results: Sequence[CellResult], spec: SweepSpec) -> str:
    """How many runs learned, diverged, and where the best validation perplexity is."""
    finished = [r for r in results if r.verdict is not None]
    if not finished:
        return _("Trainability map: no run finished yet.")
    learned = sum(r.verdict == "learned" for r in finished)
    diverged = sum(r.diverged_step is not None or r.verdict == "diverged" for r in finished)
    text = ngettext(
        "{learned} of {n} finished run learned; {diverged} diverged.",
        "{learned} of {n} finished runs learned; {diverged} diverged.",
        len(finished),
    ).format(learned=learned, n=len(finished), diverged=diverged)
    scored = [
        r
        for r in finished
        if r.final_val_perplexity is not None and math.isfinite(r.final_val_perplexity)
    ]
    if scored:
        best = min(scored, key=lambda r: r.final_val_perplexity or math.inf)
        where = _("Best validation perplexity {value}: {model}, {x_name} {x}, {y_name} {y}.")
        where = where.format(
            value=number(best.final_val_perplexity),  # type: ignore[arg-type]
            model=MODEL_TITLES.get(best.model, best.model),
            x_name=_(AXIS_TITLES[spec.x_axis]),
            x=axis_label(best.x),
            y_name=_(AXIS_TITLES[spec.y_axis]),
            y=axis_label(best.y),
        )
        text = then(text, where)
    return text


# -- any other figure, read from its traces --------------------------------------------------------
def _title(fig: go.Figure) -> str:
    title = fig.layout.title.text or ""
    return title.split("<br>")[0]


def _empty(fig: go.Figure) -> str | None:
    """A placeholder's message ('Perplexity: press Start.'), None for a figure with data."""
    if any(t.y is not None and len(t.y) or getattr(t, "z", None) is not None for t in fig.data):
        return None
    notes = [a.text for a in fig.layout.annotations or () if a.text]
    return _("{title}: {message}").format(title=_title(fig), message=" ".join(notes) or "—")


def lines(fig: go.Figure) -> str:
    """Each named line of a figure: its first and last value, and its lowest and highest."""
    empty = _empty(fig)
    if empty is not None:
        return empty
    parts = []
    shown = [t for t in fig.data if t.type == "scatter" and t.name and t.y is not None]
    for trace in shown[:MAX_LINES]:
        y = np.asarray(trace.y, dtype=np.float64)
        y = y[np.isfinite(y)]
        if y.size == 0:
            continue
        parts.append(
            _("{name} from {start} to {end} (lowest {low}, highest {high})").format(
                name=trace.name,
                start=number(y[0]),
                end=number(y[-1]),
                low=number(y.min()),
                high=number(y.max()),
            )
        )
    more = len(shown) - MAX_LINES
    if more > 0:
        parts.append(ngettext("{n} more line", "{n} more lines", more).format(n=more))
    return _("{title}: {parts}.").format(title=_title(fig), parts="; ".join(parts) or "—")


def bars(fig: go.Figure) -> str:
    """A bar chart: how many bars, and the largest (by size) with its label."""
    empty = _empty(fig)
    if empty is not None:
        return empty
    bar = next((t for t in reversed(fig.data) if t.type == "bar"), None)
    if bar is None or bar.x is None or bar.y is None or not len(bar.x):
        return _title(fig)
    horizontal = bar.orientation == "h"
    values = np.asarray(bar.x if horizontal else bar.y, dtype=np.float64)
    names = list(bar.y if horizontal else bar.x)
    ticks = fig.layout.yaxis.ticktext if horizontal else fig.layout.xaxis.ticktext
    if ticks is not None and len(ticks) == len(names):
        names = list(ticks)
    i = int(np.nanargmax(np.abs(values)))
    return ngettext(
        "{title}: {n} bar; the largest {name}: {value}.",
        "{title}: {n} bars; the largest {name}: {value}.",
        len(values),
    ).format(title=_title(fig), n=len(values), name=names[i], value=number(values[i]))


def heatmap(fig: go.Figure) -> str:
    """A heatmap: its size and the range of its colour values; a figure of several (panels
    stacked, ``panels.stacked``): each under its own name."""
    empty = _empty(fig)
    if empty is not None:
        return empty
    cells = [t for t in fig.data if t.type == "heatmap"]
    if len(cells) > 1:
        return " ".join(_cells(trace.name or _title(fig), trace) for trace in cells)
    return _cells(_title(fig), cells[0] if cells else None)


def _cells(title: str, trace: go.Heatmap | None) -> str:
    z = np.asarray(trace.z if trace is not None else [], dtype=np.float64)
    if z.ndim != 2 or not np.isfinite(z).any():
        return title
    return _(
        "{title}: heatmap of {rows} rows by {cols} columns, values from {low} to {high}."
    ).format(
        title=title,
        rows=z.shape[0],
        cols=z.shape[1],
        low=number(float(np.nanmin(z))),
        high=number(float(np.nanmax(z))),
    )
