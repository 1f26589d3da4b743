"""Pure figure builders: telemetry DataFrames and arrays in, plotly figures out.

Nothing here calls Streamlit; ``app.py`` passes the figures to ``st.plotly_chart``. Every
figure has a title, axis titles, the ``plotly_white`` template, a horizontal legend on top and
a fixed ``uirevision`` (zoom and legend toggles survive the live refresh); the width follows
the container. Line traces carry numpy arrays of at most MAX_POINTS points, thinned by
min/max bucketing so that a gradient spike is never averaged away.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.ticks import finite_positive_range, log_ticks

MAX_POINTS = 2000  # most points in one line trace
HEATMAP_MAX_UNITS = 256  # hidden units shown in a gate heatmap
HEATMAP_MAX_ROWS = 400  # training steps shown in the gradient-flow heatmap
MAX_EVENT_LINES = 50  # latest knob changes drawn as vertical lines
HEIGHT = 380  # px; the width is left to the container

SIGMOID_GATES = ("Z", "R", "I", "F", "O")  # values in [0, 1]
TANH_GATES = ("H_tilde", "C_tilde", "H")  # values in [-1, 1]
GATE_LABELS = dict(
    Z="update gate Z",
    R="reset gate R",
    H_tilde="candidate state H̃",
    I="input gate I",
    F="forget gate F",
    O="output gate O",
    C_tilde="candidate cell C̃",
    H="hidden state H",
)
EVENT_LABELS = dict(clip_threshold="clip", lr="lr")
BLUE, ORANGE, GREEN, RED, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f"
DEEP_BLUE = (8, 48, 107)  # the dark end of plotly's 'Blues'


# ----- data helpers ---------------------------------------------------------------------------


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


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as float64 numpy (None -> NaN); all NaN if the column is missing."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _valid(x: np.ndarray, y: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """Drop points that are not finite (and not positive, for a log axis)."""
    keep = np.isfinite(x) & np.isfinite(y)
    if log:
        keep &= y > 0
    return x[keep], y[keep]


def _line(x: np.ndarray, y: np.ndarray, name: str, log: bool, **style: object) -> go.Scatter:
    """A line trace of the valid points of (x, y), thinned to MAX_POINTS."""
    x, y = _valid(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), log)
    x, ys = downsample(x, dict(y=y))
    return go.Scatter(x=x, y=ys["y"], name=name, mode="lines", **style)


def _steps_x(steps: pd.DataFrame) -> np.ndarray:
    return _column(steps, "step")


# ----- layout helpers -------------------------------------------------------------------------


def _layout(
    fig: go.Figure,
    title: str,
    x_title: str,
    y_title: str,
    uirevision: str,
    log_y: bool = False,
    hovermode: str | bool = "x unified",
) -> go.Figure:
    """The look every figure shares (template, legend on top, responsive, uirevision)."""
    fig.update_layout(
        # the title at the very top, so a legend that wraps to two rows stays clear of it
        title=dict(text=title, x=0.0, xanchor="left", y=0.98, yref="container", yanchor="top"),
        template="plotly_white",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0.0),
        uirevision=uirevision,
        autosize=True,
        height=HEIGHT,
        margin=dict(l=60, r=30, t=90, b=50),
        hovermode=hovermode,
        xaxis=dict(title=dict(text=x_title)),
        yaxis=dict(title=dict(text=y_title), type="log" if log_y else "linear"),
    )
    if log_y:  # full-number ticks ('0.05', not plotly's bare minor digit '5')
        shown = finite_positive_range(trace.y for trace in fig.data)
        ticks = log_ticks(*shown) if shown else None
        if ticks:
            fig.update_yaxes(tickmode="array", tickvals=ticks[0], ticktext=ticks[1])
    return fig


def _fmt(value: float) -> str:
    return "off" if not math.isfinite(value) else f"{value:g}"


def _event_marks(events: pd.DataFrame | None, steps: pd.DataFrame) -> tuple[list, list]:
    """Dotted vertical lines and labels ("clip 1→0.1") for the latest knob changes.

    The value before a kind's first event is read from the steps column of the same name
    (clip_threshold, lr) at the last step before the change, when there is one.
    """
    if events is None or events.empty or not {"step", "kind", "value"} <= set(events.columns):
        return [], []
    ordered = events.sort_values("step", kind="stable")
    step_x = _steps_x(steps)
    previous: dict[str, float] = {}
    marks: list[tuple[float, str]] = []
    for step, kind, value in zip(
        _column(ordered, "step"),
        ordered["kind"].astype(str),
        _column(ordered, "value"),
        strict=True,
    ):
        if not math.isfinite(step):
            continue
        if kind not in previous and kind in steps.columns:
            before = np.flatnonzero(step_x < step)
            if len(before):
                previous[kind] = float(_column(steps, kind)[before[-1]])
        label = EVENT_LABELS.get(kind, kind)
        text = f"{label} {_fmt(value)}"
        if kind in previous:
            text = f"{label} {_fmt(previous[kind])}→{_fmt(value)}"
        previous[kind] = float(value)
        marks.append((float(step), text))
    marks = marks[-MAX_EVENT_LINES:]
    line = dict(color=GREY, width=1, dash="dot")
    shapes = [
        dict(type="line", xref="x", yref="paper", x0=s, x1=s, y0=0, y1=1, line=line)
        for s, _ in marks
    ]
    notes = [
        dict(
            x=s,
            xref="x",
            y=1,
            yref="paper",
            text=text,
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font=dict(size=10, color=GREY),
        )
        for s, text in marks
    ]
    return shapes, notes


def _add_events(fig: go.Figure, events: pd.DataFrame | None, steps: pd.DataFrame) -> None:
    shapes, notes = _event_marks(events, steps)
    if shapes:
        fig.update_layout(shapes=shapes, annotations=notes)


def gate_range(gate: str) -> tuple[float, float] | None:
    """Value range of a gate: (0, 1) for sigmoid gates, (-1, 1) for tanh-valued, else None."""
    if gate in SIGMOID_GATES:
        return 0.0, 1.0
    if gate in TANH_GATES:
        return -1.0, 1.0
    return None


# ----- figures --------------------------------------------------------------------------------


def empty_figure(title: str, message: str) -> go.Figure:
    """A placeholder with a centred message (before a run starts, or when data is missing)."""
    fig = _layout(go.Figure(), title, "", "", uirevision="empty", hovermode=False)
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


def perplexity_figure(
    steps: pd.DataFrame, epochs: pd.DataFrame, events: pd.DataFrame | None = None
) -> go.Figure:
    """Batch perplexity per step (faint), train and validation perplexity per epoch; log y."""
    fig = go.Figure()
    fig.add_trace(
        _line(
            _steps_x(steps),
            _column(steps, "perplexity"),
            "batch perplexity",
            log=True,
            line=dict(width=1, color=BLUE),
            opacity=0.3,
        )
    )
    epoch_x = _column(epochs, "step")
    for column, name, color in (
        ("train_perplexity", "train (per epoch)", BLUE),
        ("val_perplexity", "validation (per epoch)", ORANGE),
    ):
        trace = _line(epoch_x, _column(epochs, column), name, log=True, line=dict(color=color))
        trace.update(mode="lines+markers", marker=dict(size=4))
        fig.add_trace(trace)
    _add_events(fig, events, steps)
    return _layout(fig, "Perplexity", "training step", "perplexity (log)", "perplexity", True)


def clipped_share(steps: pd.DataFrame) -> float:
    """Fraction of the rows in ``steps`` whose gradients were clipped (0.0 when empty)."""
    if steps.empty or "clipped" not in steps.columns:
        return 0.0
    clipped = steps["clipped"].astype(object).where(steps["clipped"].notna(), False)
    return float(clipped.astype(bool).mean())


def _change_points(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first point of each run of equal values (NaN equal to NaN), and the last."""
    if len(y) == 0:
        return x, y
    same = (y[1:] == y[:-1]) | (np.isnan(y[1:]) & np.isnan(y[:-1]))
    keep = np.concatenate([[True], ~same])
    keep[-1] = True
    return x[keep], y[keep]


