"""Tests of the pure figure builders, on real telemetry snapshots and on a 50,000-row frame."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from dashboard.charts import base as figure_base
from dashboard.charts import cells as cell_charts
from dashboard.charts import events as figure_events
from dashboard.charts import thinning as figure_thinning
from dashboard.charts import training as charts
from dashboard.charts.base import empty_figure
from dashboard.charts.cells import gate_bands_figure, gate_heatmap_figure, probe_text_html
from dashboard.charts.flow import (
    flow_reach_figure,
    grad_flow_heatmap_figure,
    grad_flow_line_figure,
    normalise_at_end,
)
from dashboard.charts.thinning import MAX_POINTS, downsample
from dashboard.charts.training import (
    MAX_MARKERS,
    clipped_share,
    compare_figure,
    grad_norm_figure,
    param_group_figure,
    perplexity_figure,
)
from gru_core.run.records import PARAM_GROUPS, EpochRecord, GateStats, StepRecord
from gru_core.run.telemetry import Snapshot, Telemetry, gate_names

PROBE = "time traveller "
PARAMS = dict.fromkeys(("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h"), 0.1)
PARAMS |= {"W_hq": 0.2, "b_q": 0.05}


def make_step(step: int, grad_norm: float, clip: float | None) -> StepRecord:
    """A synthetic StepRecord with a GRU's gates (Z, R, H_tilde)."""
    gates = {
        "Z": GateStats(0.6, (0.1, 0.4, 0.6, 0.8, 0.97), 0.2),
        "R": GateStats(0.5, (0.05, 0.3, 0.5, 0.7, 0.9), 0.1),
        "H_tilde": GateStats(0.0, (-0.9, -0.4, 0.0, 0.4, 0.9), 0.3),
    }
    clipped = clip is not None and grad_norm > clip
    return StepRecord(
        step=step,
        epoch=1 + step // 10,
        loss=3.0 - step / 100,
        perplexity=math.exp(3.0 - step / 100),
        grad_norm=grad_norm,
        grad_norm_clipped=clip if clipped else grad_norm,
        clipped=clipped,
        clip_threshold=clip,
        lr=1.0,
        param_grad_norms=PARAMS,
        update_ratio=1e-3,
        gates=gates,
        grad_flow=tuple(10.0 ** -(t / 10) for t in range(35)) if step % 5 == 0 else None,
        tokens=32 * 35,
    )


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    """A small run: 60 steps, clipping turned off at step 30, NaN/inf steps, epochs, probe."""
    tel = Telemetry()
    for s in range(1, 61):
        clip = 1.0 if s < 30 else None
        grad_norm = {17: math.inf, 18: math.nan, 19: 0.0}.get(s, 0.5 + (s % 4))
        tel.add_step(make_step(s, grad_norm, clip))
        if s == 30:
            tel.add_event(30, "clip_threshold", None)
        if s % 10 == 0:
            val = None if s == 10 else 15.0 - s / 10
            tel.add_epoch(EpochRecord(s // 10, s, 16.0 - s / 10, val, 1e4, "t", "t", float(s)))
    tel.add_event(40, "lr", 0.5)
    rng = np.random.default_rng(0)
    gates = {g: rng.uniform(0, 1, (len(PROBE), 8)) for g in ("Z", "R")}
    gates["H_tilde"] = rng.uniform(-1, 1, (len(PROBE), 8))
    tel.set_probe(60, PROBE, gates)
    return tel.snapshot()


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    """A 50,000-row steps frame with the telemetry columns, a spike, NaN and inf rows."""
    n = 50_000
    rng = np.random.default_rng(1)
    step = np.arange(1, n + 1)
    grad = np.exp(rng.normal(0.0, 0.5, n))
    grad[31_337] = 1e8
    grad[[100, 200]] = [np.nan, np.inf]
    clip = np.where((step > 20_000) & (step < 30_000), np.nan, 1.0)
    ppl = np.exp(5.0 * np.exp(-step / 10_000) + 1.0 + rng.normal(0, 0.05, n))
    ppl[300] = np.inf
    frame = {
        "step": step,
        "epoch": 1 + step // 500,
        "perplexity": ppl,
        "grad_norm": grad,
        "grad_norm_clipped": np.minimum(grad, np.nan_to_num(clip, nan=np.inf)),
        "clipped": grad > np.nan_to_num(clip, nan=np.inf),
        "clip_threshold": clip,
    }
    for g in PARAM_GROUPS:
        frame[f"group:{g}"] = grad * rng.uniform(0.1, 1.0, n)
    for gate, (low, high) in {"Z": (0.0, 1.0), "H_tilde": (-1.0, 1.0)}.items():
        values = np.sort(rng.uniform(low, high, (n, 5)), axis=1)
        for i, p in enumerate((5, 25, 50, 75, 95)):
            frame[f"{gate}:p{p}"] = values[:, i]
        frame[f"{gate}:mean"] = values.mean(axis=1)
        frame[f"{gate}:sat"] = rng.uniform(0, 1, n)
    frame["Z:p50"][400] = np.nan
    return pd.DataFrame(frame)


def big_epochs(n: int = 100) -> pd.DataFrame:
    """Epoch rows of the 50,000-step frame (validation missing on the first)."""
    val = np.linspace(20.0, 5.0, n)
    val[0] = np.nan
    return pd.DataFrame(
        {
            "epoch": np.arange(1, n + 1),
            "step": np.arange(1, n + 1) * 500,
            "train_perplexity": np.linspace(25.0, 4.0, n),
            "val_perplexity": val,
        }
    )


def check_figure(fig: go.Figure) -> None:
    """What every figure promises: title, axis titles, template, legend, uirevision, bounds."""
    assert isinstance(fig, go.Figure)
    assert fig.layout.title.text
    assert fig.layout.template == pio.templates["plotly_white"]
    assert fig.layout.legend.orientation == "h"
    assert fig.layout.uirevision is not None
    assert fig.layout.width is None  # responsive: the container decides
    if fig.layout.xaxis.visible is not False:
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    for trace in fig.data:
        for name in ("x", "y", "z"):
            values = getattr(trace, name, None)
            if values is None:
                continue
            assert isinstance(values, np.ndarray), f"{trace.name}.{name} is {type(values)}"
            assert all(dim <= MAX_POINTS for dim in values.shape), (trace.name, values.shape)
    fig.to_json()  # serialises (numpy arrays go as typed arrays)


def names(fig: go.Figure) -> set[str]:
    return {trace.name for trace in fig.data}


# ----- downsample -----------------------------------------------------------------------------


def test_downsample_bounds_and_keeps_extremes() -> None:
    n = 100_000
    x = np.arange(n)
    y = np.sin(x / 1000.0)
    y[54_321], y[77_777] = 1e9, -1e9
    other = np.cos(x / 500.0)
    other[5] = np.nan
    xs, ys = downsample(x, {"y": y, "other": other})
    assert isinstance(xs, np.ndarray) and len(xs) <= MAX_POINTS
    assert all(len(v) == len(xs) and isinstance(v, np.ndarray) for v in ys.values())
    assert {0, 54_321, 77_777, n - 1} <= set(xs.tolist())
    assert np.all(np.diff(xs) > 0)
    xs, ys = downsample(x, {f"s{i}": np.random.default_rng(i).random(n) for i in range(6)}, 500)
    assert len(xs) <= 500


def test_downsample_small_input_unchanged_and_validation() -> None:
    xs, ys = downsample(np.arange(10), {"y": np.arange(10.0)})
    assert list(xs) == list(range(10)) and list(ys["y"]) == list(range(10))
    xs, ys = downsample(np.arange(0), {"y": np.arange(0.0)})
    assert len(xs) == 0
    with pytest.raises(ValueError, match="shape"):
        downsample(np.arange(10), {"y": np.arange(5.0)})
    with pytest.raises(ValueError, match="max_points"):
        downsample(np.arange(10), {"y": np.arange(10.0)}, max_points=2)


def test_downsample_keeps_all_nan_gaps() -> None:
    y = np.ones(10_000)
    y[4000:6000] = np.nan
    xs, ys = downsample(np.arange(10_000), {"y": y})
    assert np.isnan(ys["y"]).any() and not np.isnan(ys["y"]).all()


# ----- figures on a real snapshot and on 50,000 rows ------------------------------------------


def test_perplexity_figure(snap: Snapshot, big: pd.DataFrame) -> None:
    fig = perplexity_figure(snap.steps, snap.epochs, snap.events)
    check_figure(fig)
    assert {"batch perplexity", "train (per epoch)", "validation (per epoch)"} <= names(fig)
    assert fig.layout.yaxis.type == "log"
    batch = next(t for t in fig.data if t.name == "batch perplexity")
    assert batch.opacity == pytest.approx(0.3)
    val = next(t for t in fig.data if t.name == "validation (per epoch)")
    assert len(val.y) == 5 and np.isfinite(val.y).all()  # epoch 1 has no validation
    labels = [a.text for a in fig.layout.annotations]
    assert "clip 1→off" in labels and "lr 1→0.5" in labels
    assert all(shape.line.dash == "dot" for shape in fig.layout.shapes)
    assert val.mode == "lines+markers"  # a few epochs: a marker on each
    fig = perplexity_figure(big, big_epochs())
    check_figure(fig)
    assert np.isfinite(fig.data[0].y).all()


def test_perplexity_markers_only_while_sparse() -> None:
    """The epochs' lines mark each epoch while there are at most MAX_MARKERS of them; the
    book's 500 epochs are drawn as lines, every epoch still a point of the line."""
    for count, mode in ((MAX_MARKERS, "lines+markers"), (500, "lines")):
        epochs = pd.DataFrame(
            {
                "step": np.arange(1, count + 1) * 8,
                "train_perplexity": np.linspace(20, 1.1, count),
                "val_perplexity": np.linspace(22, 1.2, count),
            }
        )
        steps = pd.DataFrame({"step": [8], "perplexity": [20.0]})
        fig = perplexity_figure(steps, epochs)
        for name in ("train (per epoch)", "validation (per epoch)"):
            trace = next(t for t in fig.data if t.name == name)
            assert trace.mode == mode and len(trace.x) == count


def test_grad_norm_figure(snap: Snapshot, big: pd.DataFrame) -> None:
    fig = grad_norm_figure(snap.steps, snap.events)
    check_figure(fig)
    assert {"before clipping", "after clipping", "clip threshold"} <= names(fig)
    assert fig.layout.yaxis.type == "log"
    before = next(t for t in fig.data if t.name == "before clipping")
    assert np.isfinite(before.y).all() and (before.y > 0).all()  # inf, NaN, 0 dropped
    threshold = next(t for t in fig.data if t.name == "clip threshold")
    assert threshold.line.shape == "hv" and np.isnan(threshold.y).any()  # gap: clipping off
    fig = grad_norm_figure(big)
    check_figure(fig)
    before = next(t for t in fig.data if t.name == "before clipping")
    assert before.y.max() == 1e8  # the spike survives downsampling


def test_grad_norm_figure_says_when_clipping_was_off_throughout(snap: Snapshot) -> None:
    steps = snap.steps.assign(clip_threshold=np.nan, clipped=False)
    fig = grad_norm_figure(steps)
    check_figure(fig)
    assert fig.layout.title.text == "Gradient norm · clipping off"
    assert "clip threshold (off)" in names(fig) and "clip threshold" not in names(fig)
    assert grad_norm_figure(snap.steps).layout.title.text.endswith("of steps clipped")


def test_clipped_share(snap: Snapshot) -> None:
    assert clipped_share(Telemetry().snapshot().steps) == 0.0
    expected = float(snap.steps["clipped"].mean())
    assert 0.0 < clipped_share(snap.steps) == pytest.approx(expected)
    frame = pd.DataFrame({"clipped": [True, None, False, True]})
    assert clipped_share(frame) == 0.5


def test_param_group_figure(snap: Snapshot, big: pd.DataFrame) -> None:
    for steps in (snap.steps, big):
        fig = param_group_figure(steps)
        check_figure(fig)
        assert names(fig) == set(PARAM_GROUPS)
        assert fig.layout.yaxis.type == "log"
        assert fig.layout.title.text == "Gradient norm per parameter group"


@pytest.mark.parametrize(("gate", "expected"), [("Z", (0, 1)), ("H_tilde", (-1, 1))])
def test_gate_bands_figure(snap: Snapshot, big: pd.DataFrame, gate: str, expected: tuple) -> None:
    assert gate in gate_names(snap)
    for steps in (snap.steps, big):
        fig = gate_bands_figure(steps, gate)
        check_figure(fig)
        assert {"p5–p95", "p25–p75", "median", "mean", "saturated"} <= names(fig)
        assert tuple(fig.layout.yaxis.range) == expected
        assert tuple(fig.layout.yaxis2.range) == (0, 1) and fig.layout.yaxis2.side == "right"
        sat = next(t for t in fig.data if t.name == "saturated")
        assert sat.yaxis == "y2"
        assert next(t for t in fig.data if t.name == "mean").line.dash == "dash"
    check_figure(gate_bands_figure(snap.steps, "F"))  # a gate the run lacks: empty, no crash


def test_gate_heatmap_figure(snap: Snapshot) -> None:
    probe = snap.probe
    assert probe is not None
    fig = gate_heatmap_figure(probe["gates"]["Z"], probe["text"], "Z")
    check_figure(fig)
    heat = fig.data[0]
    assert (heat.zmin, heat.zmax) == (0, 1)
    assert heat.colorscale == go.Heatmap(colorscale="Viridis").colorscale
    assert heat.z.shape == (8, len(PROBE))  # (hidden unit, time step)
    assert list(fig.layout.xaxis.ticktext[:4]) == ["t", "i", "m", "e"]
    assert fig.layout.xaxis.ticktext[4] == "␣"
    fig = gate_heatmap_figure(probe["gates"]["H_tilde"], probe["text"], "H_tilde")
    assert (fig.data[0].zmin, fig.data[0].zmax) == (-1, 1)
    assert fig.data[0].colorscale == go.Heatmap(colorscale="RdBu").colorscale
    wide = np.random.default_rng(0).uniform(0, 1, (len(PROBE), 300))
    fig = gate_heatmap_figure(wide, PROBE, "R")
    check_figure(fig)
    assert fig.data[0].z.shape == (64, len(PROBE)) and "64 of 300" in fig.layout.title.text
    assert np.array_equal(fig.data[0].z, wide[:, :64].T)  # the first 64 units, as they were
    with pytest.raises(ValueError, match="characters"):
        gate_heatmap_figure(wide, "too short", "R")


def test_probe_text_html_escapes_and_shades() -> None:
    text = "a<b & c"
    out = probe_text_html(text, np.array([0.0, 1.0, 0.5, 0.2, 0.9, np.nan, 1.0]))
    assert "&lt;" in out and "&amp;" in out and "<b" not in out
    assert out.count("<span") >= len(text) and "␣" in out
    assert "monospace" in out
    assert "Z≈0 writes new state" in out and "Z≈1 keeps old state" in out
    assert "rgb(255,255,255)" in out and "rgb(8,48,107)" in out  # Z = 0 white, Z = 1 deep blue
    with pytest.raises(ValueError, match="Z values"):
        probe_text_html("abc", np.zeros(2))


def test_grad_flow_line_figure(snap: Snapshot) -> None:
    fig = grad_flow_line_figure(snap.flow[-1], int(snap.flow_steps[-1]))
    check_figure(fig)
    assert fig.layout.yaxis.type == "log" and "60" in fig.layout.title.subtitle.text
    assert fig.data[0].x[0] == 1 and len(fig.data[0].x) == 35
    fig = grad_flow_line_figure(np.array([1.0, np.nan, 0.0, np.inf, 0.5]), 3)
    check_figure(fig)
    assert list(fig.data[0].x) == [1, 3, 5]  # 0 (underflow) is drawn at the floor, marked
    assert list(fig.data[1].x) == [3] and list(fig.data[1].y) == [1e-30]
    assert list(fig.layout.xaxis.range) == [0.5, 5.5]


def test_grad_flow_heatmap_figure(snap: Snapshot) -> None:
    fig = grad_flow_heatmap_figure(snap.flow_steps, snap.flow)
    check_figure(fig)
    assert fig.data[0].colorbar.title.text == "log10 ||dL/dH_t||"
    assert fig.data[0].z[0, 0] == pytest.approx(0.0)  # log10(1)
    flow = np.exp(np.random.default_rng(0).normal(size=(1000, 35)))
    flow[3, :] = np.nan
    flow[4, 2] = 0.0
    fig = grad_flow_heatmap_figure(np.arange(1000) * 10, flow)
    check_figure(fig)
    heat = fig.data[0]
    assert heat.z.shape[0] <= 400 and heat.y[0] == 0 and heat.y[-1] == 9990
    check_figure(grad_flow_heatmap_figure(np.zeros(0, dtype=int), np.zeros((0, 0))))


def test_compare_figure(big: pd.DataFrame, snap: Snapshot) -> None:
    runs = {
        "clip 1": big,
        "no clip": big.assign(grad_norm=big["grad_norm"] * 3),
        "tiny": snap.steps,
    }
    runs["no column"] = pd.DataFrame({"step": [1, 2]})
    fig = compare_figure(runs, "grad_norm", "Gradient norm by run")
    check_figure(fig)
    assert names(fig) == {"clip 1", "no clip", "tiny"} and fig.layout.yaxis.type == "log"
    fig = compare_figure({"a": big}, "perplexity", "Perplexity", log_y=False)
    assert fig.layout.yaxis.type == "linear"


def test_empty_figure() -> None:
    fig = empty_figure("Perplexity", "Start a run to see <it>")
    check_figure(fig)
    assert fig.layout.annotations[0].text == "Start a run to see &lt;it&gt;"
    assert (fig.layout.annotations[0].x, fig.layout.annotations[0].y) == (0.5, 0.5)


def test_every_builder_accepts_empty_frames() -> None:
    empty = Telemetry().snapshot()
    for fig in (
        perplexity_figure(empty.steps, empty.epochs, empty.events),
        grad_norm_figure(empty.steps, empty.events),
        param_group_figure(empty.steps),
        gate_bands_figure(empty.steps, "Z"),
        grad_flow_line_figure(np.zeros(0), 0),
        grad_flow_heatmap_figure(empty.flow_steps, empty.flow),
        compare_figure({}, "perplexity", "Perplexity"),
    ):
        check_figure(fig)


@pytest.mark.parametrize(
    "module",
    [charts, cell_charts, figure_base, figure_events, figure_thinning],
    ids=lambda m: m.__name__,
)
def test_charts_never_import_streamlit(module: object) -> None:
    tree = ast.parse(Path(module.__file__).read_text())
    modules = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name) or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(m.split(".")[0] == "streamlit" for m in modules)


def test_one_losss_reach_is_normalised_to_one_at_the_end() -> None:
    """The vanishing picture: ||dl_T/dH_t|| / ||dl_T/dH_T||, so t = T reads exactly 1."""
    last = np.array([1e-6, 1e-4, 1e-2, 0.5])
    late = np.array([1e-3, 1e-2, 0.1, 2.0])
    fig = flow_reach_figure(last, late, step=41)
    check_figure(fig)
    ys = [np.asarray(t.y) for t in fig.data]
    np.testing.assert_allclose(ys[0], last / 0.5)
    np.testing.assert_allclose(ys[1], late / 2.0)
    assert ys[0][-1] == ys[1][-1] == 1.0 and fig.layout.yaxis.type == "log"
    assert "41" in fig.layout.title.subtitle.text
    # Rows whose end is zero or missing are NaN, not a division by zero.
    normed = normalise_at_end(np.array([[1.0, 2.0, 0.0], [1.0, 4.0, np.nan], [2.0, 1.0, 4.0]]))
    assert np.isnan(normed[0]).all()
    np.testing.assert_allclose(normed[1][:2], [0.25, 1.0])
    np.testing.assert_allclose(normed[2], [0.5, 0.25, 1.0])


def test_a_snapshots_figures_are_built_once_for_every_session(snap: Snapshot) -> None:
    """The owner of a shared run and its watchers read one snapshot: one build per change."""
    from dashboard.charts.base import for_projector
    from dashboard.views.display import snapshot_figure

    builds: list[int] = []

    def build() -> go.Figure:
        builds.append(1)
        return grad_norm_figure(snap.steps)

    first = snapshot_figure(snap, "test-gnorm", build)
    assert snapshot_figure(snap, "test-gnorm", build) is first and len(builds) == 1
    for_projector(go.Figure(first))  # what chart() does in projector mode: a copy
    assert first.layout.xaxis.tickfont.size < 16  # the cached figure keeps the default look
    other = Telemetry()
    assert snapshot_figure(other.snapshot(), "test-gnorm", build) is not first
    assert len(builds) == 2


def test_sessions_asking_at_once_share_one_build_and_one_dict(snap: Snapshot) -> None:
    """Watchers redrawing while the owner builds a figure wait for that build; the figure's
    dict (what Streamlit serialises) is made once and a projector copy leaves it as it was."""
    import threading

    from dashboard.charts.base import for_projector
    from dashboard.views.display import snapshot_figure

    started, release, builds = threading.Event(), threading.Event(), []

    def slow_build() -> go.Figure:
        builds.append(1)
        started.set()
        release.wait(5)
        return grad_norm_figure(snap.steps)

    got: list[go.Figure] = []
    owner = threading.Thread(target=lambda: got.append(snapshot_figure(snap, "race", slow_build)))
    owner.start()
    assert started.wait(5)
    watchers = [
        threading.Thread(target=lambda: got.append(snapshot_figure(snap, "race", slow_build)))
        for _ in range(3)
    ]
    for w in watchers:
        w.start()
    release.set()
    for t in (owner, *watchers):
        t.join(10)
    assert len(builds) == 1 and len(got) == 4 and all(f is got[0] for f in got)
    spec = got[0].to_dict()
    assert got[0].to_dict() is spec  # made once
    before = json.dumps(spec, sort_keys=True, default=str)
    copy = for_projector(go.Figure(got[0]))
    assert copy.layout.xaxis.tickfont.size >= 16
    assert json.dumps(got[0].to_dict(), sort_keys=True, default=str) == before


def test_narrow_halves_the_bytes_and_keeps_the_values() -> None:
    """Steps go as int32, values as float32 (7 significant digits); NaN and inf stay, and a
    series float32 would flatten (1e+40, 1e-40) keeps float64."""
    from dashboard.charts.thinning import narrow

    steps = np.arange(1.0, 1001.0)
    assert narrow(steps).dtype == np.int32 and np.array_equal(narrow(steps), steps)
    values = np.array([0.123456789, np.nan, np.inf, -3.5e10, 0.0, 2.0])
    narrowed = narrow(values)
    assert narrowed.dtype == np.float32
    np.testing.assert_allclose(narrowed, values, rtol=1e-7)
    assert np.isnan(narrowed[1]) and np.isinf(narrowed[2])
    for extreme in (1e40, 1e-40):
        kept = np.array([1.0, extreme])
        assert narrow(kept) is kept
    assert narrow(np.array([1.0, np.nan])).dtype == np.float32  # a gap: not int
    assert narrow(np.array([2.0**31])).dtype == np.float32
    ints = np.arange(3)
    assert narrow(ints) is ints  # not float64: left as it is


def test_a_shared_figure_is_sent_in_half_the_bytes(snap: Snapshot) -> None:
    """What snapshot_figure caches (and every watcher is sent) has narrowed arrays; drawn
    in the browser it shows the same points."""
    from dashboard.charts.thinning import wire_arrays
    from dashboard.views.display import snapshot_figure

    wide = grad_norm_figure(snap.steps, snap.events)
    fig = snapshot_figure(snap, "test-wire", lambda: grad_norm_figure(snap.steps, snap.events))
    assert [t.name for t in fig.data] == [t.name for t in wide.data]
    for narrow_trace, trace in zip(fig.data, wide.data, strict=True):
        assert narrow_trace.x.dtype in (np.int32, np.float32)
        assert narrow_trace.y.dtype in (np.int32, np.float32)
        np.testing.assert_array_equal(narrow_trace.x, trace.x)
        np.testing.assert_allclose(narrow_trace.y, trace.y, rtol=1e-6)
    big = go.Figure(
        go.Scatter(x=np.arange(1.0, 1001.0), y=np.linspace(0.1, 3.0, 1000)),
        layout=dict(template="none"),  # the bytes are the data's
    )
    before = len(pio.to_json(big, validate=False))
    assert len(pio.to_json(wire_arrays(big), validate=False)) < 0.6 * before
    heat = wire_arrays(go.Figure(go.Heatmap(z=np.random.default_rng(0).normal(size=(4, 5)))))
    assert heat.data[0].z.dtype == np.float32


def test_gate_heatmap_character_labels_fit_half_a_page() -> None:
    """Every character of a 60-character probe keeps its label, in a font small enough that
    the labels do not overlap in one of two side-by-side charts at 1400 px (overlapping
    labels made plotly several times slower to draw the heatmap: benchmarks/README.md)."""
    text = "the time traveller for so it will be convenient to speak of "
    assert len(text) == 60
    values = np.random.default_rng(0).uniform(0, 1, (len(text), 256))
    fig = gate_heatmap_figure(values, text, "Z")
    axis = fig.layout.xaxis
    assert list(axis.ticktext) == [c if c != " " else "␣" for c in text]
    assert list(axis.tickvals) == list(range(60))
    plot_px = 1400 / 2 - 2.5 * 16 - fig.layout.margin.l - fig.layout.margin.r - 80  # colorbar
    glyph_px = 0.7 * axis.tickfont.size  # a wide lowercase glyph of a sans font
    assert glyph_px < plot_px / len(text)
