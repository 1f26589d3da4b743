"""Figures of a trainability map (``gru_core.sweep.job``): the models' maps side by side on one
colour scale. Pure: results in, plotly figures out; what each cell says (category, word,
hover) is ``map_cells.py``'s.

``maps_figure`` draws one heatmap per model as subplots of one figure. The axes are
categorical (the sweep's values, 'off' for clipping off), drawn at integer positions with the
values as tick labels. A cell (over its seeds: ``sweep_results.summarize``) is either

- **a number**: a run that learned or did not learn, coloured by its final validation
  perplexity (training perplexity without a validation slice) on a log scale. Every model's
  map reads the same ``coloraxis``, so one colour bar serves them all and the same perplexity
  has the same colour on every map; the bar is labelled with full numbers
  (``ticks.log_ticks``) and the number is written in the cell; or
- **a category**, outside the scale, in its own colour with a legend entry and its word in
  the cell (never colour alone): diverged (NaN/inf, "diverged @ step 12", drawn once any seed
  has), blew up or error, memorised, not finished ("…"), stopped. The categories come from the
  results: a verdict this module has no colour for gets a spare style
  (``palette.SPARE_CATEGORIES``).

The theory at initialisation (``gru_core.sweep.edge``): each cell's hover gives the largest
Lyapunov exponent λ of its untrained network (``CellResult.lyapunov``), and with ``edges`` a
map with init std on an axis draws the λ = 0 crossing of each (model, hidden size) as a
labelled line, "edge of chaos (theory, at initialisation)", placed on the log scale between
the ladder's cells (a segment per row or column, since the hidden size may be the other axis).

Every cell carries ``customdata = [x value, y value, model]`` (None for clipping off), so a
click maps back to the cell (``clicked_cell``); its hover lists every number of every seed,
with the perplexity curve as a text sparkline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.base import (
    AXIS_TITLE_PX,
    HEIGHT,
    INK,
    TICK_INK,
    TICK_PX,
    apply_layout,
    empty_figure,
)
from dashboard.charts.map_cells import category, cell_label, hover, shown_value, styles
from dashboard.charts.palette import SEQUENTIAL
from dashboard.charts.ticks import log_ticks
from gru_core.config import MODEL_TITLES
from gru_core.i18n import N_, _
from gru_core.sweep.results import CellResult, summarize
from gru_core.sweep.spec import AXIS_TITLES, SweepSpec, Value, axis_value

COLORSCALE = SEQUENTIAL  # low perplexity dark, high bright
EDGE_NAME = N_("edge of chaos (theory, at initialisation)")  # worded where drawn
MAP_HEIGHT = HEIGHT + 60
CLICK_MARKER_PX = 40  # the click layer's squares: most of a cell at the usual map size

Edges = Mapping[tuple[str, int], float | None]  # (model, hidden) -> init std where λ = 0


def _grid(results: Sequence[CellResult], spec: SweepSpec, model: str) -> dict[str, np.ndarray]:
    """One model's cells as arrays (rows y, columns x): z = log10 perplexity, the category
    code, text, hover and customdata."""
    xs, ys = list(spec.x_values), list(spec.y_values)
    x_name, y_name = _(AXIS_TITLES[spec.x_axis]), _(AXIS_TITLES[spec.y_axis])
    cells = {(c.x, c.y): c for c in summarize(r for r in results if r.model == model)}
    shape = (len(ys), len(xs))
    grid = dict(
        z=np.full(shape, np.nan), kind=np.full(shape, "pending", dtype=object),
        text=np.full(shape, "…", dtype=object), hover=np.full(shape, "", dtype=object),
        custom=np.empty((*shape, 3), dtype=object),
    )  # fmt: skip
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            grid["custom"][i, j] = [x, y, model]
            cell = cells.get((x, y))
            if cell is None:
                where = f"{x_name} {shown_value(x)} · {y_name} {shown_value(y)}"
                grid["hover"][i, j] = _("<b>{model}</b> · {where}: not started").format(
                    model=model, where=where
                )
                continue
            lam = cell.runs[0].lyapunov
            kind = category(cell)
            grid["kind"][i, j], grid["text"][i, j] = kind, cell_label(cell, kind)
            grid["hover"][i, j] = hover(cell, x_name, y_name, lam)
            if kind == "value":
                grid["z"][i, j] = math.log10(cell.perplexity)  # type: ignore[arg-type]
    return grid


def maps_figure(
    results: Sequence[CellResult],
    spec: SweepSpec,
    models: Sequence[str] | None = None,
    edges: Edges | None = None,
) -> go.Figure:
    """Every model's map (default: the spec's models) side by side on one colour scale,
    from the runs in ``results`` (any subset; a run not in it is drawn as not finished)."""
    models = list(models or spec.models)
    xs, ys = list(spec.x_values), list(spec.y_values)
    x_name, y_name = _(AXIS_TITLES[spec.x_axis]), _(AXIS_TITLES[spec.y_axis])
    if len(models) > 1:
        title = _("Final perplexity by {x} and {y}: one colour scale for every map")
    else:
        title = _("{model}: final perplexity by {x} and {y}")
    title = title.format(model=_(MODEL_TITLES[models[0]]), x=x_name, y=y_name)
    mine = [r for r in results if r.model in models]
    if not mine:
        return empty_figure(title, _("No runs yet: start the sweep to fill the map."))
    fig = make_subplots(
        rows=1, cols=len(models), shared_yaxes=True, horizontal_spacing=0.04,
        subplot_titles=[_(MODEL_TITLES[m]) for m in models] if len(models) > 1 else None,
    )  # fmt: skip
    grids = [_grid(results, spec, m) for m in models]
    codes = {str(k) for g in grids for k in g["kind"].ravel()} - {"value"}
    shown = styles(codes)
    common = dict(
        x=list(range(len(xs))), y=list(range(len(ys))), xgap=2, ygap=2,
        hoverinfo="skip", texttemplate="%{text}", hoverongaps=False,
    )  # fmt: skip
    for col, (model, g) in enumerate(zip(models, grids, strict=True), start=1):
        fig.add_trace(
            go.Heatmap(
                z=g["z"], text=g["text"], hovertext=g["hover"], customdata=g["custom"],
                coloraxis="coloraxis", name=_("perplexity"), meta=model, **common,
            ),
            row=1, col=col,
        )  # fmt: skip
        for code, colour, label, white, _symbol in shown:  # one flat colour per category
            mask = g["kind"] == code
            if not mask.any():
                continue
            fig.add_trace(
                go.Heatmap(
                    z=np.where(mask, 1.0, np.nan), text=np.where(mask, g["text"], ""),
                    hovertext=g["hover"], customdata=g["custom"],
                    colorscale=[[0, colour], [1, colour]], showscale=False, name=label,
                    meta=model, textfont=dict(color="#ffffff" if white else INK), **common,
                ),
                row=1, col=col,
            )  # fmt: skip
        # A click layer: plotly reports no selection for heatmap cells, so one invisible
        # square marker per cell carries the cell's customdata and hover (and gets clicks).
        gx, gy = np.meshgrid(np.arange(len(xs)), np.arange(len(ys)))
        fig.add_trace(
            go.Scatter(
                x=gx.ravel(), y=gy.ravel(), mode="markers",
                marker=dict(symbol="square", size=CLICK_MARKER_PX, opacity=0),
                customdata=g["custom"].reshape(-1, 3), hovertext=g["hover"].ravel(),
                hovertemplate="%{hovertext}<extra></extra>", name="cells", meta=model,
                showlegend=False,
            ),
            row=1, col=col,
        )  # fmt: skip
        if edges:
            _edge_line(fig, spec, model, edges, col, first=col == 1)
    for code, colour, label, _white, symbol in shown:  # the legend: colour and marker
        fig.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="markers", name=label, legendgroup=code,
                marker=dict(symbol=symbol, size=12, color=colour, line=dict(color=INK, width=1)),
                showlegend=True,
            )
        )  # fmt: skip
    z = np.concatenate([g["z"].ravel() for g in grids])
    apply_layout(fig, title, "", "", uirevision="map-" + "-".join(models), hovermode="closest")
    fig.update_layout(
        height=MAP_HEIGHT, plot_bgcolor="#ffffff", coloraxis=_coloraxis(z, _bar_title(mine))
    )
    if len(models) > 1:  # the legend clear of the maps' titles
        fig.update_layout(height=MAP_HEIGHT + 30, legend_y=1.1, margin_t=120)
    labels = dict(
        tickmode="array", showgrid=False, zeroline=False,
        tickfont=dict(size=TICK_PX, color=TICK_INK),
    )  # fmt: skip
    ink = dict(size=AXIS_TITLE_PX, color=INK)  # every subplot's axes read alike
    fig.update_xaxes(
        tickvals=list(range(len(xs))), ticktext=[shown_value(x) for x in xs],
        title=dict(text=x_name, font=ink), **labels,
    )  # fmt: skip
    fig.update_yaxes(tickvals=list(range(len(ys))), ticktext=[shown_value(y) for y in ys], **labels)
    fig.update_yaxes(title=dict(text=y_name, font=ink), row=1, col=1)
    return fig


def map_figure(
    results: Sequence[CellResult], spec: SweepSpec, model: str, edges: Edges | None = None
) -> go.Figure:
    """One model's map (``maps_figure`` of that model alone)."""
    return maps_figure(results, spec, [model], edges)


