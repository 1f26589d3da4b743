"""Figures of what happens inside the cell: gate distributions over training, gate heatmaps
and the colour-coded probe text (the gradient flowing back through time: ``flow.py``). Pure:
arrays and DataFrames in, plotly figures (or escaped HTML) out.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.charts import palette
from dashboard.charts.base import apply_layout, numeric_column, steps_x
from dashboard.charts.panels import stacked
from dashboard.charts.thinning import downsample
from gru_core.i18n import _
from gru_core.model.gates import GATES
from gru_core.model.gates import label as gate_label
from gru_core.step.stats import MEAN, PERCENTILES, SATURATED, gate_column, percentile_suffix

# Hidden units shown in a gate heatmap: 64 rows of about 4 px in its 240 px plot (256 rows
# were finer than the plot's pixels, and twice as slow to draw: benchmarks/chart_draw.py).
HEATMAP_MAX_UNITS = 64
# The heatmap's character labels: one per column, small enough that the probe's 60 fit
# side by side in half a 1400 px page. At the common 13 px they overlapped there, and
# plotly's handling of overlapping tick labels made a heatmap 3-5x slower to draw in
# Chromium (benchmarks/chart_draw.py, benchmarks/README.md).
CHAR_TICK_PX = 10
# A gate's panel in the Gates view's figures (panels.stacked): two gates, one over the other.
PANEL_PX = 170
DEEP_BLUE = (8, 48, 107)  # the dark end of plotly's 'Blues'


def gate_range(gate: str) -> tuple[float, float] | None:
    """A gate's value range from the registry, or None for a name it does not know."""
    entry = GATES.get(gate)
    return entry.range if entry else None


def gate_bands_figure(steps: pd.DataFrame, gate: str) -> go.Figure:
    """Percentile bands (p5–p95 light, p25–p75 darker), median, mean (dashed) of one gate,
    and its saturated fraction on a right-hand axis (0..1)."""
    label = _(gate_label(gate))
    title = _("{gate}: distribution per step").format(gate=label)
    low, q1, median, q3, high = map(percentile_suffix, PERCENTILES)  # the bands' edges
    names = (low, q1, median, q3, high, MEAN, SATURATED)
    x = steps_x(steps)
    cols = {n: numeric_column(steps, gate_column(gate, n)) for n in names}
    keep = np.isfinite(x)
    for n in names[:-1]:
        keep &= np.isfinite(cols[n])
    x, cols = downsample(x[keep], {n: c[keep] for n, c in cols.items()})
    cols[SATURATED] = np.where(np.isfinite(cols[SATURATED]), cols[SATURATED], np.nan)
    band = dict(line=dict(width=0), hoverinfo="skip", mode="lines")
    light, dark = (palette.rgba(palette.SKY_BLUE, a) for a in (0.2, 0.45))
    fig = go.Figure(
        [
            # Each band is an invisible upper edge, then a lower edge filled up to it.
            go.Scatter(x=x, y=cols[high], name=high, showlegend=False, **band),
            go.Scatter(
                x=x, y=cols[low], name=f"{low}–{high}", fill="tonexty", fillcolor=light, **band
            ),
            go.Scatter(x=x, y=cols[q3], name=q3, showlegend=False, **band),
            go.Scatter(x=x, y=cols[q1], name=f"{q1}–{q3}", fill="tonexty", fillcolor=dark, **band),
            go.Scatter(
                x=x,
                y=cols[median],
                name=_("median"),
                mode="lines",
                line=palette.MEDIAN.line(width=1.5),
            ),  # fmt: skip
            go.Scatter(x=x, y=cols[MEAN], name=_("mean"), mode="lines", line=palette.MEAN.line()),
            go.Scatter(
                x=x,
                y=cols[SATURATED],
                name=_("saturated"),
                mode="lines",
                yaxis="y2",
                line=palette.SATURATED.line(width=1.5),
            ),
        ]
    )
    value_range = gate_range(gate)
    own = dict(
        yaxis2=dict(
            title=dict(text=_("saturated fraction")),
            overlaying="y",
            side="right",
            range=[0, 1],
            showgrid=False,
            tickformat=".0%",
        ),
        # five legend entries, two to a row: three rows between the title and the plot
        margin=dict(r=70, t=120),
        legend=dict(entrywidth=0.5, entrywidthmode="fraction"),
        **({"yaxis": dict(range=list(value_range))} if value_range is not None else {}),
    )
    y_title = _("{gate} value").format(gate=gate)
    return apply_layout(fig, title, _("training step"), y_title, f"gate_bands:{gate}", extra=own)


def gates_bands_figure(steps: pd.DataFrame, gates: Sequence[str]) -> go.Figure:
    """The band charts of ``gates`` (``gate_bands_figure``), stacked as the panels of one
    figure: one chart for the browser to mount (``panels.stacked``); one gate: its own."""
    parts = [gate_bands_figure(steps, gate) for gate in gates]
    title = _("Gates: distribution per step")
    return stacked(parts, title, [gate_label(gate) for gate in gates], PANEL_PX)


