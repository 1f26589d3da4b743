"""The trainability map's figures: empty, partial, all diverged, NaN; axes, colours, text,
hover, customdata for clicks, the colour bar's ticks, one colour scale for maps side by side,
categories outside it, the theory's edge of chaos, and the sparkline."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.colors import sample_colorscale

from dashboard.charts.map import (
    COLORSCALE,
    EDGE_NAME,
    clicked_cell,
    map_figure,
    maps_figure,
    std_position,
)
from dashboard.charts.map_cells import sparkline_text
from gru_core.config import TrainConfig
from gru_core.sweep.results import CellResult
from gru_core.sweep.spec import SweepSpec

SPEC = SweepSpec("init_std", (0.01, 0.1, 1.0), "clip_threshold", (1.0, None))


def run(x: float, y: float | None, seed: int = 0, model: str = "gru", **kw: object) -> CellResult:
    return CellResult(model, x, y, seed, x, y, 1.0, 35, 32, **kw)  # type: ignore[arg-type]


def learned(x: float, y: float | None, ppl: float, **kw: object) -> CellResult:
    return run(x, y, status="done", verdict="learned", final_val_perplexity=ppl,
               final_train_perplexity=ppl * 0.9, best_val_perplexity=ppl, steps=80, epochs=10,
               max_grad_norm=3.5, clipped_share=0.25, steps_to_target=40,
               curve_steps=(1.0, 20.0, 40.0), curve_perplexity=(27.0, 12.0, ppl), **kw)  # fmt: skip


def diverged(x: float, y: float | None, step: int = 12, seed: int = 0) -> CellResult:
    return run(x, y, seed, status="diverged", verdict="diverged", diverged_step=step,
               steps=step - 1, curve_steps=(1.0,), curve_perplexity=(28.0,))  # fmt: skip


def trace(fig: go.Figure, name: str) -> go.Heatmap:
    (found,) = [t for t in fig.data if t.type == "heatmap" and t.name == name]
    return found


def texts(fig: go.Figure) -> set[str]:
    out: set[str] = set()
    for t in fig.data:
        if t.type == "heatmap" and t.text is not None:
            out |= {str(v) for v in np.asarray(t.text, dtype=object).ravel() if v}
    return out


def test_no_runs_is_a_placeholder() -> None:
    fig = map_figure([], SPEC, "gru")
    assert not fig.data and "No runs yet" in fig.layout.annotations[0].text


def test_a_full_map_is_coloured_by_log_perplexity_with_readable_ticks() -> None:
    ppl = {(0.01, 1.0): 5.0, (0.1, 1.0): 8.0, (1.0, 1.0): 40.0,
           (0.01, None): 5.5, (0.1, None): 9.0, (1.0, None): 200.0}  # fmt: skip
    fig = map_figure([learned(x, y, p) for (x, y), p in ppl.items()], SPEC, "gru")
    heat = trace(fig, "perplexity")
    z = np.asarray(heat.z, dtype=np.float64)
    assert z.shape == (2, 3) and np.isfinite(z).all()
    assert z[0, 0] == pytest.approx(math.log10(5.0)) and z[1, 2] == pytest.approx(math.log10(200.0))
    assert list(fig.layout.xaxis.ticktext) == ["0.01", "0.1", "1"]
    assert list(fig.layout.yaxis.ticktext) == ["1", "off"]
    assert fig.layout.xaxis.title.text == "init std" and fig.layout.yaxis.title.text == "clip θ"
    assert heat.coloraxis == "coloraxis" and fig.layout.coloraxis.showscale
    bar = fig.layout.coloraxis.colorbar
    assert list(bar.ticktext) and all("e" not in t for t in bar.ticktext)  # '5', '10', '100'
    assert [10**v for v in bar.tickvals] == pytest.approx([float(t) for t in bar.ticktext])
    assert {"5", "200", "40"} <= texts(fig)
    hover = np.asarray(heat.hovertext, dtype=object)[0, 0]
    for part in ("init std 0.01", "clip θ 1", "val perplexity 5", "max grad norm 3.5",
                 "clipped 25%", "steps to target 40", "perplexity █▅▁"):  # fmt: skip
        assert part in hover, part


def test_customdata_maps_a_click_back_to_the_cell() -> None:
    fig = map_figure([learned(0.1, None, 7.0)], SPEC, "gru")
    custom = np.asarray(trace(fig, "perplexity").customdata, dtype=object)
    assert custom.shape == (2, 3, 3)
    assert list(custom[1, 1]) == [0.1, None, "gru"]
    assert clicked_cell(custom[1, 1]) == (0.1, None, "gru")
    assert clicked_cell([1, 1.0, "gru"]) == (1.0, 1.0, "gru")


def test_a_partial_map_shows_unfinished_cells_empty() -> None:
    results = [learned(0.01, 1.0, 5.0), run(0.1, 1.0, status="running", steps=30)]
    fig = map_figure(results, SPEC, "gru")
    z = np.asarray(trace(fig, "perplexity").z, dtype=np.float64)
    assert np.isfinite(z).sum() == 1
    pending = np.asarray(trace(fig, "not finished").z, dtype=np.float64)
    assert np.isfinite(pending).sum() == 5  # one running, four not started
    assert "…" in texts(fig)
    hover = np.asarray(trace(fig, "not finished").hovertext, dtype=object)
    assert "not started" in hover[1, 2] and "training…" in hover[0, 1]


def test_an_all_diverged_map_draws_every_cell_apart() -> None:
    results = [diverged(x, y, step=1 + i) for i, (x, y) in
               enumerate((x, y) for y in SPEC.y_values for x in SPEC.x_values)]  # fmt: skip
    fig = map_figure(results, SPEC, "gru")
    assert not np.isfinite(np.asarray(trace(fig, "perplexity").z, dtype=np.float64)).any()
    apart = np.asarray(trace(fig, "diverged (NaN/inf)").z, dtype=np.float64)
    assert np.isfinite(apart).all()
    assert "diverged @ step 1" in texts(fig) and "diverged @ step 6" in texts(fig)
    shown = {t.name for t in fig.data if t.type == "scatter" and t.showlegend}
    assert shown == {"diverged (NaN/inf)"}


def test_blown_up_and_seed_mixes_are_told_apart() -> None:
    blew = run(1.0, None, status="done", verdict="blew up", final_val_perplexity=3e7,
               max_grad_norm=1e9)  # fmt: skip
    mixed = [learned(0.1, 1.0, 6.0), diverged(0.1, 1.0, step=30, seed=1)]
    fig = map_figure([blew, *mixed], SPEC, "gru")
    assert "blew up" in texts(fig)
    assert "diverged @ step 30<br>1/2 seeds" in texts(fig)
    hover = np.asarray(trace(fig, "diverged (NaN/inf)").hovertext, dtype=object)[0, 1]
    assert "seed 0" in hover and "seed 1" in hover and "diverged at step 30" in hover


def test_nan_perplexities_do_not_break_the_map() -> None:
    nan = run(0.01, 1.0, status="done", verdict="learned", final_val_perplexity=math.nan,
              final_train_perplexity=math.nan, curve_steps=(1.0, 2.0),
              curve_perplexity=(math.nan, math.inf))  # fmt: skip
    fig = map_figure([nan, learned(0.1, 1.0, 4.0)], SPEC, "gru")
    assert np.isfinite(np.asarray(trace(fig, "perplexity").z, dtype=np.float64)).sum() == 1
    other = np.asarray(trace(fig, "stopped / no number").z, dtype=np.float64)
    assert np.isfinite(other[0, 0])
    fig.to_json()  # serialisable as Streamlit sends it
    assert sparkline_text([math.nan, math.inf]) == ""


def test_only_the_asked_models_runs_are_drawn() -> None:
    spec = SweepSpec("init_std", (0.01,), "lr", (1.0,), models=("gru", "rnn"))
    results = [learned(0.01, 1.0, 5.0), run(0.01, 1.0, model="rnn")]
    gru = map_figure(results, spec, "gru")
    rnn = map_figure(results, spec, "rnn")
    assert texts(gru) == {"5"} and texts(rnn) == {"…"}
    assert "RNN" in rnn.layout.title.text


def test_sparkline_text() -> None:
    assert sparkline_text([100.0, 10.0, 1.0]) == "█▅▁"
    assert sparkline_text([3.0, 3.0]) == "▁▁"
    assert len(sparkline_text([float(v) for v in range(1, 500)], width=24)) == 24


def colour_of(fig: go.Figure, z: float) -> str:
    """The colour the figure's one colour axis gives log10 perplexity ``z``."""
    axis = fig.layout.coloraxis
    return sample_colorscale(COLORSCALE, [(z - axis.cmin) / (axis.cmax - axis.cmin)])[0]


