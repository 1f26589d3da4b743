"""Figures of what the model remembers (``gru_core.memory``): a passage coloured by one hidden
unit (Karpathy's char-rnn cells), the unit finder's best matches (LSTMVis), and connectivity,
how strongly one prediction depends on each earlier character (Distill's "Visualizing
memorization in RNNs"). Pure: arrays in, escaped HTML strings or plotly figures out.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.charts import palette
from dashboard.charts.base import apply_layout, empty_figure
from dashboard.charts.cells import _char_label
from dashboard.charts.flow import FLOOR_LABEL, at_floor, floor_line, mark_floor
from dashboard.charts.palette import GREY
from gru_core.i18n import _, ngettext

NEGATIVE, POSITIVE = (33, 102, 172), (178, 24, 43)  # the ends of plotly's 'RdBu'
MAX_TICKS = 80  # character labels on a connectivity axis
FONT = "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace"


def diverging_colour(value: float) -> tuple[str, str]:
    """Background for a tanh-bounded value (clipped to [-1, 1]: -1 blue, 0 white, +1 red) and
    a readable text colour (white on the dark half); grey for NaN."""
    if not math.isfinite(value):
        return "#dddddd", "#111111"
    v = min(max(value, -1.0), 1.0)
    end = POSITIVE if v > 0 else NEGATIVE
    r, g, b = (round(255 + (c - 255) * abs(v)) for c in end)
    return f"rgb({r},{g},{b})", "#ffffff" if abs(v) > 0.5 else "#111111"


def _tip(ch: str, value: float, chars: Sequence[str] | None, probs: Sequence[float] | None) -> str:
    """Hover text of one character: its value and the model's top guesses for the next one."""
    shown = f"h = {value:+.3f}" if math.isfinite(value) else "h = " + _("n/a")
    lines = [f"{_char_label(ch)}  {shown}"]
    if chars is not None and probs is not None:
        guesses = ", ".join(
            f"{_char_label(str(c))} {float(p):.2f}" for c, p in zip(chars, probs, strict=True)
        )
        lines.append(_("next: {guesses}").format(guesses=guesses))
    return html.escape("\n".join(lines), quote=True)


def legend_html(label: str | None = None) -> str:
    """The colour key: -1 blue, 0 white, +1 red (``label`` None: 'hidden unit h')."""
    label = _("hidden unit h") if label is None else label
    hint = _("(hover a character for its value and the model's next-character guesses)")
    gradient = "linear-gradient(to right, rgb({},{},{}), #ffffff, rgb({},{},{}))".format(
        *NEGATIVE, *POSITIVE
    )
    return (
        '<div style="font-size:0.85em;color:#555;margin-top:0.3em">'
        f"{html.escape(label)}: −1 "
        f'<span style="display:inline-block;width:10em;height:0.8em;background:{gradient};'
        'border:1px solid #ccc;vertical-align:middle"></span> +1 '
        f"{html.escape(hint)}</div>"
    )


