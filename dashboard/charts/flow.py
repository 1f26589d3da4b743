"""Figures of the gradient flowing back through time: one loss's reach, the total gradient at
each H_t, the same over training, and saved runs side by side. Pure: arrays in, plotly
figures out.

Comparable by construction (STYLE rule 16):

- **the x axis is always t = 1..T**, the whole window, whatever the data shows (a run whose
  early gradient underflowed is not drawn on a shorter axis than one whose did not);
- **what underflows is drawn at a floor**: a norm below ``FLOOR`` (1e-30), float32's 0
  included, is drawn at 1e-30 with a marker and labelled "below 1e-30", never left blank; the
  heatmap gives those cells the floor's colour (the bottom of the scale, labelled so);
- runs overlaid on one chart share its axes (``reach_overlay_figure``), and
  ``reach_figure`` compares them by one number, the **reach**: how many steps back from
  t = T the normalised gradient ``‖∂ℓ_T/∂H_t‖ / ‖∂ℓ_T/∂H_T‖`` is still at least
  ``REACH_LEVEL`` (1e-3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from dashboard.charts import palette
from dashboard.charts.base import apply_layout, empty_figure, with_subtitle
from dashboard.charts.palette import GREY
from dashboard.charts.panels import stacked
from dashboard.charts.thinning import MAX_POINTS
from gru_core.i18n import N_, _

PANEL_PX = 190  # each of the Through time chart's two panels (reach now, reach over training)
HEATMAP_MAX_ROWS = 400  # training steps shown in the gradient-flow heatmap
FLOOR = 1e-30  # norms below this (float32's 0 included) are drawn here
FLOOR_LABEL = N_("below 1e-30")  # worded where drawn: _(FLOOR_LABEL)
REACH_LEVEL = 1e-3  # the reach: steps back where the normalised gradient is still >= this


def at_floor(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values with every finite value below FLOOR raised to FLOOR, where that happened).
    NaN and inf stay as they are (not recorded, or diverged)."""
    values = np.asarray(values, dtype=np.float64)
    below = np.isfinite(values) & (values < FLOOR)
    return np.where(below, FLOOR, values), below


def normalise_at_end(flow: np.ndarray) -> np.ndarray:
    """Each row divided by its value at the last finite t (so t = T reads 1); rows whose
    end is 0 or missing become NaN."""
    flow = np.atleast_2d(np.asarray(flow, dtype=np.float64))
    out = np.full_like(flow, np.nan)
    for i, row in enumerate(flow):
        finite = np.flatnonzero(np.isfinite(row))
        if finite.size and row[finite[-1]] > 0:
            out[i] = row / row[finite[-1]]
    return out


def reach_steps(normed: np.ndarray, level: float = REACH_LEVEL) -> int | None:
    """Steps back from t = T to the earliest t whose normalised gradient is >= ``level``
    (T - 1: it reaches the whole window); None for a row with no finite value."""
    normed = np.asarray(normed, dtype=np.float64).reshape(-1)
    if not np.isfinite(normed).any():
        return None
    above = np.flatnonzero(np.isfinite(normed) & (normed >= level))
    return int(len(normed) - 1 - above[0]) if above.size else 0


def floor_line(
    t: np.ndarray,
    y: np.ndarray,
    name: str,
    style: palette.Style,
    group: str = "",
    x_name: str = "t",
) -> list[go.Scatter]:
    """A line over t with what underflows at the floor, and those points marked (a grey
    triangle, 'below 1e-30' in the hover: never colour alone)."""
    drawn, below = at_floor(y)
    keep = np.isfinite(drawn)
    floor = _(FLOOR_LABEL)
    traces = [
        go.Scatter(
            x=t[keep], y=drawn[keep], name=name, mode="lines+markers", legendgroup=group or name,
            line=style.line(), marker=style.marker(size=5),
            hovertemplate=x_name + "=%{x}: %{y:.3g}<extra>" + name + "</extra>",
        )
    ]  # fmt: skip
    if below.any():
        traces.append(
            go.Scatter(
                x=t[below], y=drawn[below], name=f"{name}: {floor}", mode="markers",
                legendgroup=group or name, showlegend=False,
                marker=palette.FLOOR.marker(size=9, line=dict(color=style.colour, width=1.5)),
                hovertemplate=x_name + "=%{x}: " + floor + "<extra>" + name + "</extra>",
            )
        )  # fmt: skip
    return traces