def _bar_title(mine: Sequence[CellResult]) -> str:
    has_val = any(r.final_val_perplexity is not None for r in mine)
    return _("validation<br>perplexity") if has_val else _("training<br>perplexity")


def _coloraxis(z: np.ndarray, title: str) -> dict:
    """One scale over log10(perplexity) of every map, labelled with full numbers."""
    axis: dict = dict(colorscale=COLORSCALE)
    finite = z[np.isfinite(z)]
    if not finite.size:
        return {**axis, "showscale": False}
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo < 1e-9:  # one value: a small span around it, so it still has a colour
        lo, hi = lo - 0.05, hi + 0.05
    bar: dict = dict(title=dict(text=title), thickness=14)
    ticks = log_ticks(10**lo, 10**hi)
    if ticks:
        bar.update(tickvals=[math.log10(v) for v in ticks[0]], ticktext=ticks[1])
    else:
        values = sorted({float(finite.min()), float(finite.max())})
        bar.update(tickvals=values, ticktext=[f"{10**v:.3g}" for v in values])
    return {**axis, "cmin": lo, "cmax": hi, "showscale": True, "colorbar": bar}


def std_position(values: Sequence[Value], std: float) -> float | None:
    """Where init std ``std`` falls on a categorical axis of ascending ``values`` (cell i at
    position i), interpolated in log10; half a cell past either end at most, else None."""
    logs = [math.log10(v) for v in values if v is not None]  # type: ignore[arg-type]
    if len(logs) != len(values) or not logs or logs != sorted(logs) or std <= 0:
        return None
    s = math.log10(std)
    if len(logs) == 1:
        return 0.0 if s == logs[0] else None
    i = min(max(int(np.searchsorted(logs, s)) - 1, 0), len(logs) - 2)
    pos = i + (s - logs[i]) / (logs[i + 1] - logs[i])
    return pos if -0.5 <= pos <= len(logs) - 0.5 else None


