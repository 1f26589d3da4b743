"""The trainability map's figures: empty, partial, all diverged, NaN; axes, colours, text,
hover, customdata for clicks, the colour bar's ticks and the sparkline."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.charts.map import clicked_cell, map_figure, sparkline_text
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
    bar = heat.colorbar
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
