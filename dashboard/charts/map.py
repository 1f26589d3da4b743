"""Figures of a trainability map (``gru_core.sweep.job``): the heatmap of one model's map and
a sparkline of one cell's perplexity curve. Pure: results in, plotly figures out.

The map's axes are categorical (the sweep's values, 'off' for clipping off), drawn at integer
positions with the values as tick labels. A cell (over its seeds: ``sweep_results.summarize``)
is one of:

- **finished**: coloured by its final validation perplexity (training perplexity without a
  validation slice) on a log scale, the colour bar labelled with full numbers
  (``ticks.log_ticks``), the number written in the cell;
- **diverged** (a loss or gradient norm became NaN/inf; drawn once any seed has) in dark red,
  "diverged @ step 12"; **blew up** (finite but exploded, ``verdict``) or error in red;
- **not finished** in light grey with "…"; stopped before it ran in grey.

Every cell carries ``customdata = [x value, y value, model]`` (None for clipping off), so a
click maps back to the cell (``clicked_cell``); its hover lists every number of every seed,
with the perplexity curve as a text sparkline.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.charts.base import HEIGHT, INK, RED, apply_layout, empty_figure
from dashboard.charts.ticks import log_ticks
from gru_core.sweep.results import CellResult, CellSummary, summarize
from gru_core.sweep.spec import AXIS_TITLES, SweepSpec, Value, axis_label

COLORSCALE = "Viridis"  # low perplexity dark, high bright
# The cells drawn apart, by code: colour and legend label.
KINDS = (
    ("diverged", "#67000d", "diverged (NaN/inf)"),
    ("blew up", RED, "blew up / error"),
    ("pending", "#e6e6e6", "not finished"),
    ("other", "#bdbdbd", "stopped / no number"),
)
SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 24  # characters of a hover sparkline
MAP_HEIGHT = HEIGHT + 60


def sparkline_text(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """A curve as block characters on a log scale ('▇▅▃▂▁'); '' without finite values."""
    v = np.log(np.asarray([x for x in values if math.isfinite(x) and x > 0], dtype=np.float64))
    if v.size == 0:
        return ""
    if v.size > width:  # bucket means
        v = np.array([chunk.mean() for chunk in np.array_split(v, width)])
    lo, span = float(v.min()), float(np.ptp(v))
    idx = np.zeros(v.size, dtype=int) if span == 0 else ((v - lo) / span * 7).round().astype(int)
    return "".join(SPARK[i] for i in idx)


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _run_lines(r: CellResult) -> list[str]:
    state = r.verdict or r.status
    if r.diverged_step is not None:
        state = f"diverged at step {r.diverged_step}"
    lines = [
        f"<b>seed {r.seed}</b>: {state} after {r.steps} steps, {r.epochs} epochs",
        f"  val perplexity {_num(r.final_val_perplexity)} (best {_num(r.best_val_perplexity)})",
        f"  train perplexity {_num(r.final_train_perplexity)} "
        f"(best {_num(r.best_train_perplexity)})",
        f"  max grad norm {_num(r.max_grad_norm)}, clipped "
        f"{'—' if r.clipped_share is None else f'{r.clipped_share:.0%}'} of steps",
        f"  steps to target {_num(r.steps_to_target, 'd')}",
    ]
    spark = sparkline_text(r.curve_perplexity)
    if spark:
        lines.append(f"  perplexity {spark}")
    if r.status == "error" and r.headline:
        lines.append(f"  {html.escape(r.headline[:120])}")
    return lines


def _hover(cell: CellSummary, x_name: str, y_name: str) -> str:
    head = (
        f"<b>{cell.model}</b> · {x_name} {axis_label(cell.x)} · {y_name} {axis_label(cell.y)}"
        f"<br>{cell.verdict or 'training…'}; {cell.finished}/{len(cell.runs)} seeds finished"
    )
    return head + "".join("<br>" + line for r in cell.runs for line in _run_lines(r))


def _kind(cell: CellSummary) -> str:
    """'value', or one of KINDS' codes (module docstring)."""
    if cell.diverged_runs or cell.verdict == "diverged":
        return "diverged"
    if cell.verdict in ("blew up", "error"):
        return "blew up"
    if cell.verdict is None:
        return "pending"
    return "value" if cell.perplexity is not None else "other"


def _text(cell: CellSummary, kind: str) -> str:
    if kind == "diverged":
        seeds = "" if cell.diverged_runs == len(cell.runs) else f"<br>{cell.diverged_runs}/"
        return f"diverged @ step {cell.diverged_step}" + (
            f"{seeds}{len(cell.runs)} seeds" if seeds else ""
        )
    if kind == "value":
        return f"{cell.perplexity:.3g}"
    return {"pending": "…", "blew up": cell.verdict or "", "other": cell.verdict or ""}[kind]


CLICK_MARKER_PX = 40  # the click layer's squares: most of a cell at the usual map size


