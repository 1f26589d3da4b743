"""Every colour a chart draws, chosen for colour-vision deficiency, and never colour alone.

The hues are Okabe & Ito's eight (2008, "Color Universal Design"), the set made to stay apart
under protanopia, deuteranopia and tritanopia. Each category a chart tells apart is a
:class:`Style`: a colour *and* a line dash and/or marker symbol, so two categories that one
reader sees as the same colour still differ in shape, and the legend names them.
Sequential scales (maps, heatmaps) are viridis: perceptually uniform and readable under every
common deficiency (its lightness alone orders it); what lies outside the scale (a diverged
run, a run that blew up, a value below the floor) carries its word in the cell or the hover
and its own marker in the legend.

``CHART_GROUPS`` lists the categories that share a chart; ``tests/test_palette.py`` simulates
each deficiency on them (Machado, Oliveira & Fernandes 2009, severity 1) and checks that every
pair stays apart in colour (CIE76 ΔE) and differs in dash or marker. Pure constants.
"""

from __future__ import annotations

from typing import NamedTuple

# Okabe-Ito.
BLACK = "#000000"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
BLUISH_GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
REDDISH_PURPLE = "#CC79A7"
GREY = "#767676"  # the lightest grey with 4.5:1 contrast on white (text and marks alike)
LIGHT_GREY = "#E6E6E6"  # backgrounds only (a bar behind a bar, a cell not finished)
MID_GREY = "#BDBDBD"

SEQUENTIAL = "Viridis"  # maps and heatmaps: dark = low, bright = high
DIVERGING = "RdBu"  # signed values (-1 blue .. +1 red): blue/red stay apart under all three


class Style(NamedTuple):
    """How one category is drawn: its colour, its line dash and its marker symbol."""

    colour: str
    dash: str = "solid"
    symbol: str = "circle"

    def line(self, **extra: object) -> dict:
        """Plotly ``line=`` of this style."""
        return dict(color=self.colour, dash=self.dash, **extra)

    def marker(self, **extra: object) -> dict:
        """Plotly ``marker=`` of this style."""
        return dict(color=self.colour, symbol=self.symbol, **extra)


# Training curves: the batch's noisy line, the epoch's train and validation.
BATCH = Style(SKY_BLUE, "solid", "circle-open")
TRAIN = Style(BLUE, "solid", "circle")
VALIDATION = Style(VERMILLION, "dash", "diamond")
# The gradient norm: before clipping, after, and the threshold θ.
BEFORE_CLIP = Style(BLUE, "solid", "circle")
AFTER_CLIP = Style(BLUISH_GREEN, "dot", "square")
THRESHOLD = Style(BLACK, "dash", "line-ew")
# A gate's distribution per step: bands (SKY_BLUE fills), median, mean, saturated share.
MEDIAN = Style(BLUE, "solid", "circle")
MEAN = Style(ORANGE, "dash", "diamond")
SATURATED = Style(VERMILLION, "dot", "x")
# Several runs or models on one chart (saved runs, GRU vs RNN): colour, dash and marker all
# cycle, each with its own period, so two lines never share all three.
SERIES = (
    Style(BLUE, "solid", "circle"),
    Style(VERMILLION, "dash", "diamond"),
    Style(BLUISH_GREEN, "dot", "square"),
    Style(ORANGE, "dashdot", "triangle-up"),
    Style(REDDISH_PURPLE, "longdash", "x"),
    Style(BLACK, "longdashdot", "star"),
    Style(SKY_BLUE, "solid", "cross"),
    Style(GREY, "dash", "triangle-down"),
)
# Bars with a sign (a unit's correlation) and a highlighted bar among plain ones.
POSITIVE, NEGATIVE = VERMILLION, BLUE
HIGHLIGHT, PLAIN = ORANGE, BLUE
# The floor (a value below 1e-30 drawn at it): grey, a down triangle, labelled.
FLOOR = Style(GREY, "dot", "triangle-down")
EVENT = Style(GREY, "dot", "line-ns")  # a knob change: a dotted vertical line with its words


def series(i: int) -> Style:
    """The style of the ``i``-th line of several (saved runs, models)."""
    return SERIES[i % len(SERIES)]


# The map's categories outside the colour scale: code -> style (the cell also says its word).
MAP_CATEGORIES: dict[str, Style] = {
    "diverged": Style(BLACK, "solid", "x"),
    "blew up": Style(VERMILLION, "solid", "star"),
    "memorised": Style(REDDISH_PURPLE, "solid", "diamond"),
    "pending": Style(LIGHT_GREY, "solid", "circle-open"),
    "other": Style(MID_GREY, "solid", "square-open"),
}
SPARE_CATEGORIES = (  # verdicts the map has no style for yet
    Style(ORANGE, "solid", "triangle-up"),
    Style(SKY_BLUE, "solid", "triangle-down"),
    Style(YELLOW, "solid", "hexagon"),
    Style(BLUISH_GREEN, "solid", "pentagon"),
)

# The categories that share one chart (what the colour-vision test checks, pair by pair).
CHART_GROUPS: dict[str, tuple[Style, ...]] = {
    "perplexity": (BATCH, TRAIN, VALIDATION, EVENT),
    "grad_norm": (BEFORE_CLIP, AFTER_CLIP, THRESHOLD, EVENT),
    "gate_bands": (MEDIAN, MEAN, SATURATED),
    "series": SERIES[:6],
    "flow": (SERIES[0], SERIES[1], FLOOR),
    "map": (*MAP_CATEGORIES.values(),),
}


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """'#D55E00' -> (213, 94, 0)."""
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def rgba(colour: str, alpha: float) -> str:
    """'#56B4E9', 0.2 -> 'rgba(86,180,233,0.2)'."""
    r, g, b = hex_rgb(colour)
    return f"rgba({r},{g},{b},{alpha:g})"