def test_maps_side_by_side_share_one_colour_scale() -> None:
    """Issue 18: the same 22.2 was dark purple on the GRU map and bright yellow on the RNN's."""
    spec = SweepSpec("lr", (1.0, 10.0), "clip_threshold", (1.0, None), models=("gru", "rnn"))
    gru = [learned(1.0, 1.0, 22.2), learned(10.0, 1.0, 5000.0), learned(1.0, None, 20.0)]
    rnn = [learned(1.0, 1.0, 22.2, model="rnn"), learned(10.0, 1.0, 12.0, model="rnn")]
    fig = maps_figure([*gru, *rnn], spec)
    values = [t for t in fig.data if t.type == "heatmap" and t.name == "perplexity"]
    assert [t.meta for t in values] == ["gru", "rnn"]
    assert {t.coloraxis for t in values} == {"coloraxis"}  # one scale, one colour bar
    assert not any(t.showscale for t in fig.data if t.type == "heatmap")
    axis = fig.layout.coloraxis
    assert axis.showscale and "coloraxis2" not in fig.layout.to_plotly_json()
    assert axis.cmin == pytest.approx(math.log10(12.0))
    assert axis.cmax == pytest.approx(math.log10(5000.0))
    z_gru, z_rnn = (np.asarray(t.z, dtype=np.float64) for t in values)
    assert z_gru[0, 0] == z_rnn[0, 0] == pytest.approx(math.log10(22.2))
    assert colour_of(fig, z_gru[0, 0]) == colour_of(fig, z_rnn[0, 0])
    assert colour_of(fig, z_rnn[0, 1]) != colour_of(fig, z_gru[0, 1])  # 12 vs 5000
    assert values[0].xaxis == "x" and values[1].xaxis == "x2"
    assert [a.text for a in fig.layout.annotations] == ["GRU", "RNN"]
    hover = [t for t in fig.data if t.type == "scatter" and t.name == "cells"]
    assert [list(h.customdata[0]) for h in hover] == [[1.0, 1.0, "gru"], [1.0, 1.0, "rnn"]]


