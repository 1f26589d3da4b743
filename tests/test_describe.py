"""Every chart's text alternative (``charts/describe.py``): the right numbers from crafted
data, the right words in English and in 简体中文, and every chart on the page given one."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.charts import describe
from dashboard.charts.base import empty_figure
from dashboard.charts.training import perplexity_figure
from dashboard.views.display import alt_html
from gru_core.i18n import language_scope
from gru_core.step.stats import (
    CLIP_THRESHOLD,
    CLIPPED,
    GRAD_NORM,
    PERPLEXITY,
    STEP,
    gate_column,
    group_column,
)
from gru_core.sweep.results import CellResult
from gru_core.sweep.spec import SweepSpec

REPO = Path(__file__).resolve().parents[1]


def _steps() -> pd.DataFrame:
    n = 3640
    step = np.arange(1, n + 1)
    ppl = np.geomspace(28.1, 1.05, n)
    norm = np.full(n, 0.5)
    norm[11] = 1.2e3  # the peak, at step 12
    norm[100:110] = 2.0  # over θ = 1 as well: 11 of 3640 steps clipped
    return pd.DataFrame(
        {
            STEP: step,
            PERPLEXITY: ppl,
            GRAD_NORM: norm,
            CLIP_THRESHOLD: np.full(n, 1.0),
            CLIPPED: norm > 1.0,
            gate_column("Z", "p50"): np.linspace(0.5, 0.31, n),
            gate_column("Z", "sat"): np.linspace(0.0, 0.12, n),
            group_column("recurrent weights"): np.full(n, 3.0),
            group_column("biases"): np.full(n, 0.02),
        }
    )


def _epochs() -> pd.DataFrame:
    return pd.DataFrame({STEP: [1820, 3640], "val_perplexity": [90.0, 77.2]})


def test_perplexity_in_english_and_chinese() -> None:
    assert describe.perplexity(_steps(), _epochs()) == (
        "Perplexity fell from 28.1 to 1.05 over 3,640 steps. "
        "Validation perplexity 77.2 at the last epoch."
    )
    with language_scope("zh_CN"):
        assert describe.perplexity(_steps(), _epochs()) == (
            "困惑度在 3,640 步中从 28.1 下降到 1.05。最后一个迭代周期的验证集困惑度为 77.2。"
        )
    rising = pd.DataFrame({STEP: [1], PERPLEXITY: [3.0]})
    assert describe.perplexity(rising, pd.DataFrame()) == (
        "Perplexity stayed from 3 to 3 over 1 step."
    )
    assert describe.perplexity(pd.DataFrame(), pd.DataFrame()) == "Perplexity: no steps yet."


def test_grad_norm_peak_threshold_and_clipped_share() -> None:
    text = describe.grad_norm(_steps())
    assert text == (
        "Gradient norm before clipping peaked at 1.2e+03 at step 12; last 0.5. "
        "θ = 1: 0% of steps clipped."
    )
    with language_scope("zh_CN"):
        zh = describe.grad_norm(_steps())
    assert zh == (
        "梯度裁剪前的梯度范数在第 12 步达到峰值 1.2e+03；最后为 0.5。"
        "阈值 θ = 1：0% 的训练步被裁剪。"
    )
    off = _steps().assign(**{CLIP_THRESHOLD: np.nan})
    assert describe.grad_norm(off).endswith("last 0.5. Clipping off.")


def test_clipped_share_counts_the_clipped_steps() -> None:
    steps = _steps()
    steps.loc[: len(steps) // 2, CLIPPED] = True  # half the steps
    assert describe.grad_norm(steps).endswith("θ = 1: 50% of steps clipped.")


def test_gate_bands_and_parameter_groups() -> None:
    text = describe.gate_bands(_steps(), "Z")
    assert "median 0.5 at step 1, 0.31 at step 3,640." in text
    assert text.endswith("12% of its values saturated at the last step.")
    with language_scope("zh_CN"):
        assert "中位数在第 1 步为 0.5，在第 3,640 步为 0.31。" in describe.gate_bands(_steps(), "Z")
    assert describe.param_groups(_steps()) == (
        "Gradient norm per parameter group at the last step: largest recurrent weights (3), "
        "smallest biases (0.02)."
    )
    assert describe.gate_bands(pd.DataFrame(), "Z").endswith(": no statistics yet.")


def _run(x: float, y: float, verdict: str, val: float | None, **kw: object) -> CellResult:
    return CellResult(  # init std on x, θ on y
        "gru", x, y, 0, x, y, 1.0, 35, 32, status="done", verdict=verdict,
        final_val_perplexity=val, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_map_counts_learned_and_diverged_and_names_the_best_cell() -> None:
    spec = SweepSpec(x_axis="init_std", y_axis="clip_threshold")
    results = [
        _run(0.01, 1.0, "learned", 4.1),
        _run(0.1, 1.0, "learned", 6.0),
        _run(1.0, 1.0, "did not learn", 20.0),
        _run(10.0, 1.0, "diverged", None, diverged_step=12),
        CellResult("gru", 0.01, 5.0, 0, 0.01, 5.0, 1.0, 35, 32),  # not finished
    ]
    text = describe.map_summary(results, spec)
    assert text == (
        "2 of 4 finished runs learned; 1 diverged. "
        "Best validation perplexity 4.1: GRU, init std 0.01, clip θ 1."
    )
    with language_scope("zh_CN"):
        assert describe.map_summary(results, spec).startswith(
            "4 次完成的运行中 2 次学会了；1 次发散。最佳验证集困惑度 4.1：GRU，"
        )
    assert describe.map_summary(results[-1:], spec) == "Trainability map: no run finished yet."


def test_generic_lines_bars_heatmap_and_placeholder() -> None:
    fig = perplexity_figure(_steps(), _epochs())
    text = describe.lines(fig)
    assert text.startswith("Perplexity: batch perplexity from 28.1 to 1.05")
    assert "validation (per epoch) from 90 to 77.2 (lowest 77.2, highest 90)" in text
    bars = go.Figure(go.Bar(x=[3, -9, 1], y=["a", "b", "c"], orientation="h"))
    bars.update_layout(title_text="Reach")
    assert describe.bars(bars) == "Reach: 3 bars; the largest b: -9."
    heat = go.Figure(go.Heatmap(z=[[0.0, 0.5], [1.0, np.nan], [0.2, 0.3]]))
    heat.update_layout(title_text="Gate Z")
    assert describe.heatmap(heat) == ("Gate Z: heatmap of 3 rows by 2 columns, values from 0 to 1.")
    with language_scope("zh_CN"):
        assert describe.heatmap(heat) == "Gate Z：3 行 × 2 列的热图，数值从 0 到 1。"
    placeholder = empty_figure("Perplexity", "Press Start.")
    assert describe.lines(placeholder) == "Perplexity: Press Start."


def test_the_alternative_is_escaped_and_labelled() -> None:
    assert alt_html("a < b") == '<p class="gru-alt">Chart: a &lt; b</p>'
    with language_scope("zh_CN"):
        assert alt_html("x") == '<p class="gru-alt">图表：x</p>'


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "dashboard").rglob("*.py")),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_every_chart_call_passes_its_text_alternative(path: Path) -> None:
    """Every ``chart(...)`` call in the dashboard names ``alt=`` (a string or a describer)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    missing = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "chart"
        and not any(k.arg == "alt" for k in node.keywords)
    ]
    assert not missing, f"{path.relative_to(REPO)}: chart() without alt= on lines {missing}"
