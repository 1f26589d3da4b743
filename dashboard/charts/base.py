"""What every figure shares: the common look, line traces, placeholders, projector mode.

Every figure has a title, axis titles, the ``plotly_white`` template, a horizontal legend on top
and a fixed ``uirevision`` (zoom and legend toggles survive the live refresh); the width follows
the container; a log y axis gets full-number ticks (``ticks.py``). Line traces carry numpy
arrays thinned to at most ``thinning.MAX_POINTS`` points; knob-change marks are ``events.py``.
Pure functions; nothing here calls Streamlit.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from dashboard.charts.palette import GREY
from dashboard.charts.thinning import downsample
from dashboard.charts.ticks import finite_positive_range, log_ticks
from gru_core.step.stats import STEP

HEIGHT = 380  # px; the width is left to the container
# The default look: tick labels of 13 px in a dark grey, titles of 17 px.
INK, TICK_INK = "#222222", "#3d3d3d"
TICK_PX, AXIS_TITLE_PX, TITLE_PX, LEGEND_PX = 13, 14, 17, 13
# Every text of the page and its figures: Streamlit's own font, then fonts that cover Chinese
# (Debian's fonts-noto-cjk, Adobe's name for the same, macOS, Windows), so 简体中文 never shows
# as boxes. views/display.py's stylesheet names the same stack.
FONT_FAMILY = (
    '"Source Sans", "Source Sans Pro", "Noto Sans CJK SC", "Source Han Sans SC", '
    '"PingFang SC", "Microsoft YaHei", sans-serif'
)
# The look's base template, as plotly's process-wide default, which a figure takes when it is
# built (cheap), rather than update_layout(template=...) on every figure (most of a
# watcher's refresh in the classroom load test). Importing streamlit sets the default to its
# own theme; ``_base_template`` puts ours back (and fixes, once, a figure built meanwhile).
TEMPLATE = "plotly_white"
pio.templates.default = TEMPLATE


def _base_template(fig: go.Figure) -> None:
    if pio.templates.default != TEMPLATE:
        pio.templates.default = TEMPLATE
        fig.update_layout(template=TEMPLATE)


def numeric_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as float64 numpy (None -> NaN); all NaN if the column is missing."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def valid_points(x: np.ndarray, y: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """Drop points that are not finite (and not positive, for a log axis)."""
    keep = np.isfinite(x) & np.isfinite(y)
    if log:
        keep &= y > 0
    return x[keep], y[keep]


def line_trace(x: np.ndarray, y: np.ndarray, name: str, log: bool, **style: object) -> go.Scatter:
    """A line trace of the valid points of (x, y), thinned to MAX_POINTS."""
    x, y = valid_points(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), log)
    x, ys = downsample(x, dict(y=y))
    return go.Scatter(x=x, y=ys["y"], name=name, mode="lines", **style)


def steps_x(steps: pd.DataFrame) -> np.ndarray:
    return numeric_column(steps, STEP)


def apply_layout(
    fig: go.Figure,
    title: str,
    x_title: str,
    y_title: str,
    uirevision: str,
    log_y: bool = False,
    hovermode: str | bool = "x unified",
    extra: dict | None = None,
) -> go.Figure:
    """The look every figure shares (template, legend on top, responsive, uirevision,
    readable fonts); integer axes (steps, epochs, t) get whole-number ticks. ``extra``: the
    figure's own layout on top of it (nested dicts merged), set in the same ``relayout``."""
    _base_template(fig)
    look = dict(
        # the title at the very top, so a legend that wraps to two rows stays clear of it
        title=dict(
            text=title,
            x=0.0,
            xanchor="left",
            y=0.98,
            yref="container",
            yanchor="top",
            font=dict(size=TITLE_PX, color=INK),
        ),
        font=dict(family=FONT_FAMILY, size=TICK_PX, color=TICK_INK),
        legend=dict(
            orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0.0,
            font=dict(size=LEGEND_PX, color=INK),
        ),
        uirevision=uirevision,
        autosize=True,
        height=HEIGHT,
        margin=dict(l=60, r=30, t=90, b=50),
        hovermode=hovermode,
        xaxis=dict(
            title=dict(text=x_title, font=dict(size=AXIS_TITLE_PX, color=INK)),
            tickfont=dict(size=TICK_PX, color=TICK_INK),
        ),
        yaxis=dict(
            title=dict(text=y_title, font=dict(size=AXIS_TITLE_PX, color=INK)),
            type="log" if log_y else "linear",
            tickfont=dict(size=TICK_PX, color=TICK_INK),
        ),
    )  # fmt: skip
    if log_y:  # full-number ticks ('0.05', not plotly's bare minor digit '5')
        shown = finite_positive_range(trace.y for trace in fig.data)
        ticks = log_ticks(*shown) if shown else None
        if ticks:
            look["yaxis"].update(tickmode="array", tickvals=ticks[0], ticktext=ticks[1])
    span = integer_span(trace.x for trace in fig.data)
    if span is not None:  # steps, epochs, time steps: never a tick at 1.5
        look["xaxis"].update(tickformat=",d", **({"dtick": 1} if span <= 12 else {}))
    return relayout(fig, _merged(look, extra) if extra else look)


