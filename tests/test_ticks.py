"""Log-axis ticks: full numbers on a 1-2-5 ladder inside the shown range, never bare digits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dashboard.charts.ticks import MOST, finite_positive_range, log_ticks
from dashboard.charts.training import grad_norm_figure


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0.04, 1.2, ["0.05", "0.1", "0.2", "0.5", "1"]),  # a healthy run's gradient norms
        (1.05, 28.0, ["2", "5", "10", "20"]),  # d2l's perplexity over 500 epochs
        (7.9, 25.0, ["10", "15", "20"]),  # a denser ladder when 1-2-5 gives too few
        (17.0, 28.0, ["20", "25"]),  # and denser still
        (3e-7, 2e-6, ["5e-07", "1e-06", "2e-06"]),
        # many decades: every k-th power of ten with k on a 1-2-5 ladder (never 1e+13, 1e+26)
        (2.9, 7.5e27, ["100000", "1e+10", "1e+15", "1e+20", "1e+25"]),
        (
            1.0,
            1e45,
            ["1", "100000", "1e+10", "1e+15", "1e+20", "1e+25", "1e+30", "1e+35", "1e+40", "1e+45"],
        ),
        (0.01, 1e15, ["0.01", "1", "100", "10000", "1e+06", "1e+08", "1e+10", "1e+12", "1e+14"]),
    ],
)
def test_log_ticks_examples(lo: float, hi: float, expected: list[str]) -> None:
    ticks = log_ticks(lo, hi)
    assert ticks is not None
    assert ticks[1] == expected


@pytest.mark.parametrize("seed", range(20))
def test_log_ticks_lie_in_range_and_read_as_their_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lo = 10 ** rng.uniform(-8, 8)
    hi = lo * 10 ** rng.uniform(0.3, 40)
    ticks = log_ticks(lo, hi)
    assert ticks is not None
    values, labels = ticks
    assert 2 <= len(values) <= MOST
    assert values == sorted(values) and all(lo <= v <= hi for v in values)
    for value, label in zip(values, labels, strict=True):
        assert float(label) == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize(
    ("lo", "hi"), [(1.0, 1.0), (0.5, 0.52), (0.0, 1.0), (-1.0, 2.0), (1.0, math.inf)]
)
def test_log_ticks_leave_narrow_or_invalid_ranges_to_plotly(lo: float, hi: float) -> None:
    assert log_ticks(lo, hi) is None


def test_finite_positive_range_ignores_nan_inf_and_non_positive() -> None:
    arrays = [np.array([np.nan, 0.0, -3.0, 0.2]), None, (5.0, math.inf), np.array([])]
    assert finite_positive_range(arrays) == (0.2, 5.0)
    assert finite_positive_range([np.array([np.nan, -1.0])]) is None


def test_gradient_norm_chart_labels_small_norms_in_full() -> None:
    steps = pd.DataFrame(
        dict(
            step=np.arange(1, 101),
            grad_norm=np.geomspace(1.2, 0.04, 100),
            grad_norm_clipped=np.geomspace(1.0, 0.04, 100),
            clip_threshold=np.ones(100),
        )
    )
    axis = grad_norm_figure(steps).layout.yaxis
    assert axis.type == "log"
    assert list(axis.ticktext) == ["0.05", "0.1", "0.2", "0.5", "1"]
    assert list(axis.tickvals) == pytest.approx([0.05, 0.1, 0.2, 0.5, 1.0])