def unit_text_html(
    text: str,
    values: np.ndarray,
    top_chars: np.ndarray | None = None,
    top_probs: np.ndarray | None = None,
    header: str = "",
    legend: bool = True,
) -> str:
    """``text`` with each character shaded by one unit's activation ``values`` (T,).

    ``top_chars``/``top_probs`` (T, k), when given, go into each character's hover (the
    ``title`` attribute) with the value. Spaces show as '␣'; long passages wrap. Escaped HTML
    for ``st.html`` / ``st.markdown(..., unsafe_allow_html=True)``.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) != len(text):
        raise ValueError(f"unit_text_html: {len(text)} characters but {len(values)} values")
    if top_chars is not None and top_probs is not None:
        top_chars, top_probs = np.asarray(top_chars, dtype=object), np.asarray(top_probs)
        if top_chars.shape[:1] != (len(text),) or top_probs.shape != top_chars.shape:
            raise ValueError(
                f"unit_text_html: top-k {top_chars.shape} / {top_probs.shape} do not match "
                f"{len(text)} characters"
            )
    head = f'<div style="font-weight:600;margin-bottom:0.2em">{html.escape(header)}</div>'
    if not text:
        empty = html.escape(_("No text to show."))
        body = f'<div style="color:#7f7f7f">{empty}</div>'
        return f'<div style="{FONT}">{head if header else ""}{body}</div>'
    spans = []
    for t, (ch, v) in enumerate(zip(text, values, strict=True)):
        background, colour = diverging_colour(float(v))
        guesses = None if top_chars is None or top_probs is None else top_chars[t]
        probs = None if guesses is None else top_probs[t]
        spans.append(
            f'<span style="background:{background};color:{colour};padding:0.1em 0.06em;'
            f'border-radius:2px" title="{_tip(ch, float(v), guesses, probs)}">'
            f"{html.escape(_char_label(ch))}</span>"
        )
    return (
        f'<div style="{FONT};font-size:1.25em;line-height:2;word-break:break-all">'
        f"{head if header else ''}<div>{''.join(spans)}</div>"
        f"{legend_html() if legend else ''}</div>"
    )


def unit_blocks_html(
    text: str,
    activations: np.ndarray,
    ranked: Sequence[tuple[int, float]],
    top_chars: np.ndarray | None = None,
    top_probs: np.ndarray | None = None,
    n: int = 8,
) -> list[str]:
    """One block per unit of the unit finder's result (at most ``n``), best first: a header
    'unit 17 · r = +0.62' over the passage coloured by that unit. Only the last has a legend."""
    activations = np.asarray(activations, dtype=np.float64)
    if activations.ndim != 2 or activations.shape[0] != len(text):
        raise ValueError(
            f"unit_blocks_html: activations {activations.shape} do not match {len(text)} chars"
        )
    shown = list(ranked)[:n]
    blocks = []
    for i, (unit, r) in enumerate(shown):
        if not 0 <= unit < activations.shape[1]:
            raise ValueError(f"unit {unit} is outside the {activations.shape[1]} hidden units")
        value = f"{r:+.2f}" if math.isfinite(r) else _("n/a")
        header = _("unit {unit} · r = {r}").format(unit=unit, r=value)
        last = i == len(shown) - 1
        blocks.append(
            unit_text_html(text, activations[:, unit], top_chars, top_probs, header, legend=last)
        )
    return blocks


def unit_ranking_figure(ranked: Sequence[tuple[int, float]], pattern: str) -> go.Figure:
    """The unit finder's result as bars: signed Pearson r of each unit with the pattern."""
    title = _("Units that follow “{pattern}”").format(pattern=pattern)
    if not ranked:
        return empty_figure(title, _("No units to rank."))
    units = np.array([u for u, _r in ranked], dtype=np.int64)
    r = np.nan_to_num(np.array([v for _u, v in ranked], dtype=np.float64), nan=0.0)
    fig = go.Figure(
        go.Bar(
            x=r,
            y=np.arange(len(units)),
            orientation="h",
            marker_color=[palette.POSITIVE if v > 0 else palette.NEGATIVE for v in r],
            customdata=units,
            hovertemplate=_("unit {unit}").format(unit="%{customdata}")
            + "<br>r = %{x:+.3f}<extra></extra>",
            name=_("Pearson r"),
        )
    )
    apply_layout(
        fig, title, _("Pearson r with the pattern"), _("unit"), "unit_ranking", hovermode=False
    )
    fig.update_layout(
        xaxis_range=[-1, 1],
        yaxis=dict(
            tickmode="array",
            tickvals=np.arange(len(units)),
            ticktext=[_("unit {unit}").format(unit=u) for u in units],
            autorange="reversed",
        ),
        showlegend=False,
    )
    return fig


