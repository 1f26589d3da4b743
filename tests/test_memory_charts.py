"""The memory view's pure figure builders: colours, escaping, hovers, empty/NaN/long/non-ASCII
input, the connectivity bars' log axis and reach mark, and one real analysis end to end."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from dashboard.charts.base import GREY
from dashboard.charts.flow import FLOOR, FLOOR_LABEL
from dashboard.charts.memory import (
    connectivity_compare_figure,
    connectivity_figure,
    diverging_colour,
    unit_blocks_html,
    unit_ranking_figure,
    unit_text_html,
)
from dashboard.charts.thinning import MAX_POINTS
from gru_core.data import Vocab
from gru_core.memory import analyse, pattern_mask, rank_units
from gru_core.model.cells import GRUScratch

TEXT = "the time traveller"


def check_figure(fig: go.Figure) -> None:
    """The shared look (title, template, legend, uirevision, responsive) and bounded numpy data."""
    assert isinstance(fig, go.Figure) and fig.layout.title.text
    assert fig.layout.template == pio.templates["plotly_white"]
    assert fig.layout.uirevision is not None and fig.layout.width is None
    if fig.layout.xaxis.visible is not False:
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    for trace in fig.data:
        for name in ("x", "y"):
            values = getattr(trace, name, None)
            if values is not None:
                assert isinstance(values, np.ndarray) and len(values) <= MAX_POINTS
    fig.to_json()


def top5(T: int) -> tuple[np.ndarray, np.ndarray]:
    chars = np.array([["e", " ", "<unk>", "a", "t"]] * T, dtype=object)
    probs = np.tile([0.4, 0.2, 0.1, 0.05, 0.01], (T, 1))
    return chars, probs


# -- the coloured passage ----------------------------------------------------------------------


def test_diverging_colour() -> None:
    assert diverging_colour(0.0) == ("rgb(255,255,255)", "#111111")
    assert diverging_colour(1.0) == ("rgb(178,24,43)", "#ffffff")  # red, white text
    assert diverging_colour(-1.0) == ("rgb(33,102,172)", "#ffffff")  # blue
    assert diverging_colour(7.0) == diverging_colour(1.0)  # clipped
    assert diverging_colour(-0.3)[1] == "#111111"
    assert diverging_colour(float("nan"))[0] == "#dddddd"


def test_unit_text_html_shades_escapes_and_hovers() -> None:
    text = "a<b & \"c'"
    values = np.array([-1.0, 1.0, 0.0, 0.2, 0.9, np.nan, -0.6, 0.1, 0.0])
    chars, probs = top5(len(text))
    out = unit_text_html(text, values, chars, probs, header="unit 3 <x>")
    assert "&lt;" in out and "&amp;" in out and "<b" not in out and "<x>" not in out
    assert "unit 3 &lt;x&gt;" in out
    assert out.count("<span") >= len(text) and "␣" in out
    assert "rgb(33,102,172)" in out and "rgb(178,24,43)" in out and "#dddddd" in out
    titles = re.findall(r'title="([^"]*)"', out)
    assert len(titles) == len(text)
    assert "h = -1.000" in titles[0] and "next: e 0.40, ␣ 0.20, &lt;unk&gt; 0.10" in titles[0]
    assert "h = n/a" in titles[5]
    m = re.search(r"font-size:([\d.]+)em", out)
    assert m and float(m.group(1)) >= 1.1
    assert "word-break:break-all" in out and "−1" in out and "+1" in out  # wraps; legend
    assert "title=" in unit_text_html("ab", np.zeros(2))  # hover without top-5 too
    with pytest.raises(ValueError, match="values"):
        unit_text_html("abc", np.zeros(2))
    with pytest.raises(ValueError, match="top-k"):
        unit_text_html("abc", np.zeros(3), *top5(2))


def test_unit_text_html_empty_long_and_non_ascii() -> None:
    assert "No text to show" in unit_text_html("", np.zeros(0))
    long = ("the time traveller " * 30)[:500]
    out = unit_text_html(long, np.linspace(-2, 2, 500), *top5(500))
    assert out.count("<span") >= 500
    odd = "héllo 世界 ☃\n\t"
    out = unit_text_html(odd, np.zeros(len(odd)))
    assert "世" in out and "☃" in out and "↵" in out and "⇥" in out


def test_unit_blocks_html() -> None:
    acts = np.random.default_rng(0).uniform(-1, 1, (len(TEXT), 20))
    ranked = [(17, 0.62), (2, -0.5), (4, float("nan"))] + [(u, 0.1) for u in range(8)]
    blocks = unit_blocks_html(TEXT, acts, ranked, *top5(len(TEXT)))
    assert len(blocks) == 8
    assert "unit 17 · r = +0.62" in blocks[0] and "unit 2 · r = -0.50" in blocks[1]
    assert "r = n/a" in blocks[2]
    assert sum("−1" in b for b in blocks) == 1 and "−1" in blocks[-1]  # one legend, at the end
    assert unit_blocks_html(TEXT, acts, []) == []
    with pytest.raises(ValueError, match="outside"):
        unit_blocks_html(TEXT, acts, [(20, 0.5)])
    with pytest.raises(ValueError, match="do not match"):
        unit_blocks_html("ab", acts, [(1, 0.5)])


def test_unit_ranking_figure() -> None:
    fig = unit_ranking_figure([(17, 0.62), (3, -0.4), (5, float("nan"))], "vowels <i>")
    check_figure(fig)
    assert "vowels <i>" in fig.layout.title.text
    assert list(fig.data[0].x) == [0.62, -0.4, 0.0] and tuple(fig.layout.xaxis.range) == (-1, 1)
    assert list(fig.layout.yaxis.ticktext) == ["unit 17", "unit 3", "unit 5"]
    check_figure(unit_ranking_figure([], "vowels"))


# -- connectivity ------------------------------------------------------------------------------


def test_connectivity_figure() -> None:
    conn = np.array([1e-5, 0.0, np.nan, 1e-3, 0.02, 0.1, 0.5, 0.3])
    fig = connectivity_figure(TEXT, conn, target_next="e", reach=3)
    check_figure(fig)
    bars = fig.data[0]
    assert fig.layout.yaxis.type == "log" and len(bars.x) == 8
    # what underflows (0) is drawn at the floor, grey and labelled; NaN is left out
    assert bars.y[1] == FLOOR and np.isnan(bars.y[2])
    assert bars.customdata[1][2] == FLOOR_LABEL and bars.marker.color[1] == GREY
    assert bars.marker.color[-1] != bars.marker.color[0]  # the target stands out
    assert list(fig.layout.xaxis.ticktext[:4]) == ["t", "h", "e", "␣"]
    assert fig.layout.yaxis.tickvals is not None  # full-number log ticks
    floor_line, band = fig.layout.shapes
    assert (band.x0, band.x1) == (4.5, 7.5) and floor_line.y0 == FLOOR
    texts = [a.text for a in fig.layout.annotations]
    assert texts == [FLOOR_LABEL, "90% within 3 characters"]
    assert "“e”" in fig.layout.title.text


def test_connectivity_figure_edge_cases() -> None:
    check_figure(connectivity_figure(TEXT, np.zeros(0)))
    check_figure(connectivity_figure(TEXT, np.zeros(4)))  # nothing positive: a message
    check_figure(connectivity_figure(TEXT, np.full(4, np.nan)))
    fig = connectivity_figure("x<é", np.array([0.1, 0.2, 0.3]), "<unk>", reach=1)
    check_figure(fig)
    assert fig.layout.annotations[0].text == "90% within 1 character"
    long = ("the time traveller " * 30)[:500]
    fig = connectivity_figure(long, np.exp(-np.arange(500)[::-1] / 50.0), "e", reach=120)
    check_figure(fig)
    assert len(fig.data[0].x) == 500 and len(fig.layout.xaxis.tickvals) <= 80
    with pytest.raises(ValueError, match="characters"):
        connectivity_figure("ab", np.ones(3))


def test_connectivity_compare_figure() -> None:
    gru = np.array([0.1, 0.2, 0.3, 0.4])
    rnn = np.array([0.0, 0.0, 1.0, 3.0])
    fig = connectivity_compare_figure({"GRU": gru, "RNN": rnn, "empty": np.zeros(3)})
    check_figure(fig)
    names = [t.name for t in fig.data]
    assert names == ["GRU", "RNN", f"RNN: {FLOOR_LABEL}"] and fig.layout.yaxis.type == "log"
    assert fig.data[0].y.sum() == pytest.approx(1.0) and fig.data[1].y.sum() == pytest.approx(1.0)
    assert fig.data[0].x[0] == 0 and fig.data[0].y[0] == pytest.approx(0.4)  # 0 back = t
    # the RNN's two zeros (2 and 3 back) sit at the labelled floor, on one shared x axis
    assert list(fig.data[2].x) == [2, 3] and list(fig.data[2].y) == [FLOOR, FLOOR]
    assert tuple(fig.layout.xaxis.range) == (-0.5, 3.5)
    assert any(a.text == FLOOR_LABEL for a in fig.layout.annotations)
    check_figure(connectivity_compare_figure({}))
    check_figure(connectivity_compare_figure({"nan": np.array([np.nan])}))


def test_a_real_analysis_end_to_end() -> None:
    vocab = Vocab("the time traveller for so it will be convenient to speak of him")
    model = GRUScratch(len(vocab), 16, init_std=0.3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    a = analyse(model, vocab, "The Time Traveller (for so it will be convenient...)", 10)
    ranked = rank_units(a.activations, pattern_mask(a.text_seen, "vowels"))
    blocks = unit_blocks_html(a.text_seen, a.activations, ranked, a.top_chars, a.top_probs)
    assert len(blocks) == 8 and all(b.count("<span") >= len(a.text_seen) for b in blocks)
    check_figure(unit_ranking_figure(ranked, "vowels"))
    check_figure(connectivity_figure(a.text_seen, a.connectivity, a.target_next, a.reach))
