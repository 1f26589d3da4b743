"""Several figures as the panels of one: one chart for the browser to mount instead of several.

A view that shows several figures (the Gates view's band charts of Z and R, its two probe
heatmaps) pays the browser for every chart it mounts: Streamlit's plotly element, plotly's
axes, modebar and legend, and a second draw on a mount. Mounted as the panels of one figure,
two charts cost about half of what they cost apart (``benchmarks/chart_mount.py``).

``stacked(parts, title, labels)`` keeps each part as it was built (its traces, axes, second
y axis, colour bar, shapes) and stacks them top to bottom, each ``panel_px`` high under its
label: part i's y axes span the i-th band of the plot area and anchor to its own x axis.
Stacked, not side by side: the panels keep the page's full width on a narrow screen, and
panels over the same x (training steps, the probe's characters) line up column by column.
What the panels share is read once:
- x axes with the same title zoom together (``matches``) and only the bottom one carries
  tick labels and a title;
- heatmaps with the same colour scale and range share one colour bar beside them all;
- one legend (the first panel's entries, on top); a click on an entry toggles that line in
  every panel (``legendgroup``: the trace's name).
Each panel keeps its own y axes (and their titles). Pure: figures in, a figure out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from dashboard.charts.base import AXIS_TITLE_PX, HEIGHT, INK

LABEL_PX = 26  # the row above each panel that holds its label
GAP_PX = 14  # between a panel's plot and the next panel's label
TITLE_AND_LEGEND_PX = 90  # above the first label: the title and up to two rows of legend


def _ref(letter: str, k: int) -> str:
    """A trace's axis reference: 'x', 'x2', ... ('y', 'y3', ...)."""
    return letter if k == 1 else f"{letter}{k}"


def _key(letter: str, k: int) -> str:
    """The layout's key for axis k: 'xaxis', 'xaxis2', ..."""
    return f"{letter}axis" if k == 1 else f"{letter}axis{k}"