def gates_heatmap_figure(
    values: dict[str, np.ndarray], text: str, gates: Sequence[str]
) -> go.Figure:
    """The probe heatmaps of those of ``gates`` the probe traced (``gate_heatmap_figure``),
    stacked as the panels of one figure; ``values``: gate -> (T, H) activations."""
    shown = [gate for gate in gates if values.get(gate) is not None]
    if not shown:
        raise ValueError(f"gates_heatmap_figure: the probe traced none of {list(gates)}")
    parts = [gate_heatmap_figure(values[gate], text, gate) for gate in shown]
    units = np.asarray(values[shown[0]]).shape[1]
    if units > HEATMAP_MAX_UNITS:
        title = _("Gates on the probe text (first {shown} of {units} hidden units)")
    else:
        title = _("Gates on the probe text")
    title = title.format(shown=HEATMAP_MAX_UNITS, units=units)
    return stacked(parts, title, [gate_label(gate) for gate in shown], PANEL_PX)


def _char_label(ch: str) -> str:
    """How one character is shown on an axis or in the probe text."""
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(ch, ch)


def gate_heatmap_figure(values: np.ndarray, text: str, gate: str) -> go.Figure:
    """A gate's activations on the probe text: x = time step (its character), y = hidden unit.

    values: (T, H) with T == len(text). At most HEATMAP_MAX_UNITS units are shown.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"gate_heatmap_figure: values has shape {values.shape}; expected (T, H)")
    T, H = values.shape
    if len(text) != T:
        raise ValueError(f"gate_heatmap_figure: text has {len(text)} characters, values T={T}")
    label = _(gate_label(gate))
    if H > HEATMAP_MAX_UNITS:
        title = _("{gate} on the probe text (first {shown} of {units} hidden units)")
    else:
        title = _("{gate} on the probe text")
    title = title.format(gate=label, shown=HEATMAP_MAX_UNITS, units=H)
    z = values[:, :HEATMAP_MAX_UNITS].T  # (units, T)
    value_range = gate_range(gate)
    finite = z[np.isfinite(z)]
    if value_range is None:  # unknown gate: the data's range, diverging if it has a sign
        low = float(finite.min()) if finite.size else 0.0
        high = float(finite.max()) if finite.size else 1.0
        value_range = (
            (-max(abs(low), abs(high)), max(abs(low), abs(high))) if low < 0 else (low, high)
        )
    diverging = value_range[0] < 0
    t = np.arange(T)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=t,
            y=np.arange(z.shape[0]),
            zmin=value_range[0],
            zmax=value_range[1],
            colorscale=palette.DIVERGING if diverging else palette.SEQUENTIAL,
            hoverongaps=False,
            colorbar=dict(title=dict(text=gate)),
            name=label,
            hovertemplate="t=%{x}<br>"
            + _("unit {unit}").format(unit="%{y}")
            + "<br>"
            + gate
            + "=%{z:.3f}<extra></extra>",
        )
    )
    shown = t[:: max(1, -(-T // 100))]
    apply_layout(
        fig,
        title,
        _("time step (character)"),
        _("hidden unit"),
        f"gate_heatmap:{gate}",
        hovermode="closest",
    )
    fig.update_layout(
        xaxis=dict(
            tickmode="array",
            tickvals=shown,
            ticktext=[_char_label(text[i]) for i in shown],
            tickangle=0,
            tickfont=dict(size=CHAR_TICK_PX),
        ),
        showlegend=False,
    )
    return fig


def _blend(z: float) -> tuple[str, str]:
    """Background (white -> deep blue as z goes 0 -> 1) and a readable text colour."""
    if not math.isfinite(z):
        return "#dddddd", "#111111"
    z = min(max(z, 0.0), 1.0)
    r, g, b = (round(255 + (c - 255) * z) for c in DEEP_BLUE)
    return f"rgb({r},{g},{b})", "#ffffff" if z > 0.5 else "#111111"


def probe_text_html(text: str, z_mean: np.ndarray) -> str:
    """The probe text, each character shaded by its mean update gate Z (0 white, 1 deep blue).

    A character whose Z is near 1 keeps the old hidden state; near 0 it writes a new one.
    The result is escaped HTML for ``st.html`` / ``st.markdown(..., unsafe_allow_html=True)``.
    """
    z_mean = np.asarray(z_mean, dtype=np.float64).reshape(-1)
    if len(z_mean) != len(text):
        raise ValueError(f"probe_text_html: {len(text)} characters but {len(z_mean)} Z values")
    spans = []
    for ch, z in zip(text, z_mean, strict=True):
        background, color = _blend(float(z))
        shown = html.escape(_char_label(ch))
        tip = html.escape(f"{ch!r}: Z = {z:.2f}", quote=True)
        spans.append(
            f'<span style="background:{background};color:{color};padding:0.1em 0.05em;'
            f'border-radius:2px" title="{tip}">{shown}</span>'
        )
    gradient = "linear-gradient(to right, #ffffff, rgb({},{},{}))".format(*DEEP_BLUE)
    writes, keeps = html.escape(_("Z≈0 writes new state")), html.escape(_("Z≈1 keeps old state"))
    legend = (
        '<div style="font-size:0.8em;color:#555;margin-top:0.4em">'
        f"{writes} "
        f'<span style="display:inline-block;width:8em;height:0.8em;background:{gradient};'
        'border:1px solid #ccc;vertical-align:middle"></span>'
        f" {keeps}</div>"
    )
    return (
        '<div style="font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;'
        'font-size:1.05em;line-height:2;word-break:break-all">'
        f"<div>{''.join(spans)}</div>{legend}</div>"
    )
