"""The Streamlit page through AppTest: widgets, lessons, run controls, live knobs, the URL.

AppTest never fires ``st.fragment(run_every=...)``, so these tests give the session a Lab with
a ``SyncRunner``: Start builds the job without a thread, and the test drives it with
``job.run_sync(n)`` before the next ``at.run()``. Uploads cannot be simulated by AppTest (the
e2e tests cover them).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.session.lab import Lab
from dashboard.sidebar import controls as ctl
from dashboard.sidebar import lessons
from gru_core.run.job import ENDED
from gru_core.sources import load_corpus

from helpers import SyncRunner

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "dashboard" / "app.py"
# Small enough to step quickly on a loaded CPU (hidden 32, 10 steps, batch 8).
SMALL = {"hidden": "32", "steps": "10", "batch": "8"}


@pytest.fixture
def make_app(corpus_path: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AppTest]]:
    """A fresh app session (sync jobs) with query parameters; its lab is closed afterwards."""
    monkeypatch.setenv("GRU_LAB_CORPUS", corpus_path)
    monkeypatch.setenv("GRU_LAB_CLOSE_GRACE_S", "0.5")  # sessions released by clear() go fast
    st.cache_resource.clear()  # default_corpus is cached across tests
    apps: list[AppTest] = []

    def make(**query: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.session_state["lab"] = Lab(corpus=load_corpus(corpus_path), runner=SyncRunner())
        for key, value in query.items():
            at.query_params[key] = value
        apps.append(at)
        return at

    yield make
    for at in apps:
        if "lab" in at.session_state:
            lab: Lab = at.session_state["lab"]
            lab.close()


def button(at: AppTest, label: str) -> Any:
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no {label!r} button; have {[b.label for b in at.button]}"
    return matches[0]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def lab_of(at: AppTest) -> Lab:
    return at.session_state["lab"]


def control_widgets(at: AppTest) -> dict[str, Any]:
    """Control key -> the value its widget shows."""
    found = {}
    for kind in ("slider", "select_slider", "toggle", "number_input", "radio", "selectbox"):
        for widget in getattr(at, kind):
            if widget.key and ctl.control_key(widget.key) in ctl.BY_KEY:
                found[ctl.control_key(widget.key)] = widget.value
    return found


def wkey(at: AppTest, control: str) -> str:
    """The key of ``control``'s widget now (each applied lesson makes new widgets)."""
    generation = (
        at.session_state["_widget_generation"] if "_widget_generation" in at.session_state else 0
    )
    return ctl.widget_key(control, generation)


def trace_lengths(chart: Any) -> list[int]:
    """Number of points of each trace in a plotly_chart element's figure JSON."""
    figure = json.loads(chart.proto.spec)
    lengths = []
    for trace in figure["data"]:
        values = trace.get("y", trace.get("z"))
        if isinstance(values, dict) and "bdata" in values:  # plotly's typed-array encoding
            lengths.append(len(np.frombuffer(base64.b64decode(values["bdata"]), values["dtype"])))
        else:
            lengths.append(len(values or []))
    return lengths


def test_loads_with_d2l_defaults(make_app: Callable[..., AppTest]) -> None:
    at = make_app()
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["GRU Lab"]
    assert at.slider(key="hidden").label == "Hidden size"
    assert at.slider(key="hidden").value == 256
    assert at.select_slider(key="init_std").label == "Init std (log scale)"
    assert at.select_slider(key="init_std").value == 0.01
    assert at.select_slider(key="clip").label == "Clip threshold θ (log scale)"
    assert at.select_slider(key="clip").value == 1.0
    assert at.slider(key="steps").label == "Sequence length (num_steps)"
    assert at.slider(key="steps").value == 35
    assert at.toggle(key="clip_on").label == "Clip gradients"
    assert at.toggle(key="clip_on").value is True
    assert control_widgets(at) == ctl.defaults()
    notice = [m.value for m in at.markdown if "Corpus:" in m.value and "Device:" in m.value]
    assert len(notice) == 1 and "trains on the first 10,000 of" in notice[0]
    assert "validates on the next 5,000" in notice[0]
    assert at.selectbox(key="lesson").value == "d2l default"
    assert button(at, "Start").disabled is False
    assert button(at, "Pause").disabled and button(at, "Stop").disabled
    assert any("Nothing is training" in i.value for i in at.info)
    assert not at.error and not at.warning
    assert dict(at.query_params) == {}  # defaults keep the URL clean


