"""Readable tick labels for log axes.

Over a decade or two, plotly labels a log axis with bare minor digits ("2", "5", "4"), so a
gradient norm of 0.04 reads as "4". These ticks are full numbers on a 1-2-5 ladder
("0.05", "0.1", "0.2"; denser under one decade), and every k-th power of ten ("1e+20") over
a huge range such as a diverged run's, with k on a 1-2-5 ladder (1e+10, 1e+20, ...).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

# Mantissas per decade, from sparse to dense.
LADDERS: tuple[tuple[float, ...], ...] = (
    (1.0,),
    (1.0, 2.0, 5.0),
    (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),  # about evenly spaced on a log axis
    (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0),
)
# Decades between labelled powers of ten over a huge range: 1e0, 1e10, 1e20, never 1e13, 1e26.
DECADE_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
ENOUGH = 3  # the sparsest ladder with at least this many ticks in range wins
MOST = 10  # never more ticks than this


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]] | None:
    """Tick values and labels for a log axis showing [lo, hi] (both > 0), or None when
    fewer than two ladder values fall in the range (plotly's own ticks are better then)."""
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        return None
    first, last = math.floor(math.log10(lo)), math.floor(math.log10(hi))
    if last - first + 1 > MOST:  # many decades: every k-th power of ten, k on a 1-2-5 ladder
        k = next(k for k in DECADE_STEPS if (last - first + 1) / k <= MOST)
        values = [10.0**e for e in range(first, last + 1) if e % k == 0 and lo <= 10.0**e <= hi]
        return (values, [_label(v) for v in values]) if len(values) >= 2 else None
    fallback = None
    for mantissas in LADDERS:
        values = _in_range(mantissas, first, last, lo, hi)
        if len(values) > MOST:
            break
        if len(values) >= 2:
            fallback = values
        if len(values) >= ENOUGH:
            break
    return (fallback, [_label(v) for v in fallback]) if fallback else None


def finite_positive_range(arrays: Iterable[object]) -> tuple[float, float] | None:
    """(min, max) of the finite, positive values over all ``arrays``; None if there are none."""
    lo, hi = math.inf, -math.inf
    for values in arrays:
        if values is None:
            continue
        a = np.asarray(values, dtype=np.float64).ravel()
        a = a[np.isfinite(a) & (a > 0)]
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    return (lo, hi) if lo <= hi else None


def _in_range(
    mantissas: tuple[float, ...], first: int, last: int, lo: float, hi: float
) -> list[float]:
    values = []
    for exponent in range(first, last + 1):
        for m in mantissas:
            v = float(f"{m * 10.0**exponent:.6g}")  # 0.30000000000000004 -> 0.3
            if lo <= v <= hi:
                values.append(v)
    return values


def _label(value: float) -> str:
    """'0.05', '20', '1e+20': plain below a million and above 1e-4, else a power of ten."""
    return f"{value:g}" if 1e-4 <= value < 1e6 else f"{value:.0e}"
