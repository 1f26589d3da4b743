"""Through time that compares (issue 18): the x axis is always 1..T, what underflows is drawn
at a labelled floor (and the heatmap's underflow has the floor's colour), saved runs overlay
on shared axes, and the reach is one number per run."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from dashboard.charts.flow import (
    FLOOR,
    FLOOR_LABEL,
    at_floor,
    flow_reach_figure,
    grad_flow_heatmap_figure,
    reach_figure,
    reach_overlay_figure,
    reach_steps,
)
from dashboard.screens.resources import _initial_lambda, initial_lambda
from dashboard.views.cells import lambda_sentence, reach_numbers
from gru_core.config import TrainConfig
from gru_core.data import Corpus, Vocab

T = 35


def vanishing(rate: float, T: int = T, underflow_below: int = 0) -> np.ndarray:
    """||dl_T/dH_t|| falling by ``rate`` per step back, 0 (float32 underflow) for t <= k."""
    flow = rate ** (T - np.arange(1, T + 1, dtype=np.float64))
    flow[:underflow_below] = 0.0
    return flow


def test_underflow_is_drawn_at_the_floor_on_the_whole_window() -> None:
    """The issue's GRU (line from t≈48) and RNN (from t≈90) looked alike: not any more."""
    gru, rnn = vanishing(0.5, 140, underflow_below=47), vanishing(0.3, 140, underflow_below=89)
    for flow, hidden in ((gru, 47), (rnn, 89)):
        fig = flow_reach_figure(flow, flow, step=10)
        line, floor = fig.data[0], fig.data[1]
        assert list(line.x) == list(range(1, 141))  # every t, none left blank
        assert min(line.y) == FLOOR and FLOOR_LABEL in floor.name
        assert list(floor.x) == list(range(1, hidden + 1)) and set(floor.y) == {FLOOR}
        assert floor.marker.symbol == "triangle-down"  # marked, not colour alone
        assert list(fig.layout.xaxis.range) == [0.5, 140.5]
        assert any(s.y0 == FLOOR for s in fig.layout.shapes)  # the floor line, labelled
        (label,) = [a for a in fig.layout.annotations if a.text == FLOOR_LABEL]
        assert label.y == -30 and label.yref == "y"  # log axis: placed by log10, at the floor


def test_nothing_below_the_floor_draws_no_floor_but_keeps_the_axis() -> None:
    fig = flow_reach_figure(vanishing(0.9), vanishing(0.9), step=3)
    assert len(fig.data) == 2 and not fig.layout.shapes
    assert list(fig.layout.xaxis.range) == [0.5, T + 0.5]


def test_at_floor_keeps_nan_and_inf() -> None:
    drawn, below = at_floor(np.array([0.0, 1e-40, np.nan, np.inf, 0.5]))
    assert list(below) == [True, True, False, False, False]
    assert drawn[0] == drawn[1] == FLOOR and np.isnan(drawn[2]) and drawn[3] == np.inf


def test_the_heatmaps_underflow_has_the_floors_colour() -> None:
    flow = np.vstack([vanishing(0.5, underflow_below=10), vanishing(0.9)])
    fig = grad_flow_heatmap_figure(np.array([1, 11]), flow)
    heat = fig.data[0]
    z = np.asarray(heat.z, dtype=np.float64)
    assert np.isfinite(z).all()  # no blank cells
    assert z[0, :10] == pytest.approx([-30.0] * 10) and heat.zmin == -30.0
    assert heat.colorbar.ticktext[0] == FLOOR_LABEL and heat.colorbar.tickvals[0] == -30.0
    assert list(heat.x) == list(range(1, T + 1))
    assert list(fig.layout.xaxis.range) == [0.5, T + 0.5]


def test_reach_counts_steps_back_above_one_thousandth() -> None:
    assert reach_steps(np.array([1e-5, 1e-4, 2e-3, 0.1, 1.0])) == 2
    assert reach_steps(np.array([0.5, 0.7, 1.0])) == 2  # the whole window
    assert reach_steps(np.array([0.0, 0.0, 1.0])) == 0
    assert reach_steps(np.array([np.nan, np.nan])) is None
    text = reach_numbers(vanishing(0.5, underflow_below=5))
    assert "at t = 1 it is below 1e-30 of its value" in text and "it is 0 of" not in text
    assert "(34 steps back)" in text and "above 0.001 for 9 of them" in text


def test_saved_runs_overlay_on_shared_axes_and_compare_by_reach() -> None:
    runs = {"#1 GRU": vanishing(0.8, 35), "#2 RNN": vanishing(0.3, 70, underflow_below=20)}
    fig = reach_overlay_figure(runs)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["#1 GRU", "#2 RNN"]
    assert list(fig.layout.xaxis.range) == [0.5, 70.5] and fig.layout.yaxis.type == "log"
    assert lines[0].y[-1] == lines[1].y[-1] == 1.0  # each normalised at its own t = T
    assert any(FLOOR_LABEL in (t.name or "") for t in fig.data)
    bars = reach_figure(runs)
    window, reach = bars.data
    assert list(reach.y) == ["#1 GRU", "#2 RNN"] and list(window.x) == [34, 69]
    assert bars.layout.yaxis.type == "category"  # run names, not a linear axis
    assert list(reach.x) == [reach_steps(vanishing(0.8, 35)), 5]  # 0.3**5 > 1e-3 > 0.3**6
    assert reach.text[0].endswith("of 34")
    assert not reach_figure({"#3": np.zeros(0)}).data
    assert not reach_overlay_figure({}).data


def test_the_labs_lambda_is_one_call_per_model_hidden_and_std(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple] = []
    fake = types.ModuleType("gru_core.theory")  # h6's signature

    def lyapunov_exponent(model, hidden_size, init_std, tokens, vocab_size, **kw):  # noqa: ANN001, ANN003, ANN202
        calls.append((model, hidden_size, init_std, len(tokens), vocab_size))
        return -0.5 if model == "gru" else 0.1

    fake.lyapunov_exponent = lyapunov_exponent  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gru_core.theory", fake)
    _initial_lambda.clear()
    corpus = Corpus(
        "text", "path", "", "text", Vocab("ab"), torch.zeros(300, dtype=torch.int64), 300
    )
    config = TrainConfig(max_tokens=100)
    for _ in range(3):
        assert initial_lambda(config, corpus) == -0.5
    assert initial_lambda(config.replace(model="rnn"), corpus) == 0.1
    assert calls == [("gru", 256, 0.01, 100, 3), ("rnn", 256, 0.01, 100, 3)]
    assert initial_lambda(None, corpus) is None
    monkeypatch.setitem(sys.modules, "gru_core.theory", types.ModuleType("gru_core.theory"))
    assert initial_lambda(config.replace(model="lstm"), corpus) is None  # no theory: no λ
    _initial_lambda.clear()
    text = lambda_sentence(-0.5)
    assert "λ = -0.50 per step" in text and "shrink" in text and "35 steps back: 2.5e-08" in text
    assert "grow" in lambda_sentence(0.1)
