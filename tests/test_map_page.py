"""The trainability map page through AppTest: settings, a small sweep filling the map, the
URL, and bad settings."""

from __future__ import annotations

import base64
import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from gru_core.sweep.job import SweepJob

from helpers import fake_theory


def _page() -> None:
    import streamlit as st

    from dashboard.screens.map import map_page

    st.session_state["_pages"] = {}
    map_page()


@pytest.fixture(autouse=True)
def quick_theory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The maps here draw their theory from a quick stand-in (helpers.fake_theory)."""
    monkeypatch.setitem(sys.modules, "gru_core.theory", fake_theory([]))


@pytest.fixture
def page(corpus_path: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("GRU_LAB_CORPUS", corpus_path)
    st.cache_resource.clear()
    at = AppTest.from_function(_page, default_timeout=60)
    yield at
    job: SweepJob | None = at.session_state["sweep"] if "sweep" in at.session_state else None
    if job is not None:
        job.stop(wait=True)


def _cells(chart: Any) -> tuple[int, int]:
    """(cells of the grid, cells that have finished: their text is no longer '…')."""
    texts = json.loads(chart.proto.spec)["data"][0]["text"]
    flat = [t for row in texts for t in row]
    return len(flat), sum(t not in ("…", "") for t in flat)


def test_a_small_sweep_fills_the_map(page: AppTest) -> None:
    page.query_params.update(map_hidden="8", map_epochs="1", map_steps="10")
    page.run()
    assert not page.exception
    page.multiselect(key="map_xv").set_value([0.01, 1.0])
    page.multiselect(key="map_yv").set_value([1.0, None])
    page.run()
    [b for b in page.button if b.label == "Start"][0].click().run()
    assert not page.exception and not page.error
    job: SweepJob = page.session_state["sweep"]
    job.join(120)
    page.run()
    snap = job.snapshot()
    assert snap.state == "done" and snap.finished == snap.total == 4
    charts = page.get("plotly_chart")
    assert charts and _cells(charts[0]) == (4, 4)
    assert page.query_params["map_xv"] == "0.01,1" and page.query_params["map_yv"] == "1,off"
    assert [d for d in page.get("download_button")]


def test_the_url_sets_the_map(page: AppTest) -> None:
    page.query_params.update(map_x="lr", map_xv="0.1,1,10", map_y="clip_threshold", map_yv="1,off")
    page.run()
    assert not page.exception
    assert page.selectbox(key="map_x").value == "lr"
    assert page.multiselect(key="map_xv").value == [0.1, 1.0, 10.0]
    assert page.multiselect(key="map_yv").value == [1.0, None]


def test_bad_map_settings_say_what_is_wrong(page: AppTest) -> None:
    page.run()
    page.multiselect(key="map_xv").set_value([])
    page.run()
    [b for b in page.button if b.label == "Start"][0].click().run()
    assert not page.exception
    assert any("Can't start" in e.value and "x_values" in e.value for e in page.error)


def test_gru_and_rnn_maps_share_one_colour_bar(page: AppTest) -> None:
    """Issue 18: side-by-side maps on one scale: one figure, one coloraxis, one bar."""
    page.query_params.update(map_hidden="8", map_epochs="1", map_steps="10",
                             map_models="GRU,RNN", map_xv="0.01,1", map_yv="1")  # fmt: skip
    page.run()
    [b for b in page.button if b.label == "Start"][0].click().run()
    job: SweepJob = page.session_state["sweep"]
    job.join(120)
    page.run()
    assert not page.exception and job.snapshot().state == "done"
    (chart,) = page.get("plotly_chart")  # both models in one figure
    spec = json.loads(chart.proto.spec)
    values = [t for t in spec["data"] if t["type"] == "heatmap" and t["name"] == "perplexity"]
    assert [t["meta"] for t in values] == ["gru", "rnn"]
    assert {t["coloraxis"] for t in values} == {"coloraxis"}
    assert not any(t.get("showscale") for t in spec["data"] if t["type"] == "heatmap")
    bars = [
        k for k, v in spec["layout"].items() if k.startswith("coloraxis") and v.get("showscale")
    ]
    assert bars == ["coloraxis"]
    z = np.concatenate([_array(t["z"]).ravel() for t in values])
    z = z[np.isfinite(z)]
    assert z.size == 4  # every cell of both maps learned or did not: on the scale
    axis = spec["layout"]["coloraxis"]
    assert axis["cmin"] == pytest.approx(z.min()) and axis["cmax"] == pytest.approx(z.max())


def _array(value: Any) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array {'dtype', 'bdata', 'shape'}."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", flat.size)).split(",")]
        return flat.reshape(shape).astype(np.float64)
    return np.asarray(value, dtype=np.float64)


def test_sequence_length_is_an_axis_from_the_url(page: AppTest) -> None:
    page.query_params.update(map_x="num_steps", map_xv="10,20", map_y="hidden_size",
                             map_yv="8,16", map_epochs="1")  # fmt: skip
    page.run()
    assert not page.exception
    assert page.multiselect(key="map_xv").value == [10, 20]
    assert page.multiselect(key="map_yv").value == [8, 16]
    assert any("sequence length T and hidden size come from the map's axes" in c.value
               for c in page.caption)  # fmt: skip
    [b for b in page.button if b.label == "Start"][0].click().run()
    job: SweepJob = page.session_state["sweep"]
    assert len(job.plan.chunks) == 4  # one batched group per shape
    assert {(c.config.num_steps, c.config.hidden_size) for c in job.spec.cells()} == {
        (10, 8), (20, 8), (10, 16), (20, 16)
    }  # fmt: skip


def test_the_why_001_lesson_maps_gru_and_rnn(page: AppTest) -> None:
    page.run()
    [b for b in page.button if b.label.startswith("Lesson: Why 0.01?")][0].click().run()
    page.run()
    assert page.multiselect(key="map_models").value == ["GRU", "RNN"]
    assert page.selectbox(key="map_x").value == "init_std"
    assert page.selectbox(key="map_y").value == "clip_threshold"


def _page_in_chinese() -> None:
    import streamlit as st

    from dashboard.screens.map import map_page
    from dashboard.session.language import PageLanguage
    from dashboard.sidebar.language import PAGE_KEY
    from gru_core.i18n import use_language

    st.session_state["_pages"] = {}
    st.session_state[PAGE_KEY] = PageLanguage("zh_CN", chosen=True)
    use_language("zh_CN")
    map_page()


def test_a_map_without_theory_says_why_in_the_readers_language(
    corpus_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker keeps the theory's exception; the page words it in its own language."""
    monkeypatch.setitem(sys.modules, "gru_core.theory", types.ModuleType("gru_core.theory"))
    monkeypatch.setenv("GRU_LAB_CORPUS", corpus_path)
    st.cache_resource.clear()
    at = AppTest.from_function(_page_in_chinese, default_timeout=60)
    at.query_params.update(map_hidden="8", map_epochs="1", map_steps="10", map_xv="0.01")
    at.query_params.update(map_yv="1")
    at.run()
    try:
        [b for b in at.button if b.label == "开始"][0].click().run()
        job: SweepJob = at.session_state["sweep"]
        job.join(120)
        at.run()
        assert job.snapshot().theory_error.startswith("AttributeError")
        notes = [c.value for c in at.caption if "AttributeError" in c.value]
        assert notes and notes[0].startswith("此地图没有理论值")
    finally:
        if "sweep" in at.session_state:
            at.session_state["sweep"].stop(wait=True)
