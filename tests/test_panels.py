"""Figures stacked as the panels of one (dashboard/charts/panels.py), and the Gates view's
two figures built with it: every part's traces on its own panel's axes, what panels share
read once, one legend, labels above the plots."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.charts import describe
from dashboard.charts.base import apply_layout
from dashboard.charts.cells import (
    gate_bands_figure,
    gate_heatmap_figure,
    gates_bands_figure,
    gates_heatmap_figure,
)
from dashboard.charts.panels import GAP_PX, LABEL_PX, stacked
from gru_core.i18n import language_scope
from gru_core.run.records import GateStats, StepRecord
from gru_core.run.telemetry import Snapshot, Telemetry
from gru_core.step.stats import PERCENTILES

TEXT = "the time traveller"


def line(y_range: list[float] | None, name: str = "a", y_title: str = "value") -> go.Figure:
    fig = go.Figure(go.Scatter(x=np.arange(5.0), y=np.arange(5.0) * 2, name=name))
    fig.add_vline(x=2)  # a shape on the data's axes
    extra = {"yaxis": {"range": y_range}} if y_range else None
    return apply_layout(fig, f"{name} title", "step", y_title, "u", extra=extra)


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    """40 steps of a GRU's Z and R statistics."""
    tel = Telemetry()
    rng = np.random.default_rng(0)
    for step in range(1, 41):
        gates = {}
        for gate in ("Z", "R"):
            edges = tuple(float(e) for e in np.sort(rng.uniform(0, 1, len(PERCENTILES))))
            gates[gate] = GateStats(float(np.mean(edges)), edges, 0.1)
        tel.add_step(
            StepRecord(
                step=step, epoch=1, loss=2.0, perplexity=7.0, grad_norm=1.0,
                grad_norm_clipped=1.0, clipped=False, clip_threshold=1.0, lr=1.0,
                param_grad_norms={}, update_ratio=1e-3, gates=gates, tokens=32 * 35,
            )
        )  # fmt: skip
    return tel.snapshot()


def test_each_part_lies_on_its_own_panel_under_its_label() -> None:
    parts = [line([0, 10], "a"), line([0, 99], "b", "other")]
    fig = stacked(parts, "both", ["top", "bottom"], panel_px=100)
    assert fig.layout.title.text == "both"
    assert [(t.xaxis, t.yaxis) for t in fig.data] == [("x", "y"), ("x2", "y3")]
    assert fig.layout.yaxis3.anchor == "x2" and fig.layout.xaxis2.anchor == "y3"
    top, bottom = fig.layout.yaxis.domain, fig.layout.yaxis3.domain
    assert top[1] == 1 and bottom[0] == 0 and bottom[1] < top[0]
    plot_px = 2 * 100 + LABEL_PX + GAP_PX  # two panels, the second's label and a gap between
    assert top[1] - top[0] == pytest.approx(100 / plot_px)
    assert fig.layout.height == fig.layout.margin.t + plot_px + fig.layout.margin.b
    # Each keeps its own y axis; the x axes measure the same: zoom together, read at the bottom.
    assert (fig.layout.yaxis.title.text, fig.layout.yaxis3.title.text) == ("value", "other")
    assert tuple(fig.layout.yaxis3.range) == (0, 99)
    assert fig.layout.xaxis2.matches == "x" and fig.layout.xaxis.showticklabels is False
    assert fig.layout.xaxis2.title.text == "step" and not fig.layout.xaxis.title.text
    labels = [a for a in fig.layout.annotations if a.text in ("top", "bottom")]
    assert [(a.text, a.y) for a in labels] == [("top", 1), ("bottom", bottom[1])]
    assert {(s.xref, s.yref) for s in fig.layout.shapes} == {("x", "y domain"), ("x2", "y3 domain")}
    # One legend, above the first label: its entries toggle the same line in every panel.
    assert [t.showlegend for t in fig.data] == [None, False]
    assert [t.legendgroup for t in fig.data] == ["a", "b"]
    assert fig.layout.legend.y > 1 and fig.layout.legend.entrywidth is None


def test_one_part_comes_back_as_it_is_and_labels_must_match() -> None:
    only = line([0, 1])
    assert stacked([only], "t", ["l"]) is only
    with pytest.raises(ValueError, match="2 parts but 1 labels"):
        stacked([only, only], "t", ["l"])


def test_the_gates_band_charts_are_panels_of_one_with_one_saturation_axis(snap: Snapshot) -> None:
    fig = gates_bands_figure(snap.steps, ["Z", "R"])
    parts = [gate_bands_figure(snap.steps, g) for g in ("Z", "R")]
    assert len(fig.data) == sum(len(p.data) for p in parts)
    assert fig.layout.title.text == "Gates: distribution per step"
    assert {a.text for a in fig.layout.annotations} >= {"update gate Z", "reset gate R"}
    # the saturated fraction on each panel's own right-hand axis, labelled once (the last)
    saturated = [t for t in fig.data if t.name == "saturated"]
    assert [t.yaxis for t in saturated] == ["y2", "y4"]
    assert fig.layout.yaxis2.overlaying == "y" and fig.layout.yaxis4.overlaying == "y3"
    assert fig.layout.yaxis2.domain == fig.layout.yaxis.domain  # on its own panel
    assert tuple(fig.layout.yaxis3.range) == (0, 1)
    assert (fig.layout.yaxis.title.text, fig.layout.yaxis3.title.text) == ("Z value", "R value")
    for panel, part in zip(("y", "y3"), parts, strict=True):
        medians = [t for t in fig.data if t.name == "median" and t.yaxis == panel]
        np.testing.assert_array_equal(
            medians[0].y, next(t for t in part.data if t.name == "median").y
        )
    assert gates_bands_figure(snap.steps, ["Z"]).layout.title.text == parts[0].layout.title.text
    with language_scope("zh_CN"):
        assert gates_bands_figure(snap.steps, ["Z", "R"]).layout.title.text == "门控：每步的分布"


def test_the_gates_heatmaps_share_one_colour_bar_and_say_each_gate() -> None:
    rng = np.random.default_rng(0)
    values = {"Z": rng.uniform(0, 1, (len(TEXT), 300)), "R": rng.uniform(0, 1, (len(TEXT), 300))}
    fig = gates_heatmap_figure(values, TEXT, ["Z", "R"])
    assert fig.layout.title.text == "Gates on the probe text (first 64 of 300 hidden units)"
    z, r = fig.data
    assert (z.showscale, r.showscale) == (False, None)  # the same scale: one bar, named after both
    assert r.colorbar.title.text == "Z, R"
    np.testing.assert_array_equal(r.z, gate_heatmap_figure(values["R"], TEXT, "R").data[0].z)
    assert r.colorbar.len == 1 and fig.layout.xaxis2.matches == "x"  # one text, one column
    words = describe.heatmap(fig)
    assert (
        words.startswith("update gate Z: heatmap of 64 rows") and "reset gate R: heatmap" in words
    )
    only_z = gates_heatmap_figure({"Z": values["Z"], "R": None}, TEXT, ["Z", "R"])
    assert len(only_z.data) == 1 and "Z on the probe text" in only_z.layout.title.text
    with pytest.raises(ValueError, match="traced none"):
        gates_heatmap_figure({}, TEXT, ["Z", "R"])