def grad_norm_figure(steps: pd.DataFrame, events: pd.DataFrame | None = None) -> go.Figure:
    """Global gradient norm before and after clipping, and the clip threshold; log y."""
    x = _steps_x(steps)
    fig = go.Figure()
    # 'after' is drawn first, wide and pale, so the thin 'before' line stays visible on top
    # of it where they coincide (every step that was not clipped).
    for column, name, line in (
        ("grad_norm_clipped", "after clipping", dict(width=4, color=GREEN)),
        ("grad_norm", "before clipping", dict(width=1.2, color=BLUE)),
    ):
        opacity = 0.45 if column == "grad_norm_clipped" else 1.0
        fig.add_trace(_line(x, _column(steps, column), name, log=True, line=line, opacity=opacity))
    # The threshold: NaN (clipping off) stays in as a gap; non-positive is off too.
    threshold = _column(steps, "clip_threshold")
    threshold = np.where(np.isfinite(threshold) & (threshold > 0), threshold, np.nan)
    keep = np.isfinite(x)
    tx, ty = _change_points(x[keep], threshold[keep])
    tx, ts = downsample(tx, dict(y=ty))
    clipping = bool(np.isfinite(ts["y"]).any())  # at some step shown
    fig.add_trace(
        go.Scatter(
            x=tx,
            y=ts["y"],
            name="clip threshold" if clipping else "clip threshold (off)",
            mode="lines",
            connectgaps=False,
            line=dict(shape="hv", dash="dash", color=RED, width=1.5),
        )
    )
    _add_events(fig, events, steps)
    title = (
        f"Gradient norm (clipped on {clipped_share(steps):.0%} of the steps shown)"
        if clipping
        else "Gradient norm (clipping off)"
    )
    return _layout(fig, title, "training step", "||g|| (log)", "grad_norm", log_y=True)