def relayout(fig: go.Figure, updates: dict) -> go.Figure:
    """``fig.update_layout(updates)``: nested dicts merged key by key into the layout, any
    other value replacing it; made as one new validated Layout. plotly's update_layout walks
    every path of a built figure through its change machinery (most of a chart's build, paid
    by the owner's page at every redraw of a live run); one new Layout costs a fraction of
    that (benchmarks/README.md), most of it plotly re-applying the default template, which
    the figure keeps (every figure here is built with it: ``_base_template``)."""
    current = fig.layout.to_plotly_json()
    current.pop("template", None)
    fig.layout = go.Layout(_merged(current, updates))
    return fig


def _merged(base: dict, updates: dict) -> dict:
    out = dict(base)
    for key, value in updates.items():
        old = out.get(key)
        out[key] = (
            _merged(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
        )
    return out


def with_subtitle(fig: go.Figure, text: str) -> go.Figure:
    """A second, smaller title line: a title stays short enough for a narrow column."""
    fig.update_layout(
        title_subtitle=dict(text=text, font=dict(size=TICK_PX, color=TICK_INK)),
        margin_t=(fig.layout.margin.t or 90) + 24,  # room for it above a two-row legend
    )
    return fig


def integer_span(arrays: object) -> float | None:
    """max - min over ``arrays`` when every finite value is a whole number, else None."""
    lo, hi = math.inf, -math.inf
    for values in arrays:  # type: ignore[attr-defined]
        if values is None:
            continue
        a = np.asarray(values, dtype=np.float64).ravel() if len(values) else np.zeros(0)
        a = a[np.isfinite(a)]
        if a.size == 0:
            continue
        if not np.all(a == np.round(a)):
            return None
        lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    return hi - lo if lo <= hi else None


def empty_figure(title: str, message: str) -> go.Figure:
    """A placeholder with a centred message (before a run starts, or when data is missing)."""
    fig = apply_layout(go.Figure(), title, "", "", uirevision="empty", hovermode=False)
    fig.update_layout(
        annotations=[
            dict(
                text=html.escape(message),
                x=0.5,
                y=0.5,
                xref="paper",
                yref="paper",
                showarrow=False,
                font=dict(size=15, color=GREY),
            )
        ],
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
    )
    return fig


# Projector mode: what the back row of a classroom can read.
PROJECTOR = dict(tick=18, axis_title=19, title=22, legend=18, line_scale=1.8, nticks=5)


def for_projector(fig: go.Figure) -> go.Figure:
    """The same figure for a projector: tick labels 18 px, titles 22 px, black ink, thicker
    lines, fewer ticks and a taller plot. Applied to a finished figure (pure; returns it)."""
    p = PROJECTOR
    fig.update_layout(
        font=dict(size=p["tick"], color="#000000"),
        title_font=dict(size=p["title"], color="#000000"),
        legend_font=dict(size=p["legend"], color="#000000"),
        height=int(HEIGHT * 1.25),
        margin=dict(l=80, r=30, t=110, b=70),
    )
    for axis in ("xaxis", "yaxis"):
        fig.update_layout(
            {
                axis: dict(
                    tickfont=dict(size=p["tick"], color="#000000"),
                    title_font=dict(size=p["axis_title"], color="#000000"),
                    gridcolor="#bdbdbd",
                    linecolor="#000000",
                )
            }
        )
    if fig.layout.yaxis.tickmode != "array":
        fig.update_yaxes(nticks=p["nticks"])
    if fig.layout.xaxis.tickmode != "array" and fig.layout.xaxis.dtick is None:
        fig.update_xaxes(nticks=p["nticks"] + 1)
    for trace in fig.data:
        line = getattr(trace, "line", None)
        if line is not None and trace.type == "scatter":
            trace.line.width = (line.width or 2) * p["line_scale"]
    for note in fig.layout.annotations or ():
        note.font.size = p["legend"]
    return fig