def _through_time(fig: go.Figure, T: int, title: str, y_title: str, key: str) -> go.Figure:
    """Log y, x fixed at 1..T, and the floor drawn and labelled when something reached it."""
    apply_layout(fig, title, _("time step t"), y_title, key, log_y=True)
    fig.update_xaxes(range=[0.5, T + 0.5], autorange=False)
    return mark_floor(fig)


def mark_floor(fig: go.Figure, reached: bool | None = None) -> go.Figure:
    """The floor as a dotted line labelled 'below 1e-30', when something reached it (by
    default: when a trace of ``floor_line``'s floor points is in the figure)."""
    floor = _(FLOOR_LABEL)
    if reached is None:
        reached = any(floor in (trace.name or "") for trace in fig.data)
    if reached:
        fig.add_hline(y=FLOOR, line=dict(color=GREY, dash="dot", width=1))
        # An annotation on a log axis is placed by log10 of its value (a shape by the value).
        fig.add_annotation(
            x=1, xref="paper", xanchor="right", y=math.log10(FLOOR), yref="y",
            yanchor="bottom", text=floor, showarrow=False, font=dict(color=GREY),
        )  # fmt: skip
    return fig


def grad_flow_line_figure(flow: np.ndarray, step: int) -> go.Figure:
    """||dL/dH_t|| against t = 1..T at one training step; log y, underflow at the floor."""
    flow = np.asarray(flow, dtype=np.float64).reshape(-1)
    t = np.arange(1, len(flow) + 1, dtype=np.float64)
    fig = go.Figure(floor_line(t, flow, "||dL/dH_t||", palette.series(0)))
    _through_time(fig, len(flow), _("Total gradient at each H_t"), _("||dL/dH_t|| (log)"),
                  "grad_flow_line")  # fmt: skip
    return with_subtitle(fig, _("at training step {step}").format(step=step))


def flow_reach_figure(flow_last: np.ndarray, flow_late: np.ndarray, step: int) -> go.Figure:
    """How far back one position's loss reaches: ||∂ℓ_T/∂H_t|| (the last position) and the
    same for the mean loss of the last positions, each normalised to 1 at t = T; log y."""
    last = normalise_at_end(flow_last)[0]
    late = normalise_at_end(flow_late)[0]
    t = np.arange(1, len(last) + 1, dtype=np.float64)
    fig = go.Figure(
        [
            *floor_line(t, last, _("last character's loss ℓ_T"), palette.series(0)),
            *floor_line(t[: len(late)], late, _("mean loss of the last 5"), palette.series(1)),
        ]
    )
    _through_time(fig, len(last), _("How far back one loss reaches"),
                  _("‖∂ℓ/∂H_t‖, 1 at t = T (log)"), "flow_reach")  # fmt: skip
    return with_subtitle(fig, _("at training step {step}").format(step=step))


def reach_overlay_figure(runs: Mapping[str, np.ndarray]) -> go.Figure:
    """Saved runs' last recorded ||∂ℓ_T/∂H_t||, each normalised to 1 at its t = T, on one
    chart: shared axes (t = 1..the longest T), one floor."""
    title = _("Run by run: how far back one loss reaches")
    rows = {name: normalise_at_end(flow)[0] for name, flow in runs.items() if np.size(flow)}
    if not rows:
        return empty_figure(title, _("The chosen runs recorded no gradient flow."))
    fig = go.Figure()
    for i, (name, normed) in enumerate(rows.items()):
        t = np.arange(1, len(normed) + 1, dtype=np.float64)
        for trace in floor_line(t, normed, name, palette.series(i)):
            fig.add_trace(trace)
    longest = max(len(r) for r in rows.values())
    y_title = _("‖∂ℓ_T/∂H_t‖, 1 at t = T (log)")
    return _through_time(fig, longest, title, y_title, "reach_overlay")


def reach_figure(runs: Mapping[str, np.ndarray]) -> go.Figure:
    """One bar per saved run: its reach (steps back where the normalised gradient is still
    >= 1e-3), against its window T - 1 (the grey bar behind it)."""
    title = _("Reach: steps back where the gradient is still ≥ {level} of its size at T").format(
        level=f"{REACH_LEVEL:g}"
    )
    rows = {name: normalise_at_end(flow)[0] for name, flow in runs.items() if np.size(flow)}
    reach = {name: reach_steps(normed) for name, normed in rows.items()}
    reach = {name: r for name, r in reach.items() if r is not None}
    if not reach:
        return empty_figure(title, _("The chosen runs recorded no gradient flow."))
    names = list(reach)
    of = _("{s} of {w}")
    window = [len(rows[n]) - 1 for n in names]
    steps = [reach[n] for n in names]
    fig = go.Figure(
        [
            go.Bar(y=names, x=window, orientation="h", name=_("window (T - 1)"),
                   marker=dict(color=palette.LIGHT_GREY),
                   hovertemplate=_("window {x}").format(x="%{x}") + "<extra></extra>"),
            go.Bar(y=names, x=steps, orientation="h", name=_("reach"),
                   marker=dict(color=palette.BLUE),
                   text=[of.format(s=s, w=w) for s, w in zip(steps, window, strict=True)],
                   textposition="outside",
                   hovertemplate=_("reach {x} steps back").format(x="%{x}")
                   + "<extra>%{y}</extra>"),
        ]
    )  # fmt: skip
    apply_layout(fig, title, _("steps back from t = T"), "", "reach", hovermode="closest")
    fig.update_layout(barmode="overlay", showlegend=True)
    fig.update_yaxes(type="category", autorange="reversed")  # run names, the first on top
    return fig


