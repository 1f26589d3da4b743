"""The live views keep a pace that each view can hold: a view whose redraw outlasts the
refresh interval never settles (Streamlit's timer asks for the next redraw before the last
one is drawn, and its elements stay greyed as stale), so the interval grows with the view's
own redraw time (on the server), and comes back when a quick view is chosen again. Choosing a
view changes no pace by itself (a new pace costs a full rerun of the page): the views that
cost the browser most keep their charts for a few seconds instead (``display.held``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from test_app import APP, SMALL, button, lab_of, make_app  # noqa: F401 (make_app: a fixture)

from dashboard.screens.lab import REFRESH_S
from dashboard.screens.resources import share_registry
from dashboard.screens.watch import watch_interval
from dashboard.views.pacing import MAX_PACED_S, PACE, paced_interval


def test_a_quick_view_keeps_the_base_interval() -> None:
    assert paced_interval(REFRESH_S, 0.0) == REFRESH_S
    assert paced_interval(REFRESH_S, REFRESH_S / PACE) == REFRESH_S
    assert paced_interval(2.0, 0.1) == 2.0  # a queued session's slower base stays


@pytest.mark.parametrize("redraw_s", [0.4, 0.9, 1.7, 3.0, 5.5])
def test_a_slow_view_gets_time_to_settle_between_redraws(redraw_s: float) -> None:
    interval = paced_interval(REFRESH_S, redraw_s)
    assert interval >= PACE * redraw_s  # a pause at least as long as the redraw
    assert interval < 2 * PACE * redraw_s  # and no slower than the next doubling
    assert math.log2(interval / REFRESH_S).is_integer()  # doublings of the base


def test_the_pace_has_a_ceiling() -> None:
    slowest = paced_interval(REFRESH_S, 60.0)
    assert MAX_PACED_S <= slowest < 2 * MAX_PACED_S


def _record_run_every(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``run_every`` the page declares its live fragment with, in order."""
    seen: list[Any] = []
    real = st.fragment

    def fragment(func: Callable | None = None, *, run_every: Any = None, **kw: Any) -> Any:
        seen.append(run_every)
        return real(func, run_every=run_every, **kw) if func else real(run_every=run_every, **kw)

    monkeypatch.setattr(st, "fragment", fragment)
    return seen


def test_the_page_paces_its_live_fragment_to_the_view(
    make_app: Callable[..., AppTest],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    declared = _record_run_every(monkeypatch)
    at = make_app(**SMALL)
    at.run()
    button(at, "Start").click().run()
    lab_of(at).job.run_sync(2)
    at.run()
    assert declared[-1] == REFRESH_S  # a quick Overview: the base pace
    at.get("button_group")[0].set_value("Gates").run()
    assert not at.exception
    assert "Gates" in at.session_state["_redraw_s"]  # each view's redraw is timed
    assert declared[-1] == REFRESH_S  # a quick redraw on the server: the same pace
    at.session_state["_redraw_s"] = {"Overview": 0.01, "Gates": 2.0}  # Gates under load
    at.run()
    assert declared[-1] >= PACE * 2.0 / 2  # the running mean halves one slow sample at most
    assert declared[-1] >= 2 * REFRESH_S
    at.get("button_group")[0].set_value("Overview").run()
    assert not at.exception
    assert declared[-1] == REFRESH_S  # back on a quick view, back at the base pace


def test_the_watch_page_paces_its_live_fragment_like_the_lab(
    make_app: Callable[..., AppTest],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = make_app(**SMALL)
    owner.run()
    button(owner, "Start").click().run()
    lab_of(owner).job.run_sync(2)
    token = share_registry().share(lab_of(owner), owner="the-teacher")
    declared = _record_run_every(monkeypatch)
    watcher = AppTest.from_file(str(APP), default_timeout=60)
    watcher.query_params["watch"] = token
    watcher.run()
    assert not watcher.exception
    base = watch_interval(1)  # one watcher: the room's base interval
    assert declared[-1] == base  # a quick Overview: the base pace
    watcher.get("button_group")[0].set_value("Gates").run()
    assert not watcher.exception
    assert "Gates" in watcher.session_state["_redraw_s"]  # the watcher's redraws are timed
    assert declared[-1] == base  # a quick redraw on the server: the same pace
    watcher.session_state["_redraw_s"] = {"Overview": 0.01, "Gates": 9.0}  # Gates under load
    watcher.run()
    assert declared[-1] >= PACE * 9.0 / 2  # the running mean halves one slow sample at most
    watcher.get("button_group")[0].set_value("Overview").run()
    assert not watcher.exception
    assert declared[-1] == base  # back on a quick view, back at the room's pace