def _axis(layout: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(layout.get(name) or {})


def _text(item: dict[str, Any] | None) -> str:
    return str(((item or {}).get("title") or {}).get("text") or "")


def _color(trace: dict[str, Any]) -> tuple | None:
    """A heatmap's colour scale and range (None for other traces)."""
    if trace.get("type") != "heatmap":
        return None
    return (trace.get("zmin"), trace.get("zmax"), repr(trace.get("colorscale")))


def stacked(
    parts: Sequence[go.Figure], title: str, labels: Sequence[str], panel_px: int | None = None
) -> go.Figure:
    """``parts`` as the panels of one figure, top to bottom, each under its label (see the
    module's docstring); ``title``: the figure's own; ``panel_px``: each panel's plot height
    (default: the first part's). One part comes back as it is."""
    if len(parts) != len(labels):
        raise ValueError(f"stacked: {len(parts)} parts but {len(labels)} labels")
    if len(parts) == 1:
        return parts[0]
    layouts = [p.layout.to_plotly_json() for p in parts]
    traces = [[t.to_plotly_json() for t in p.data] for p in parts]
    base = layouts[0]
    margin = dict(base.get("margin") or {})
    legend = base.get("showlegend") is not False
    top = min(int(margin.get("t", 90)), TITLE_AND_LEGEND_PX) if legend else int(margin.get("t", 90))
    bottom = int(margin.get("b", 50))
    panel = panel_px or max(int(base.get("height") or HEIGHT) - top - bottom, 100)
    n = len(parts)
    plot_px = n * panel + (n - 1) * (LABEL_PX + GAP_PX)
    layout: dict[str, Any] = {
        k: v
        for k, v in base.items()
        if not k.startswith(("xaxis", "yaxis")) and k not in ("annotations", "shapes")
    }
    top += LABEL_PX if legend else 0  # a title alone leaves room for the first label
    layout.update(
        # the figure's own title; a subtitle was the first part's (a panel's label says it)
        title={k: v for k, v in (base.get("title") or {}).items() if k != "subtitle"}
        | {"text": title},
        uirevision=f"{base.get('uirevision', '')}|panels",
        height=top + plot_px + bottom,
        margin={**margin, "t": top},
        annotations=[],
        shapes=[],
    )
    if legend:  # above the first panel's label; entries at their own width
        entries = {
            k: v
            for k, v in (base.get("legend") or {}).items()
            if k not in ("entrywidth", "entrywidthmode")
        }
        layout["legend"] = {**entries, "y": 1.0 + (LABEL_PX + 4) / plot_px}
    colors = [next((c for c in map(_color, t) if c), None) for t in traces]
    one_bar = colors[0] is not None and all(c == colors[0] for c in colors)
    bar_title = ", ".join(filter(None, (_bar_title(t) for each in traces for t in each)))
    first_x = _text(_axis(base, "xaxis"))
    data: list[dict[str, Any]] = []
    for i, (part, own) in enumerate(zip(layouts, traces, strict=True)):
        high = 1.0 - i * (panel + LABEL_PX + GAP_PX) / plot_px
        spot = _Panel(i, n, [max(high - panel / plot_px, 0.0), high], one_bar, bar_title)
        layout.update(spot.axes(part, first_x))
        data += [spot.trace(t) for t in own]
        layout["shapes"] += [spot.moved(s) for s in part.get("shapes") or ()]
        notes = [spot.moved(a) for a in part.get("annotations") or ()]
        layout["annotations"] += [*notes, spot.label(labels[i])]
    return go.Figure(data=data, layout=layout)


@dataclass(frozen=True)
class _Panel:
    """Panel ``i`` of ``n`` (0 on top): x axis ``x{i+1}``, y axes ``y{2i+1}`` and
    ``y{2i+2}`` (the second) over ``domain`` of the plot area's height."""

    i: int
    n: int
    domain: list[float]
    one_bar: bool  # the panels' heatmaps share one colour bar
    bar_title: str  # its title: each part's, joined

    @property
    def xi(self) -> int:
        return self.i + 1

    @property
    def yi(self) -> int:
        return 2 * self.i + 1

    @property
    def bottom(self) -> bool:
        return self.i == self.n - 1

    def axes(self, part: dict[str, Any], first_x_title: str) -> dict[str, Any]:
        """The part's axes, moved to this panel. An x axis that measures what the first
        panel's does zooms with it, its ticks and title read at the bottom panel only."""
        x = {**_axis(part, "xaxis"), "anchor": _ref("y", self.yi)}
        if _text(x) == first_x_title:
            if self.i:
                x["matches"] = "x"
            if not self.bottom:
                x.update(showticklabels=False, title={**(x.get("title") or {}), "text": ""})
        y = {**_axis(part, "yaxis"), "anchor": _ref("x", self.xi), "domain": self.domain}
        out = {_key("x", self.xi): x, _key("y", self.yi): y}
        y2 = _axis(part, "yaxis2")
        if y2:
            y2.update(anchor=_ref("x", self.xi), overlaying=_ref("y", self.yi), domain=self.domain)
            out[_key("y", self.yi + 1)] = y2
        return out

    def trace(self, trace: dict[str, Any]) -> dict[str, Any]:
        """A part's trace on this panel's axes, in the one legend (the first panel's)."""
        trace = dict(trace)
        second = trace.get("yaxis") == "y2"
        trace.update(xaxis=_ref("x", self.xi), yaxis=_ref("y", self.yi + 1 if second else self.yi))
        if trace.get("name"):
            trace.setdefault("legendgroup", trace["name"])  # one click toggles every panel's
        if self.i:
            trace["showlegend"] = False
        if trace.get("type") == "heatmap":
            bar = dict(trace.get("colorbar") or {})
            low, high = self.domain
            if not self.one_bar:  # its own bar, beside its own panel
                trace["colorbar"] = {**bar, "y": (low + high) / 2, "len": high - low}
            elif not self.bottom:
                trace["showscale"] = False
            else:  # the one bar, beside every panel, named after each
                title = {**(bar.get("title") or {}), "text": self.bar_title}
                trace["colorbar"] = {**bar, "title": title, "y": 0.5, "len": 1.0}
        return trace

    def label(self, text: str) -> dict[str, Any]:
        """The panel's label, above its plot at its left edge."""
        return dict(
            text=text, x=0.0, xref="paper", xanchor="left",
            y=self.domain[1], yref="paper", yanchor="bottom", yshift=4, showarrow=False,
            font=dict(size=AXIS_TITLE_PX, color=INK),
        )  # fmt: skip

    def moved(self, item: dict[str, Any]) -> dict[str, Any]:
        """A shape or annotation of the part, referred to this panel's axes (or its share of
        the plot area's height, for one placed on the paper)."""
        item = dict(item)
        xref = item.get("xref", "paper")
        if xref != "paper":
            item["xref"] = xref.replace("x", _ref("x", self.xi), 1)
        yref = item.get("yref", "paper")
        if yref == "paper":
            low, high = self.domain
            for key in ("y", "y0", "y1"):
                if isinstance(item.get(key), (int, float)):
                    item[key] = low + item[key] * (high - low)
        else:
            axis, _sep, rest = yref.partition(" ")
            k = self.yi + 1 if axis == "y2" else self.yi
            item["yref"] = _ref("y", k) + (f" {rest}" if rest else "")
        return item


def _bar_title(trace: dict[str, Any]) -> str:
    return _text(trace.get("colorbar")) if trace.get("type") == "heatmap" else ""