def param_group_figure(steps: pd.DataFrame) -> go.Figure:
    """One line per parameter group (``group:*`` columns): its gradient norm; log y."""
    x = _steps_x(steps)
    fig = go.Figure()
    for column in (c for c in steps.columns if str(c).startswith("group:")):
        name = str(column).removeprefix("group:")
        fig.add_trace(_line(x, _column(steps, column), name, log=True, line=dict(width=1)))
    return _layout(
        fig,
        "Gradient norm per parameter group",
        "training step",
        "||g|| (log)",
        "param_groups",
        log_y=True,
    )


def gate_bands_figure(steps: pd.DataFrame, gate: str) -> go.Figure:
    """Percentile bands (p5–p95 light, p25–p75 darker), median, mean (dashed) of one gate,
    and its saturated fraction on a right-hand axis (0..1)."""
    label = GATE_LABELS.get(gate, gate)
    title = f"{label}: distribution per step"
    names = ("p5", "p25", "p50", "p75", "p95", "mean", "sat")
    x = _steps_x(steps)
    cols = {n: _column(steps, f"{gate}:{n}") for n in names}
    keep = np.isfinite(x)
    for n in names[:-1]:
        keep &= np.isfinite(cols[n])
    x, cols = downsample(x[keep], {n: c[keep] for n, c in cols.items()})
    cols["sat"] = np.where(np.isfinite(cols["sat"]), cols["sat"], np.nan)
    band = dict(line=dict(width=0), hoverinfo="skip")
    light, dark = "rgba(31,119,180,0.15)", "rgba(31,119,180,0.35)"
    fig = go.Figure(
        [
            # Each band is an invisible upper edge, then a lower edge filled up to it.
            go.Scatter(x=x, y=cols["p95"], name="p95", showlegend=False, **band),
            go.Scatter(x=x, y=cols["p5"], name="p5–p95", fill="tonexty", fillcolor=light, **band),
            go.Scatter(x=x, y=cols["p75"], name="p75", showlegend=False, **band),
            go.Scatter(x=x, y=cols["p25"], name="p25–p75", fill="tonexty", fillcolor=dark, **band),
            go.Scatter(x=x, y=cols["p50"], name="median", line=dict(color=BLUE, width=1.5)),
            go.Scatter(x=x, y=cols["mean"], name="mean", line=dict(color=ORANGE, dash="dash")),
            go.Scatter(
                x=x,
                y=cols["sat"],
                name="saturated fraction",
                yaxis="y2",
                line=dict(color=RED, width=1, dash="dot"),
            ),
        ]
    )
    fig.update_traces(mode="lines")
    _layout(fig, title, "training step", f"{gate} value", f"gate_bands:{gate}")
    value_range = gate_range(gate)
    if value_range is not None:
        fig.update_layout(yaxis_range=list(value_range))
    fig.update_layout(
        yaxis2=dict(
            title=dict(text="saturated fraction"),
            overlaying="y",
            side="right",
            range=[0, 1],
            showgrid=False,
            tickformat=".0%",
        ),
        # seven legend entries: below the plot, where they can't cover the title
        margin=dict(r=70, t=50, b=120),
        legend=dict(y=-0.22, yanchor="top"),
    )
    return fig


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
    label = GATE_LABELS.get(gate, gate)
    title = f"{label} on the probe text"
    if H > HEATMAP_MAX_UNITS:
        title += f" (first {HEATMAP_MAX_UNITS} of {H} hidden units)"
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
            colorscale="RdBu" if diverging else "Viridis",
            hoverongaps=False,
            colorbar=dict(title=dict(text=gate)),
            hovertemplate="t=%{x}<br>unit %{y}<br>" + gate + "=%{z:.3f}<extra></extra>",
        )
    )
    shown = t[:: max(1, -(-T // 100))]
    _layout(
        fig,
        title,
        "time step (character)",
        "hidden unit",
        f"gate_heatmap:{gate}",
        hovermode="closest",
    )
    fig.update_layout(
        xaxis=dict(
            tickmode="array",
            tickvals=shown,
            ticktext=[_char_label(text[i]) for i in shown],
            tickangle=0,
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
    legend = (
        '<div style="font-size:0.8em;color:#555;margin-top:0.4em">'
        "Z≈0 writes new state "
        f'<span style="display:inline-block;width:8em;height:0.8em;background:{gradient};'
        'border:1px solid #ccc;vertical-align:middle"></span>'
        " Z≈1 keeps old state</div>"
    )
    return (
        '<div style="font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;'
        'font-size:1.05em;line-height:2;word-break:break-all">'
        f"<div>{''.join(spans)}</div>{legend}</div>"
    )


def grad_flow_line_figure(flow: np.ndarray, step: int) -> go.Figure:
    """||dL/dH_t|| against t = 1..T at one training step; log y."""
    flow = np.asarray(flow, dtype=np.float64).reshape(-1)
    t = np.arange(1, len(flow) + 1, dtype=np.float64)
    trace = _line(t, flow, "||dL/dH_t||", log=True, line=dict(color=BLUE))
    trace.update(mode="lines+markers", marker=dict(size=4))
    title = f"Gradient flowing back through time at step {step}"
    return _layout(
        go.Figure(trace), title, "time step t", "||dL/dH_t|| (log)", "grad_flow_line", log_y=True
    )


def grad_flow_heatmap_figure(flow_steps: np.ndarray, flow: np.ndarray) -> go.Figure:
    """log10 ||dL/dH_t|| for every recorded step: x = t, y = training step."""
    title = "Gradient flow through time over training"
    flow_steps = np.asarray(flow_steps).reshape(-1)
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 2 or flow.shape[0] != len(flow_steps):
        raise ValueError(
            f"grad_flow_heatmap_figure: flow {flow.shape} does not match steps {flow_steps.shape}"
        )
    if flow.size == 0:
        return empty_figure(title, "No gradient-flow rows recorded yet")
    order = np.argsort(flow_steps, kind="stable")
    flow_steps, flow = flow_steps[order], flow[order]
    rows = np.unique(np.linspace(0, len(flow_steps) - 1, HEATMAP_MAX_ROWS).round().astype(int))
    cols = np.unique(np.linspace(0, flow.shape[1] - 1, MAX_POINTS).round().astype(int))
    flow = flow[np.ix_(rows, cols)]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(np.isfinite(flow) & (flow > 0), np.log10(flow), np.nan)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=(cols + 1).astype(np.int64),
            y=flow_steps[rows].astype(np.int64),
            colorscale="Viridis",
            hoverongaps=False,
            colorbar=dict(title=dict(text="log10 ||dL/dH_t||")),
            hovertemplate="t=%{x}<br>step %{y}<br>log10 norm=%{z:.2f}<extra></extra>",
        )
    )
    _layout(fig, title, "time step t", "training step", "grad_flow_heatmap", hovermode="closest")
    fig.update_layout(showlegend=False)
    return fig


def compare_figure(
    runs: dict[str, pd.DataFrame], y: str, title: str, log_y: bool = True, x: str = "step"
) -> go.Figure:
    """One line per saved run: column ``y`` against column ``x`` (runs lacking them skipped)."""
    fig = go.Figure()
    for name, frame in runs.items():
        if x in frame.columns and y in frame.columns:
            fig.add_trace(_line(_column(frame, x), _column(frame, y), name, log=log_y))
    return _layout(fig, title, x, y + (" (log)" if log_y else ""), f"compare:{y}", log_y=log_y)