def _edge_line(
    fig: go.Figure, spec: SweepSpec, model: str, edges: Edges, col: int, first: bool
) -> None:
    """The λ = 0 crossing as a line segment per row (init std on x) or column (on y)."""
    if "init_std" not in (spec.x_axis, spec.y_axis):
        return
    on_x = spec.x_axis == "init_std"
    stds, others = (spec.x_values, spec.y_values) if on_x else (spec.y_values, spec.x_values)
    other_axis = spec.y_axis if on_x else spec.x_axis
    line_x: list[float | None] = []
    line_y: list[float | None] = []
    for k, other in enumerate(others):
        hidden = int(other) if other_axis == "hidden_size" else spec.base.hidden_size  # type: ignore[arg-type]
        edge = edges.get((model, hidden))
        pos = std_position(stds, edge) if edge is not None else None
        if pos is None:
            continue
        along, across = [pos, pos, None], [k - 0.5, k + 0.5, None]
        line_x += along if on_x else across
        line_y += across if on_x else along
    if not line_x:
        return
    for colour, width, dash, show in (
        ("#ffffff", 6, "solid", False),
        ("#000000", 3, "dash", first),
    ):
        fig.add_trace(
            go.Scatter(
                x=line_x, y=line_y, mode="lines", name=_(EDGE_NAME), legendgroup="edge",
                line=dict(color=colour, width=width, dash=dash), hoverinfo="skip",
                showlegend=show, meta=model,
            ),
            row=1, col=col,
        )  # fmt: skip


def clicked_cell(
    customdata: Sequence[object], spec: SweepSpec | None = None
) -> tuple[Value, Value, str]:
    """(x value, y value, model) of a clicked map cell, from its ``customdata``; with the
    spec, each value as its axis holds it (an int for T and hidden size)."""
    x, y, model = customdata[:3]
    if spec is not None:
        return axis_value(spec.x_axis, x), axis_value(spec.y_axis, y), str(model)
    return _value(x), _value(y), str(model)


def _value(v: object) -> Value:
    return None if v is None else float(v)  # type: ignore[arg-type]