def grad_flow_heatmap_figure(
    flow_steps: np.ndarray,
    flow: np.ndarray,
    title: str | None = None,
    colour_title: str = "log10 ||dL/dH_t||",
) -> go.Figure:
    """log10 of ``flow`` (e.g. ||dL/dH_t||) for every recorded step: x = t (1..T), y = step.
    Cells below the floor take the floor's colour (the bottom of the scale, 'below 1e-30').
    ``title`` None: 'Gradient flow through time over training', in the reader's language."""
    if title is None:
        title = _("Gradient flow through time over training")
    flow_steps = np.asarray(flow_steps).reshape(-1)
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 2 or flow.shape[0] != len(flow_steps):
        raise ValueError(
            f"grad_flow_heatmap_figure: flow {flow.shape} does not match steps {flow_steps.shape}"
        )
    if flow.size == 0:
        return empty_figure(title, _("No gradient-flow rows recorded yet"))
    order = np.argsort(flow_steps, kind="stable")
    flow_steps, flow = flow_steps[order], flow[order]
    rows = np.unique(np.linspace(0, len(flow_steps) - 1, HEATMAP_MAX_ROWS).round().astype(int))
    cols = np.unique(np.linspace(0, flow.shape[1] - 1, MAX_POINTS).round().astype(int))
    drawn, below = at_floor(flow[np.ix_(rows, cols)])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(np.isfinite(drawn), np.log10(drawn), np.nan)
    bar: dict = dict(title=dict(text=colour_title))
    floor = float(np.log10(FLOOR))
    if below.any():  # the floor is the scale's bottom, labelled
        top = float(np.nanmax(z))
        ticks = [v for v in np.linspace(floor, top, 6)[1:]]
        ticktext = [_(FLOOR_LABEL), *(f"{v:.0f}" for v in ticks)]
        bar.update(tickvals=[floor, *ticks], ticktext=ticktext)
    fig = go.Figure(
        go.Heatmap(
            z=z, x=(cols + 1).astype(np.int64), y=flow_steps[rows].astype(np.int64),
            colorscale=palette.SEQUENTIAL, hoverongaps=False, colorbar=bar,
            zmin=floor if below.any() else None,
            hovertemplate=_("t={t}<br>step {step}<br>log10 norm={value}").format(
                t="%{x}", step="%{y}", value="%{z:.2f}"
            )
            + "<extra></extra>",
        )
    )  # fmt: skip
    apply_layout(
        fig, title, _("time step t"), _("training step"), "grad_flow_heatmap", hovermode="closest"
    )
    fig.update_xaxes(range=[0.5, flow.shape[1] + 0.5], autorange=False)
    fig.update_layout(showlegend=False)
    return fig


def reach_and_history_figure(
    flow_last: np.ndarray, flow_late: np.ndarray, flow_steps: np.ndarray, history: np.ndarray
) -> go.Figure:
    """The Through time view's chart: how far back one loss reaches at the last flow record
    (``flow_reach_figure``) over the same reach at every recorded step (the heatmap of
    ``history``, ||∂ℓ_T/∂H_t|| per record, normalised to 1 at t = T), stacked as the panels of
    one figure (``panels.stacked``) on one t axis: one chart for the browser to mount."""
    flow_steps = np.asarray(flow_steps).reshape(-1)
    step = int(flow_steps[-1])
    now = flow_reach_figure(flow_last, flow_late, step)
    over = grad_flow_heatmap_figure(
        flow_steps,
        normalise_at_end(history),
        _("How far back the last loss reaches, over training"),
        _("log10 of 1 at t = T"),
    )
    labels = [_("at training step {step}").format(step=f"{step:,}"), _("over training")]
    return stacked([now, over], _("How far back one loss reaches"), labels, PANEL_PX)
