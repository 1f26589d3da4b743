"""A live page keeps a pace that each view can hold: its status (the Step) every base
interval, the chosen view's charts at the view's own pace (``screens/live.py``). A view whose
redraw outlasts its interval never settles (Streamlit's timer asks for the next redraw
before the last one is drawn, and its elements stay greyed as stale), so a view's interval
grows with its own redraw time (on the server), and comes back when a quick view is chosen
again; the views that cost the browser most (Gates, Through time, Memory) are redrawn every
HEAVY_S at the quickest."""

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
from dashboard.views.pacing import (
    CHARTS_S,
    HEAVY_S,
    HEAVY_VIEWS,
    MAX_PACED_S,
    PACE,
    charts_base,
    paced_interval,
)
from dashboard.views.training import VIEWS


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


def test_charts_are_redrawn_less_often_than_the_step_and_heavy_views_least() -> None:
    assert REFRESH_S < CHARTS_S < HEAVY_S
    assert HEAVY_VIEWS < set(VIEWS)  # names the selector's own views
    for view in VIEWS:
        assert charts_base(REFRESH_S, view) == (HEAVY_S if view in HEAVY_VIEWS else CHARTS_S)
    assert charts_base(3.0, "Overview") == 3.0  # a crowded room's slower base wins
    assert charts_base(8.0, "Gates") == 8.0


def _record_run_every(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Fragment name (``status``, ``live``, ``charts``) -> every ``run_every`` the page has
    declared it with (called it: Streamlit sends its timer then), in order."""
    seen: dict[str, list[Any]] = {}
    real = st.fragment

    def fragment(func: Callable | None = None, *, run_every: Any = None, **kw: Any) -> Any:
        assert func is not None  # language_fragment passes the body
        declared = real(func, run_every=run_every, **kw)

        def called(*args: Any, **kwargs: Any) -> Any:  # a fragment is declared when called
            seen.setdefault(func.__name__, []).append(run_every)
            return declared(*args, **kwargs)

        return called

    monkeypatch.setattr(st, "fragment", fragment)
    return seen


def test_the_page_paces_its_charts_to_the_view_and_its_status_to_the_page(
    make_app: Callable[..., AppTest],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    declared = _record_run_every(monkeypatch)
    at = make_app(**SMALL)
    at.run()
    assert declared["status"][-1] is None and declared["charts"][-1] is None  # nothing runs
    button(at, "Start").click().run()
    lab_of(at).job.run_sync(2)
    at.run()
    assert declared["live"][-1] is None  # reruns on a click of its view control only
    assert declared["status"][-1] == REFRESH_S  # the Step: the page's base pace
    assert declared["charts"][-1] == CHARTS_S  # a quick Overview: the quickest charts
    at.get("button_group")[0].set_value("Gates").run()
    assert not at.exception
    assert "Gates" in at.session_state["_redraw_s"]  # each view's redraw is timed
    assert declared["charts"][-1] == HEAVY_S  # a heavy view: its charts every HEAVY_S
    assert declared["status"][-1] == REFRESH_S  # the Step moves as fast as before
    at.session_state["_redraw_s"] = {"Overview": 0.01, "Gates": 5.0}  # Gates under load
    at.run()
    assert declared["charts"][-1] >= PACE * 5.0 / 2  # the running mean halves one slow sample
    assert declared["charts"][-1] >= 2 * HEAVY_S
    assert declared["status"][-1] == REFRESH_S
    at.get("button_group")[0].set_value("Overview").run()
    assert not at.exception
    assert declared["charts"][-1] == CHARTS_S  # back on a quick view, back at its pace


def test_the_watch_page_paces_its_live_fragments_like_the_lab(
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
    assert declared["charts"][-1] == charts_base(base, "Overview") == base
    # Charts as often as the status: one timer for both (the status drawn by the charts).
    assert "status" not in declared
    assert [m.label for m in watcher.metric][:2] == ["State", "Step"]
    watcher.get("button_group")[0].set_value("Gates").run()
    assert not watcher.exception
    assert "Gates" in watcher.session_state["_redraw_s"]  # the watcher's redraws are timed
    assert declared["charts"][-1] == charts_base(base, "Gates") == HEAVY_S
    assert declared["status"] == [base]  # slower charts: the Step on a timer of its own
    assert [m.label for m in watcher.metric][:2] == ["State", "Step"]
    watcher.session_state["_redraw_s"] = {"Overview": 0.01, "Gates": 9.0}  # Gates under load
    watcher.run()
    assert declared["charts"][-1] >= PACE * 9.0 / 2  # the running mean halves one slow sample
    assert declared["status"][-1] == base  # the Step at the room's pace still
    watcher.get("button_group")[0].set_value("Overview").run()
    assert not watcher.exception
    assert declared["charts"][-1] == charts_base(base, "Overview")
    assert len(declared["status"]) == 2  # back to one timer
    assert [m.label for m in watcher.metric][:2] == ["State", "Step"]