def test_lesson_presets_set_every_control(make_app: Callable[..., AppTest]) -> None:
    at = make_app()
    at.run()
    names = [lesson.name for lesson in lessons.LESSONS]
    names = names[1:] + names[:1]  # 'd2l default' is already selected: choose it last
    for name in names:
        at.selectbox(key="lesson").select(name).run()
        assert not at.exception, name
        assert control_widgets(at) == lessons.lesson_values(name), name
        lesson = lessons.BY_NAME[name]
        assert any(i.value == lesson.text for i in at.info), name
        # The URL follows the controls.
        assert {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()} == (
            ctl.to_query(lessons.lesson_values(name))
        )


def test_a_lesson_makes_new_widgets_and_later_changes_stick(
    make_app: Callable[..., AppTest],
) -> None:
    """Each lesson renders its controls as new widgets (the browser's stale values of the old
    ones cannot undo it); a change made after the lesson still reaches the config and URL."""
    at = make_app()
    at.run()
    at.selectbox(key="lesson").select("Exploding gradients").run()
    first = wkey(at, "hidden")
    assert first != "hidden" and at.slider(key=first).value == 128
    assert "hidden" not in at.session_state  # the old widget's state is gone, not kept
    at.slider(key=first).set_value(64).run()
    assert at.query_params["hidden"] == "64"
    at.selectbox(key="lesson").select("Small and fast").run()
    second = wkey(at, "hidden")
    assert second not in (first, "hidden")
    assert control_widgets(at) == lessons.lesson_values("Small and fast")
    button(at, "Start").click().run()
    assert lab_of(at).job is not None
    assert lab_of(at).job.config.hidden_size == lessons.lesson_values("Small and fast")["hidden"]
    assert not at.exception


def test_start_train_and_draw(make_app: Callable[..., AppTest]) -> None:
    at = make_app(**SMALL)
    at.run()
    button(at, "Start").click().run()
    assert not at.exception
    job = lab_of(at).job
    assert job is not None and job.config.hidden_size == 32 and job.status().state == "ready"
    job.run_sync(5)
    at.run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Step"] == "5" and shown["State"] == "running"
    assert shown["Clip θ in force"] == "1"
    assert any(c.value.startswith("step 5 · epoch 1") for c in at.caption)
    assert button(at, "Restart").disabled is False
    assert button(at, "Pause").disabled is False and button(at, "Stop").disabled is False

    charts = at.get("plotly_chart")
    assert len(charts) >= 2
    for chart in charts:
        lengths = trace_lengths(chart)
        assert lengths and max(lengths) > 0
    # The perplexity chart has a point for each of the 5 steps.
    assert 5 in trace_lengths(charts[0])
    # The first screen: perplexity, gradient norm and the update gate, together.
    assert [c.key for c in charts[:3]] == ["ppl", "gnorm", "overview-bands-Z"]


def test_step_from_idle_then_step_while_paused(make_app: Callable[..., AppTest]) -> None:
    at = make_app(**SMALL)
    at.run()
    assert button(at, "Step").disabled is False
    button(at, "Step").click().run()
    assert not at.exception
    job = lab_of(at).job
    assert job is not None
    assert metrics(at)["Step"] == "1" and metrics(at)["State"] == "paused"
    assert job.status().step == 1
    for expected in (2, 3):
        assert button(at, "Step").disabled is False
        button(at, "Step").click().run()
        assert not at.exception
        assert job.status().step == expected
        assert metrics(at)["Step"] == str(expected) and metrics(at)["State"] == "paused"
    assert button(at, "Resume").disabled is False  # the pause button offers to resume
    assert list(job.telemetry.snapshot().steps["step"]) == [1, 2, 3]


