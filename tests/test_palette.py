"""The palette under colour-vision deficiency: every pair of categories that share a chart
stays apart in colour for a protanope, a deuteranope and a tritanope, and differs in dash or
marker as well (never colour alone).

Simulation: Machado, Oliveira & Fernandes (2009), "A physiologically-based model for
simulation of color vision deficiency", severity 1.0, applied to linear RGB (sRGB decoded,
the matrix applied, clipped to [0, 1], encoded again). Distance: CIE76 ΔE, the Euclidean
distance in CIELAB (D65). ΔE ≈ 2.3 is a just-noticeable difference; categories here must be
at least ``MIN_DELTA_E`` apart, what a reader tells apart at a glance.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dashboard.charts import palette
from dashboard.charts.palette import CHART_GROUPS, Style, hex_rgb

MIN_DELTA_E = 10.0

# Machado et al. 2009, severity 1.0 (rows: output R, G, B; linear RGB).
MACHADO = {
    "protanopia": np.array(
        [
            [0.152286, 1.052583, -0.204868],
            [0.114503, 0.786281, 0.099216],
            [-0.003882, -0.048116, 1.051998],
        ]
    ),
    "deuteranopia": np.array(
        [
            [0.367322, 0.860646, -0.227968],
            [0.280085, 0.672501, 0.047413],
            [-0.011820, 0.042940, 0.968881],
        ]
    ),
    "tritanopia": np.array(
        [
            [1.255528, -0.076749, -0.178779],
            [-0.078411, 0.930809, 0.147602],
            [0.004733, 0.691367, 0.303900],
        ]
    ),
}
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
D65 = np.array([0.95047, 1.0, 1.08883])


def to_linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def simulate(colour: str, deficiency: str | None) -> np.ndarray:
    """sRGB in [0, 1] as a reader with ``deficiency`` (None: normal vision) sees ``colour``."""
    srgb = np.array(hex_rgb(colour), dtype=np.float64) / 255.0
    if deficiency is None:
        return srgb
    return to_srgb(MACHADO[deficiency] @ to_linear(srgb))


def lab(srgb: np.ndarray) -> np.ndarray:
    xyz = SRGB_TO_XYZ @ to_linear(srgb) / D65
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(a: str, b: str, deficiency: str | None) -> float:
    return float(np.linalg.norm(lab(simulate(a, deficiency)) - lab(simulate(b, deficiency))))


# -- the references the helpers are checked against --------------------------------------------
def test_lab_of_known_colours() -> None:
    # CIELAB of sRGB white, black and pure red (D65), as published (e.g. Bruce Lindbloom's).
    assert lab(np.ones(3)) == pytest.approx([100.0, 0.0, 0.0], abs=0.01)
    assert lab(np.zeros(3)) == pytest.approx([0.0, 0.0, 0.0], abs=0.01)
    assert lab(np.array([1.0, 0.0, 0.0])) == pytest.approx([53.24, 80.09, 67.20], abs=0.05)


def test_simulation_confuses_what_each_deficiency_confuses() -> None:
    # A classic red/green pair collapses for the red-green deficiencies and not for a
    # tritanope; blue vs green-ish pairs collapse for a tritanope. Grey stays grey.
    red, green = "#CC0000", "#6B7A00"
    assert delta_e(red, green, None) > 40
    assert delta_e(red, green, "deuteranopia") < 15
    assert delta_e(red, green, "protanopia") < 25
    assert delta_e(red, green, "tritanopia") > 30
    grey = simulate("#808080", "tritanopia")
    assert grey == pytest.approx(np.full(3, 128 / 255), abs=0.01)


# -- the palette ----------------------------------------------------------------------------------
PAIRS = [
    (chart, a, b)
    for chart, styles in CHART_GROUPS.items()
    for a, b in itertools.combinations(styles, 2)
]


@pytest.mark.parametrize("deficiency", [None, "protanopia", "deuteranopia", "tritanopia"])
@pytest.mark.parametrize(("chart", "a", "b"), PAIRS, ids=lambda p: getattr(p, "colour", p))
def test_categories_on_one_chart_stay_apart_in_colour(
    chart: str, a: Style, b: Style, deficiency: str | None
) -> None:
    d = delta_e(a.colour, b.colour, deficiency)
    assert d > MIN_DELTA_E, f"{chart}: {a.colour} vs {b.colour} under {deficiency}: ΔE {d:.1f}"


@pytest.mark.parametrize(("chart", "a", "b"), PAIRS, ids=lambda p: getattr(p, "colour", p))
def test_categories_on_one_chart_differ_in_dash_or_marker(chart: str, a: Style, b: Style) -> None:
    assert (a.dash, a.symbol) != (b.dash, b.symbol), f"{chart}: {a} and {b} differ in colour only"


def test_every_series_style_is_unique_in_shape() -> None:
    shapes = [(s.dash, s.symbol) for s in palette.SERIES]
    assert len(set(shapes)) == len(shapes)
    assert palette.series(len(palette.SERIES)) == palette.SERIES[0]