def map_figure(
    results: Sequence[CellResult], spec: SweepSpec, model: str, title: str | None = None
) -> go.Figure:
    """The heatmap of ``model``'s map from the runs in ``results`` (any subset; a run not
    in it is drawn as not finished). See the module docstring."""
    xs, ys = list(spec.x_values), list(spec.y_values)
    x_name, y_name = AXIS_TITLES[spec.x_axis], AXIS_TITLES[spec.y_axis]
    title = title or f"{model.upper()}: final perplexity by {x_name} and {y_name}"
    mine = [r for r in results if r.model == model]
    cells = {(c.x, c.y): c for c in summarize(mine)}
    if not cells:
        return empty_figure(title, "No runs yet: start the sweep to fill the map.")
    shape = (len(ys), len(xs))
    z = np.full(shape, np.nan)
    codes = np.full(shape, np.nan)
    text = np.full(shape, "", dtype=object)
    hover = np.full(shape, "", dtype=object)
    custom = np.empty((*shape, 3), dtype=object)
    codes_of = {code: i for i, (code, _, _) in enumerate(KINDS)}
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            custom[i, j] = [x, y, model]
            cell = cells.get((x, y))
            if cell is None:
                codes[i, j], text[i, j] = codes_of["pending"], "…"
                hover[i, j] = f"{x_name} {axis_label(x)} · {y_name} {axis_label(y)}: not started"
                continue
            kind = _kind(cell)
            text[i, j], hover[i, j] = _text(cell, kind), _hover(cell, x_name, y_name)
            if kind == "value":
                z[i, j] = math.log10(cell.perplexity)  # type: ignore[arg-type]
            else:
                codes[i, j] = codes_of[kind]
    has_val = any(r.final_val_perplexity is not None for r in mine)
    bar_title = "validation<br>perplexity" if has_val or not mine else "training<br>perplexity"
    fig = go.Figure()
    common = dict(
        x=list(range(len(xs))),
        y=list(range(len(ys))),
        xgap=2,
        ygap=2,
        customdata=custom,
        hovertemplate="%{hovertext}<extra></extra>",
        texttemplate="%{text}",
        hoverongaps=False,
    )
    fig.add_trace(
        go.Heatmap(
            z=z,
            text=text,
            hovertext=hover,
            colorscale=COLORSCALE,
            name="perplexity",
            colorbar=_colorbar(z, bar_title),
            **common,
        )
    )
    for i, (code, colour, label) in enumerate(KINDS):  # one flat colour per kind drawn apart
        mask = np.where(codes == i, 1.0, np.nan)
        fig.add_trace(
            go.Heatmap(
                z=mask,
                text=np.where(codes == i, text, ""),
                hovertext=hover,
                colorscale=[[0, colour], [1, colour]],
                showscale=False,
                name=label,
                textfont=dict(color="#ffffff" if code in ("diverged", "blew up") else INK),
                **common,
            )
        )
    # A click layer: plotly reports no selection for heatmap cells, so one invisible square
    # marker per cell carries the cell's customdata and hover (and gets the clicks).
    gx, gy = np.meshgrid(np.arange(len(xs)), np.arange(len(ys)))
    fig.add_trace(
        go.Scatter(
            x=gx.ravel(),
            y=gy.ravel(),
            mode="markers",
            marker=dict(symbol="square", size=CLICK_MARKER_PX, opacity=0),
            customdata=custom.reshape(-1, 3),
            hovertext=hover.ravel(),
            hovertemplate="%{hovertext}<extra></extra>",
            name="cells",
            showlegend=False,
        )
    )
    fig.update_traces(hoverinfo="skip", hovertemplate=None, selector=dict(type="heatmap"))
    for code, colour, label in KINDS:  # a legend for the cells drawn apart
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=label,
                marker=dict(symbol="square", size=12, color=colour),
                showlegend=bool(np.any(codes == codes_of[code])),
            )
        )
    apply_layout(fig, title, x_name, y_name, uirevision=f"map-{model}", hovermode="closest")
    fig.update_xaxes(
        tickmode="array",
        tickvals=list(range(len(xs))),
        ticktext=[axis_label(x) for x in xs],
        showgrid=False,
        zeroline=False,
    )
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(len(ys))),
        ticktext=[axis_label(y) for y in ys],
        showgrid=False,
        zeroline=False,
    )
    fig.update_layout(height=MAP_HEIGHT, plot_bgcolor="#ffffff")
    return fig


def _colorbar(z: np.ndarray, title: str) -> dict:
    """A colour bar over log10(perplexity) labelled with full numbers (ticks.log_ticks)."""
    bar: dict = dict(title=dict(text=title), thickness=14)
    finite = z[np.isfinite(z)]
    if finite.size:
        ticks = log_ticks(10 ** float(finite.min()), 10 ** float(finite.max()))
        if ticks:
            bar.update(tickvals=[math.log10(v) for v in ticks[0]], ticktext=ticks[1])
        else:
            lo, hi = float(finite.min()), float(finite.max())
            values = sorted({lo, hi})
            bar.update(tickvals=values, ticktext=[f"{10**v:.3g}" for v in values])
    return bar


def clicked_cell(customdata: Sequence[object]) -> tuple[Value, Value, str]:
    """(x value, y value, model) of a clicked map cell, from its ``customdata``."""
    x, y, model = customdata[:3]
    return _value(x), _value(y), str(model)


def _value(v: object) -> Value:
    return None if v is None else float(v)  # type: ignore[arg-type]