def test_pause_then_step_advances_exactly_one(make_app: Callable[..., AppTest]) -> None:
    at = make_app(**SMALL)
    at.run()
    button(at, "Start").click().run()
    job = lab_of(at).job
    assert job is not None
    job.run_sync(3)
    at.run()
    button(at, "Pause").click().run()
    assert not at.exception
    assert metrics(at)["State"] == "paused"
    button(at, "Step").click().run()
    assert not at.exception
    assert job.status().step == 4 and metrics(at)["Step"] == "4"


def test_live_clip_change_reaches_the_running_job(make_app: Callable[..., AppTest]) -> None:
    at = make_app(**SMALL)
    at.run()
    button(at, "Start").click().run()
    job = lab_of(at).job
    assert job is not None
    job.run_sync(2)
    at.run()
    at.select_slider(key="clip").set_value(0.1).run()
    assert not at.exception
    assert lab_of(at).job is job  # a live knob does not restart the run
    assert not any("Applies on restart" in i.value for i in at.info)
    job.run_sync(2)
    assert job.status().clip_threshold == 0.1
    snap = job.telemetry.snapshot()
    assert snap.last_step is not None
    assert (snap.last_step.step, snap.last_step.clip_threshold) == (4, 0.1)
    assert list(snap.steps["clip_threshold"]) == [1.0, 1.0, 0.1, 0.1]
    events = snap.events
    assert list(zip(events["step"], events["kind"], events["value"], strict=True)) == [
        (3, "clip_threshold", 0.1)
    ]
    at.run()
    assert metrics(at)["Clip θ in force"] == "0.1"

    at.toggle(key="clip_on").set_value(False).run()  # clipping off, live as well
    job.run_sync(1)
    assert job.status().clip_threshold is None
    assert job.telemetry.snapshot().last_step.clip_threshold is None  # type: ignore[union-attr]


def test_diverging_run_explains_and_suggests_a_remedy(make_app: Callable[..., AppTest]) -> None:
    at = make_app()
    at.run()
    at.selectbox(key="lesson").select("Exploding gradients").run()
    assert at.toggle(key=wkey(at, "clip_on")).value is False
    # Push it past float32: std 3 weights over 100 steps, a high learning rate, no clipping.
    at.select_slider(key=wkey(at, "init_std")).set_value(3.0)
    at.slider(key=wkey(at, "steps")).set_value(100)
    at.select_slider(key=wkey(at, "lr")).set_value(50.0)
    at.run()
    button(at, "Start").click().run()
    job = lab_of(at).job
    assert job is not None and job.config.clip_threshold is None
    for _ in range(50):
        if job.run_sync(20).state in ENDED:
            break
    assert job.status().state == "diverged"
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert "diverged" in errors[0] and "Remedy" in errors[0]
    assert "clipping on" in errors[0] and "init std" in errors[0] and "learning rate" in errors[0]
    assert metrics(at)["State"] == "diverged"
    assert button(at, "Start").disabled is False  # the page survives and can start again
    assert button(at, "Stop").disabled is True


def test_changing_hidden_size_during_a_run_applies_on_restart(
    make_app: Callable[..., AppTest],
) -> None:
    at = make_app(**SMALL)
    at.run()
    button(at, "Start").click().run()
    job = lab_of(at).job
    assert job is not None
    job.run_sync(1)
    at.run()
    assert not any("Applies on restart" in i.value for i in at.info)
    at.slider(key="hidden").set_value(64).run()
    assert not at.exception
    notices = [i.value for i in at.info if "Applies on restart" in i.value]
    assert len(notices) == 1 and "hidden size 32 → 64" in notices[0]
    assert lab_of(at).job is job and job.config.hidden_size == 32  # the run goes on
    button(at, "Restart").click().run()
    new = lab_of(at).job
    assert new is not job and new is not None and new.config.hidden_size == 64
    assert not any("Applies on restart" in i.value for i in at.info)