def _axis_labels(text: str, n: int) -> tuple[np.ndarray, list[str]]:
    """At most MAX_TICKS evenly spaced character labels for positions 0..n-1."""
    shown = np.arange(0, n, max(1, -(-n // MAX_TICKS)))
    return shown, [_char_label(text[i]) if i < len(text) else "" for i in shown]


def connectivity_figure(
    text: str,
    conn: np.ndarray,
    target_next: str = "",
    reach: int | None = None,
    share: float = 0.9,
) -> go.Figure:
    """Connectivity bars c_s over the characters s = 0..t of ``text`` (t = len(conn) - 1): log
    y, the target character in orange, and the ``reach`` (characters back from t holding
    ``share`` of the total) shaded. Values below the floor (1e-30, 0 included) are drawn at it,
    grey and labelled; NaN is left out."""
    conn = np.asarray(conn, dtype=np.float64).reshape(-1)
    title = _("How far back the prediction looks")
    if conn.size == 0:
        return empty_figure(title, _("No position chosen."))
    if len(text) < len(conn):
        raise ValueError(f"connectivity_figure: {len(conn)} values but {len(text)} characters")
    t = len(conn) - 1
    if target_next:
        title = _("{title}: p(next = “{next}” | text up to “{last}”)").format(
            title=title, next=_char_label(target_next), last=_char_label(text[t])
        )
    if not (np.isfinite(conn) & (conn > 0)).any():
        return empty_figure(title, _("The prediction does not depend on any earlier character."))
    # What underflows is drawn at the floor, grey and labelled (never left out of the log axis).
    shown, below = at_floor(np.where(np.isfinite(conn), conn, np.nan))
    s = np.arange(t + 1)
    labels = np.array([_char_label(ch) for ch in text[: t + 1]], dtype=object)
    colours = [GREY if below[i] else palette.HIGHLIGHT if i == t else palette.PLAIN for i in s]
    floor = _(FLOOR_LABEL)
    values = np.array([floor if below[i] else f"{shown[i]:.3g}" for i in s], dtype=object)
    fig = go.Figure(
        go.Bar(
            x=s,
            y=shown,
            marker_color=colours,
            customdata=np.stack([labels, (t - s).astype(str), values], axis=1),
            hovertemplate=_("“{char}”, {back} back").format(
                char="%{customdata[0]}", back="%{customdata[1]}"
            )
            + "<br>||∂ log p / ∂e_s|| = %{customdata[2]}<extra></extra>",
            name=_("connectivity"),
        )
    )
    x_title, y_title = _("earlier character s"), _("||∂ log p / ∂e_s|| (log)")
    apply_layout(fig, title, x_title, y_title, "connectivity", log_y=True)
    tickvals, ticktext = _axis_labels(text, t + 1)
    fig.update_layout(
        xaxis=dict(tickmode="array", tickvals=tickvals, ticktext=ticktext, tickangle=0),
        showlegend=False,
        bargap=0.1,
    )
    mark_floor(fig, reached=bool(below.any()))
    if reach:
        fig.add_vrect(
            x0=t - reach + 0.5,
            x1=t + 0.5,
            fillcolor=GREY,
            opacity=0.15,
            line_width=0,
            annotation_text=ngettext(
                "{share} within {n} character", "{share} within {n} characters", reach
            ).format(share=f"{share:.0%}", n=reach),
            annotation_position="top left",
        )
    return fig


def connectivity_compare_figure(
    curves: dict[str, np.ndarray], title: str | None = None
) -> go.Figure:
    """Several models' connectivity for the same position (e.g. GRU vs RNN saved runs), each
    normalised to sum to 1 so their shapes compare; log y, x = characters back from t, one axis
    for all (0 to the longest); shares below the floor drawn at it and labelled."""
    title = _("Connectivity by model") if title is None else title
    traces: list[go.Scatter] = []
    longest = 0
    for i, (name, conn) in enumerate(curves.items()):
        c = np.nan_to_num(np.asarray(conn, dtype=np.float64).reshape(-1), nan=0.0, posinf=0.0)
        total = c.sum()
        if c.size == 0 or total <= 0:
            continue
        back = np.arange(c.size)
        share = c[::-1] / total  # share[d]: d characters back from t
        traces += floor_line(back, share, name, palette.series(i), x_name=_("back"))
        longest = max(longest, c.size)
    if not traces:
        return empty_figure(title, _("No connectivity to compare."))
    y_title = _("share of connectivity (log)")
    fig = apply_layout(
        go.Figure(traces),
        title,
        _("characters back from t"),
        y_title,
        "connectivity_compare",
        log_y=True,
    )
    fig.update_xaxes(range=[-0.5, longest - 0.5], autorange=False)
    return mark_floor(fig)