def test_categories_sit_outside_the_scale_with_a_legend_and_a_word() -> None:
    memorised = run(0.01, 1.0, status="done", verdict="memorised", final_val_perplexity=77.4)
    unknown = run(0.1, 1.0, status="done", verdict="overfit", final_val_perplexity=30.0)
    fig = map_figure([memorised, unknown, learned(1.0, 1.0, 5.0)], SPEC, "gru")
    z = np.asarray(trace(fig, "perplexity").z, dtype=np.float64)
    assert np.isfinite(z).sum() == 1  # only the learned cell is on the scale
    cat = np.asarray(trace(fig, "memorised (worse on new text)").z, dtype=np.float64)
    assert np.isfinite(cat[0, 0]) and np.isfinite(cat).sum() == 1
    assert "memorised<br>77.4" in texts(fig) and "overfit<br>30" in texts(fig)
    legend = {t.name: t.marker.color for t in fig.data if t.type == "scatter" and t.showlegend}
    assert set(legend) == {"memorised (worse on new text)", "overfit", "not finished"}
    assert len(set(legend.values())) == 3


def test_lambda_in_the_hover_and_the_edge_of_chaos_drawn_per_model() -> None:
    base = TrainConfig(hidden_size=32)  # the runs' hidden size
    spec = SweepSpec("init_std", (0.01, 0.1, 1.0), "lr", (1.0,), base, models=("gru", "rnn"))
    results = [learned(0.01, 1.0, 5.0, lyapunov=-4.6), learned(0.1, 1.0, 6.0, lyapunov=0.25)]
    edges = {("gru", 32): 0.1 * 10**0.5, ("rnn", 32): 5.0}  # the rnn's is off the map
    fig = maps_figure(results, spec, edges=edges)
    hover = np.asarray(trace_of(fig, "cells", "gru").hovertext, dtype=object)
    assert "λ = -4.6 per step (theory, at initialisation: signals shrink)" in hover[0]
    assert "λ = +0.25 per step" in hover[1] and "signals grow" in hover[1]
    (black,) = [t for t in fig.data if t.name == EDGE_NAME and t.showlegend]
    assert black.meta == "gru" and list(black.x[:2]) == pytest.approx([1.5, 1.5])
    assert list(black.y[:2]) == [-0.5, 0.5]
    assert not [t for t in fig.data if t.name == EDGE_NAME and t.meta == "rnn"]


def test_the_edge_follows_the_hidden_size_when_it_is_the_other_axis() -> None:
    spec = SweepSpec("hidden_size", (32, 256), "init_std", (0.01, 0.1, 1.0))
    results = [run(32, 0.01, status="running"), run(256, 0.1, status="running")]
    edges = {("gru", 32): 0.1, ("gru", 256): 0.01}
    fig = maps_figure(results, spec, edges=edges)
    lines = [t for t in fig.data if t.name == EDGE_NAME]
    assert len(lines) == 2  # a white halo under the black dashes
    line = lines[-1]
    assert list(line.x) == [-0.5, 0.5, None, 0.5, 1.5, None]
    assert list(line.y) == [1.0, 1.0, None, 0.0, 0.0, None]
    assert maps_figure(results, SweepSpec("lr", (1.0,), "clip_threshold", (1.0,)),
                       edges=edges).data  # fmt: skip


def test_std_position_interpolates_in_log_space() -> None:
    values = (0.001, 0.01, 0.1, 1.0)
    assert std_position(values, 0.01) == pytest.approx(1.0)
    assert std_position(values, 0.01 * 10**0.5) == pytest.approx(1.5)
    assert std_position(values, 3.0) == pytest.approx(3 + math.log10(3))
    assert std_position(values, 10.0) is None and std_position(values, 1e-4) is None
    assert std_position((0.1, 0.01), 0.05) is None  # not ascending: no place for a line


def test_a_click_on_an_integer_axis_gives_an_integer() -> None:
    spec = SweepSpec("num_steps", (35, 70), "hidden_size", (32, 64))
    x, y, model = clicked_cell([70.0, 32.0, "rnn"], spec)
    assert (x, y, model) == (70, 32, "rnn") and type(x) is int and type(y) is int


def trace_of(fig: go.Figure, name: str, model: str) -> go.Scatter:
    (found,) = [t for t in fig.data if t.name == name and t.meta == model]
    return found