def test_reset_clears_the_run(make_app: Callable[..., AppTest]) -> None:
    at = make_app(**SMALL)
    at.run()
    button(at, "Start").click().run()
    lab_of(at).job.run_sync(2)  # type: ignore[union-attr]
    at.run()
    button(at, "Reset").click().run()
    assert not at.exception
    assert lab_of(at).job is None and lab_of(at).snapshot().total_steps == 0
    assert any("Nothing is training" in i.value for i in at.info)
    assert button(at, "Start").disabled is False


def test_url_parameters_set_the_controls(make_app: Callable[..., AppTest]) -> None:
    at = make_app(hidden="64", clip="5")
    at.run()
    assert not at.exception
    assert at.slider(key="hidden").value == 64
    assert at.select_slider(key="clip").value == 5.0
    assert at.slider(key="steps").value == 35  # the rest keep d2l's defaults
    assert not at.warning


def test_url_parameters_that_are_not_controls_are_kept(make_app: Callable[..., AppTest]) -> None:
    at = make_app(hidden="64", utm_source="newsletter")
    at.run()
    assert at.slider(key="hidden").value == 64
    assert at.query_params["utm_source"] == "newsletter"


def test_bad_url_value_warns_and_keeps_the_default(make_app: Callable[..., AppTest]) -> None:
    at = make_app(hidden="abc", clip="3", steps="50")
    at.run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any("`hidden=abc`" in w for w in warnings)
    assert any("`clip=3`" in w for w in warnings)
    assert at.slider(key="hidden").value == 256
    assert at.select_slider(key="clip").value == 1.0
    assert at.slider(key="steps").value == 50  # the valid parameter still applies


# -- issue 12: honest outcomes, compare that follows, the training text in view ------------


def finish(at: AppTest, n: int = 200) -> None:
    job = lab_of(at).job
    assert job is not None
    for _ in range(n):
        if job.run_sync(50).state in ENDED:
            break
    at.run()


def test_a_finished_run_shows_its_verdict_and_joins_compare(
    make_app: Callable[..., AppTest],
) -> None:
    at = make_app(**SMALL, epochs="2")
    at.run()
    names = []
    for seed in ("1", "2", "3"):
        at.number_input(key=wkey(at, "seed")).set_value(int(seed)).run()
        button(at, "Start").click().run()
        finish(at)
        assert not at.exception
        verdict = lab_of(at).verdict()
        assert verdict is not None and verdict.kind in ("learned", "did not learn")
        assert metrics(at)["State"] == verdict.kind
        names = lab_of(at).runs.names()
        # The newest run joins the overlay (the last two) and the download box follows it.
        assert at.multiselect(key="compare_runs").value == names[-2:]
        assert at.selectbox(key="download_run").value == names[-1]
    assert len(names) == 3
    table = at.get("arrow_data_frame") or at.dataframe
    assert table, "the compare table is shown"
    # Through time, run by run: the overlay on shared axes and the reach of each.
    shown = {c.key: c for c in at.get("plotly_chart")}
    assert {"cmp-flow", "cmp-reach"} <= set(shown)
    reach = json.loads(shown["cmp-reach"].proto.spec)["data"][1]
    assert reach["y"] == names[-2:]


def test_the_view_selector_cannot_be_left_empty(make_app: Callable[..., AppTest]) -> None:
    at = make_app(**SMALL)
    at.run()
    view = at.get("button_group")[0]
    assert view.value == "Overview"
    at.get("button_group")[0].set_value("Gradients").run()
    assert {c.key for c in at.get("plotly_chart")} >= {"gnorm2", "groups"}
    at.get("button_group")[0].set_value(None).run()  # what a deselecting click would send
    assert not at.exception
    assert {c.key for c in at.get("plotly_chart")} >= {"gnorm2", "groups"}  # still showing


def test_the_training_slice_control_moves_the_split(make_app: Callable[..., AppTest]) -> None:
    at = make_app(slice="all")
    at.run()
    assert not at.exception
    notice = [m.value for m in at.markdown if "Corpus:" in m.value][0]
    assert "trains on" in notice and "first 10,000" not in notice
    assert lab_of(at) is not None
    config = ctl.config_from_values({**ctl.defaults(), "slice": "all"})
    assert config.max_tokens >= len(lab_of(at).corpus.tokens)


