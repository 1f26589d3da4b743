"""How much of a series reaches the browser: thinning by min/max buckets, narrow dtypes.

Line traces carry numpy arrays of at most MAX_POINTS points, thinned by min/max bucketing
so that a gradient spike is never averaged away (``downsample``); a figure built once and
drawn by many (a shared run's watchers) sends its arrays in the narrowest exact dtype
(``wire_arrays``). Pure functions; nothing here calls Streamlit.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

# Most points in one line trace: 250 min/max pairs, about one pair per 2.5 px of a chart half
# a 1400 px page wide (one per 5 px at full width), so a spike is never lost. Each point more
# is serialised for every page that draws the chart (forty watchers of a shared run pay it
# forty times) and drawn by a browser that shares two cores with the run: at 1000 points a
# gate-band chart took a page 67 ms to draw and 122 ms to redraw, at 500 41 ms and 45 ms
# (benchmarks/chart_draw.py --max-points, benchmarks/README.md).
MAX_POINTS = 500


def downsample(
    x: np.ndarray, ys: dict[str, np.ndarray], max_points: int = MAX_POINTS
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Thin series that share ``x`` to at most ``max_points`` points, keeping the extremes.

    x is split into equal buckets; each bucket keeps the index of the minimum and of the
    maximum of every series (NaN ignored; an all-NaN bucket keeps a NaN so gaps survive),
    plus the first and last point. The buckets shrink until the union fits. Returns numpy
    arrays: x[idx] and {name: y[idx]}.
    """
    if max_points < 4:
        raise ValueError(f"downsample max_points={max_points}: expected at least 4")
    x = np.asarray(x)
    series = {name: np.asarray(y, dtype=np.float64) for name, y in ys.items()}
    for name, y in series.items():
        if y.shape != x.shape:
            raise ValueError(f"downsample: series {name!r} has shape {y.shape}, x has {x.shape}")
    n = len(x)
    if n <= max_points:
        return x, series
    values = list(series.values()) or [np.zeros(n)]
    buckets = (max_points - 2) // 2
    idx = _bucket_extremes(values, n, buckets)
    while len(idx) > max_points and buckets > 1:
        buckets = max(1, min(buckets - 1, buckets * max_points // len(idx)))
        idx = _bucket_extremes(values, n, buckets)
    if len(idx) > max_points:  # only with hundreds of series: fall back to even spacing
        idx = idx[np.linspace(0, len(idx) - 1, max_points).round().astype(np.int64)]
    return x[idx], {name: y[idx] for name, y in series.items()}


def _bucket_extremes(values: list[np.ndarray], n: int, buckets: int) -> np.ndarray:
    """Sorted unique indices of each bucket's min and max in every series, first and last."""
    size = -(-n // buckets)
    rows = -(-n // size)
    pad = rows * size - n
    offsets = np.arange(rows) * size
    keep = [np.array([0, n - 1])]
    for y in values:
        missing = np.isnan(y)
        low = np.pad(np.where(missing, np.inf, y), (0, pad), constant_values=np.inf)
        high = np.pad(np.where(missing, -np.inf, y), (0, pad), constant_values=-np.inf)
        keep.append(offsets + low.reshape(rows, size).argmin(axis=1))
        keep.append(offsets + high.reshape(rows, size).argmax(axis=1))
    idx = np.unique(np.concatenate(keep))
    return idx[idx < n]


# float32 holds a value within these magnitudes to ~7 significant digits, plenty for a chart
F32_TINY, F32_HUGE = 1e-37, 3e38
WIRE_AXES = ("x", "y", "z")


def narrow(values: np.ndarray) -> np.ndarray:
    """The same values in fewer bytes for the browser: whole numbers (steps, epochs, t) as
    int32, other values as float32 where every finite non-zero magnitude is within float32's
    normal range (a diverging run's 1e+40 keeps float64); NaN and inf stay as they are.
    plotly sends numpy arrays as base64 typed arrays, so this halves a chart's bytes."""
    if values.dtype != np.float64 or values.size == 0:
        return values
    finite = values[np.isfinite(values)]
    if finite.size == values.size and np.all(finite == np.round(finite)):
        if finite.size == 0 or np.abs(finite).max() < 2**31:
            return values.astype(np.int32)
    magnitude = np.abs(finite[finite != 0])
    if magnitude.size and (magnitude.min() < F32_TINY or magnitude.max() > F32_HUGE):
        return values
    return values.astype(np.float32)


def wire_arrays(fig: go.Figure) -> go.Figure:
    """Narrow every trace's float64 x, y and z arrays (``narrow``); what each page that
    draws the figure is sent, for a figure built once and drawn by many (a shared run's
    watchers). Lists, dates and other arrays are left alone."""
    for trace in fig.data:
        for axis in WIRE_AXES:
            values = trace[axis] if axis in trace else None
            if isinstance(values, np.ndarray):
                narrowed = narrow(values)
                if narrowed is not values:
                    trace[axis] = None  # plotly keeps an equal array it is given: unset it
                    trace[axis] = narrowed
    return fig
