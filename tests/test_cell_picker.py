"""The map's cells from the keyboard (``views/cell_picker.py``): choosing a model, an x and a
y value and pressing the button opens the same cell a click on the map opens."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from gru_core.sweep.job import SweepJob

from helpers import fake_theory


def _page() -> None:
    import streamlit as st

    from dashboard.screens import map as map_screen

    st.session_state["_pages"] = {}

    def opened(job: object, point: dict) -> None:  # what the lab would open, kept to be read
        st.session_state["_opened"] = point["customdata"]

    map_screen._open_in_lab = opened
    map_screen.map_page()


@pytest.fixture
def page(corpus_path: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setitem(sys.modules, "gru_core.theory", fake_theory([]))
    from dashboard.screens import map as map_screen

    monkeypatch.setattr(map_screen, "_open_in_lab", map_screen._open_in_lab)  # restored after
    monkeypatch.setenv("GRU_LAB_CORPUS", corpus_path)
    st.cache_resource.clear()
    at = AppTest.from_function(_page, default_timeout=60)
    yield at
    job: SweepJob | None = at.session_state["sweep"] if "sweep" in at.session_state else None
    if job is not None:
        job.stop(wait=True)


def test_a_cell_chosen_from_the_keyboard_opens_like_a_click(page: AppTest) -> None:
    page.query_params.update(map_hidden="8", map_epochs="1", map_steps="10",
                             map_models="GRU,RNN", map_xv="0.01,1", map_yv="1,off")  # fmt: skip
    page.run()
    assert not page.exception
    assert not [b for b in page.button if b.label == "Open this cell in the lab"]  # no map yet
    [b for b in page.button if b.label == "Start"][0].click().run()
    job: SweepJob = page.session_state["sweep"]
    job.join(120)
    page.run()
    assert not page.exception and "_opened" not in page.session_state
    page.selectbox(key="map_pick_model").set_value("rnn")
    page.selectbox(key="map_pick_x_init_std").set_value(1.0)
    page.selectbox(key="map_pick_y_clip_threshold").select_index(1)  # off (None)
    assert [o for o in page.selectbox(key="map_pick_y_clip_threshold").options] == ["1", "off"]
    page.button(key="map_pick_open").click().run()
    assert not page.exception
    assert page.session_state["_opened"] == [1.0, None, "rnn"]