def test_sequence_length_follows_the_slice_and_batch(make_app: Callable[..., AppTest]) -> None:
    at = make_app(steps="300")
    at.run()
    assert at.slider(key="steps").value == 300 and at.slider(key="steps").max == 312
    at.select_slider(key="batch").set_value(64).run()
    assert not at.exception
    assert at.slider(key="steps").max == 156 and at.slider(key="steps").value == 156
    warning = [w.value for w in at.warning if "Sequence length lowered to 156" in w.value]
    assert warning and "Lower the batch size or train on more text" in warning[0]


def test_moving_away_from_a_lesson_deselects_it(make_app: Callable[..., AppTest]) -> None:
    at = make_app()
    at.run()
    at.selectbox(key="lesson").select("Exploding gradients").run()
    lesson_text = [i.value for i in at.info if "Weights 10x" in i.value]
    assert lesson_text
    at.select_slider(key=wkey(at, "init_std")).set_value(1.0).run()
    assert not at.exception
    assert at.selectbox(key="lesson").value is None
    assert not [i.value for i in at.info if "Weights 10x" in i.value]
    assert any("changed since the lesson" in c.value for c in at.caption)


# -- issue 13: the room -----------------------------------------------------------------------


def test_a_hide_and_lock_link(make_app: Callable[..., AppTest]) -> None:
    at = make_app(hide="seed,device", lock="lr", lr="5", hidden="64")
    at.run()
    assert not at.exception
    shown = control_widgets(at)
    assert "seed" not in shown and "device" not in shown  # hidden: absent
    assert at.select_slider(key="lr").disabled and at.select_slider(key="lr").value == 5.0
    assert at.slider(key="hidden").value == 64 and not at.slider(key="hidden").disabled
    config = ctl.config_from_values({**ctl.defaults(), **shown})
    assert config.seed == 0 and config.lr == 5.0  # hidden controls keep their values
    assert at.query_params["hide"] == "seed,device" and at.query_params["lock"] == "lr"


def test_projector_mode_from_the_url(make_app: Callable[..., AppTest]) -> None:
    at = make_app(projector="1", **SMALL)
    at.run()
    assert at.toggle(key="projector").value is True
    button(at, "Start").click().run()
    lab_of(at).job.run_sync(3)  # type: ignore[union-attr]
    at.run()
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert figure["layout"]["xaxis"]["tickfont"]["size"] >= 16
    assert figure["layout"]["title"]["font"]["size"] >= 20
    assert at.query_params["projector"] == "1"


def test_a_watch_link_shows_the_run_without_controls(
    make_app: Callable[..., AppTest], corpus_path: str
) -> None:
    from dashboard.screens.resources import share_registry

    owner = make_app(**SMALL)
    owner.run()
    button(owner, "Start").click().run()
    job = lab_of(owner).job
    assert job is not None
    job.run_sync(4)
    token = share_registry().share(lab_of(owner), owner="the-teacher")
    watcher = AppTest.from_file(str(APP), default_timeout=60)
    watcher.query_params["watch"] = token
    watcher.run()
    assert not watcher.exception
    assert [t.value for t in watcher.title] == ["GRU Lab · watching"]
    labels = [b.label for b in watcher.button]
    assert not {"Start", "Pause", "Stop", "Reset", "Step"} & set(labels)
    assert metrics(watcher)["Step"] == "4"
    assert "lab" not in watcher.session_state  # the watcher has no handle on the run
    job.run_sync(2)
    watcher.run()
    assert metrics(watcher)["Step"] == "6"
    assert share_registry().watchers(token) == 1
    # Fork: the watcher gets the run's settings in a lab of their own.
    button(watcher, "Fork: copy its settings into my own lab").click().run()
    assert not watcher.exception and "watch" not in watcher.query_params
    assert watcher.slider(key=wkey(watcher, "hidden")).value == 32
    assert lab_of(watcher) is not lab_of(owner)


def test_a_wrong_watch_token_says_so(make_app: Callable[..., AppTest]) -> None:
    at = make_app(watch="not-a-real-token")
    at.run()
    assert not at.exception
    assert any("not valid" in e.value for e in at.error)
    assert not at.get("plotly_chart")


# -- issue 11: the memory view ------------------------------------------------------------------


LIVE = "this run (its latest weights)"


def test_the_memory_view_reads_a_running_job_and_a_saved_run(
    make_app: Callable[..., AppTest],
) -> None:
    at = make_app(**SMALL, epochs="1")
    at.run()
    button(at, "Start").click().run()
    job = lab_of(at).job
    assert job is not None
    job.run_sync(3)
    at.run()
    at.get("button_group")[0].set_value("Memory").run()
    assert not at.exception
    assert at.selectbox(key="memory_source").value == LIVE
    step = lab_of(at).sources()[LIVE].step
    read = [c.value for c in at.caption if c.value.startswith("Weights read at step")]
    assert read == [
        f"Weights read at step {step:,}. While the run trains, they are read again every few"
        " seconds."
    ]
    assert {c.key for c in at.get("plotly_chart")} >= {"memory-connectivity", "memory-ranking"}
    finish(at)
    at.get("button_group")[0].set_value("Memory").run()
    last = lab_of(at).sources()[LIVE].step
    read = [c.value for c in at.caption if c.value.startswith("Weights read at step")]
    assert read == [f"Weights read at step {last:,}."]  # ended: no longer read again
    sources = at.selectbox(key="memory_source").options
    assert any(name.startswith("#1 GRU") for name in sources)  # the saved run kept its weights
    at.selectbox(key="memory_source").select(sources[-1]).run()
    assert not at.exception
    assert "memory-connectivity" in {c.key for c in at.get("plotly_chart")}


def test_connectivity_compares_two_models_by_default_never_a_run_with_its_copy(
    make_app: Callable[..., AppTest],
) -> None:
    """Issue 18: a finished run and its own saved copy are one run (nothing to compare); a
    GRU run then an RNN run: the RNN (this run) and the GRU are preselected."""
    at = make_app(**SMALL, epochs="1")
    at.run()
    button(at, "Start").click().run()
    finish(at)
    at.get("button_group")[0].set_value("Memory").run()
    assert len(at.selectbox(key="memory_source").options) == 2  # this run, #1 GRU (its copy)
    assert not [m for m in at.multiselect if m.key == "memory_compare"]
    at.radio(key=wkey(at, "model")).set_value("RNN").run()
    button(at, "Start").click().run()
    finish(at)
    at.get("button_group")[0].set_value("Memory").run()
    assert not at.exception
    chosen = at.multiselect(key="memory_compare").value
    assert chosen[0].startswith("this run") and chosen[1].startswith("#1 GRU")
    assert len(chosen) == 2 and "memory-compare" in {c.key for c in at.get("plotly_chart")}


def _sidebar_that_loses_a_widget_state() -> None:
    """A page with the sidebar, where the second run starts without the Hidden size widget's
    state (what Streamlit's clean-up of a widget a run did not draw leaves behind)."""
    import streamlit as st

    from dashboard.sidebar import panel as sidebar
    from gru_core.data import corpus_from_text

    sidebar.init_widget_state()
    if st.session_state.get("drop"):
        del st.session_state[sidebar.wkey("hidden")]
    sidebar.sidebar(corpus_from_text("the time traveller " * 2000, "t.txt"), st.sidebar)
    st.session_state.drop = True


def test_a_control_whose_widget_state_was_dropped_comes_back_with_its_value() -> None:
    at = AppTest.from_function(_sidebar_that_loses_a_widget_state, default_timeout=30)
    at.query_params["hidden"] = "128"
    at.run()
    assert at.slider(key="hidden").value == 128
    at.run()  # the widget's state is gone at the start of this run
    assert not at.exception
    assert at.slider(key="hidden").value == 128  # restored, not the slider's minimum (8)
