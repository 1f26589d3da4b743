"""What a redraw of the heavy views costs: a figure whose data has not changed is not rebuilt
(the gate heatmaps once per probe, for every session), heatmaps travel as float32, and the
Memory view's reading of the live weights is kept for a few seconds on the fragment reruns
that follow it (``display.held``: a click on one of its widgets does not read them again)."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest
from test_app import SMALL, button, finish, lab_of, make_app, wkey  # noqa: F401 (make_app: a fixture)

from dashboard.charts import cells as cell_charts
from dashboard.views import compare
from dashboard.views.display import HOLD_S, kept_or_made
from gru_core.run.job import TrainingJob


def on_view(new_app: Callable[..., AppTest], view: str) -> tuple[AppTest, TrainingJob]:
    """A small run's page after three steps, showing ``view`` (``new_app``: the fixture)."""
    at = new_app(**SMALL)
    at.run()
    button(at, "Start").click().run()
    job = lab_of(at).job
    assert job is not None
    job.run_sync(3)
    at.get("button_group")[0].set_value(view).run()
    return at, job


def test_a_fragment_rerun_keeps_what_was_made_for_a_while() -> None:
    kept: dict = {}
    made: list[int] = []

    def make() -> object:
        made.append(1)
        return object()

    first = kept_or_made(kept, "bands-Z", make, HOLD_S, timed=True, now=100.0)
    assert kept_or_made(kept, "bands-Z", make, HOLD_S, timed=True, now=100.0 + HOLD_S / 2) is first
    assert len(made) == 1  # kept: the same object, the same bytes on the wire
    later = kept_or_made(kept, "bands-Z", make, HOLD_S, timed=True, now=100.0 + HOLD_S)
    assert later is not first and len(made) == 2  # too old: made afresh
    full = kept_or_made(kept, "bands-Z", make, HOLD_S, timed=False, now=100.0 + HOLD_S + 0.1)
    assert full is not later and len(made) == 3  # a full rerun always draws what is there
    other = kept_or_made(kept, "probe", make, HOLD_S, timed=True, now=100.0 + HOLD_S + 0.2)
    assert other is not full and len(made) == 4  # each name its own
    kept_or_made(kept, "memory", make, HOLD_S, timed=False, now=100.0 + 3 * HOLD_S)
    assert set(kept) == {"memory"}  # what is too old to be kept again is dropped


def test_the_gate_heatmaps_are_built_once_per_probe_and_sent_as_float32(
    make_app: Callable[..., AppTest],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[str] = []
    real = cell_charts.gate_heatmap_figure

    def counted(values, text, gate):  # type: ignore[no-untyped-def]
        builds.append(gate)
        return real(values, text, gate)

    monkeypatch.setattr(cell_charts, "gate_heatmap_figure", counted)
    at, job = on_view(make_app, "Gates")
    assert not at.exception
    specs = {c.proto.id: c.proto.spec for c in at.get("plotly_chart")}
    heat = [json.loads(s) for s in specs.values() if json.loads(s)["data"][0]["type"] == "heatmap"]
    # One chart, the two gates its panels (one mount for the browser), each built once.
    assert len(heat) == 1 and sorted(builds) == ["R", "Z"]
    assert [t["type"] for t in heat[0]["data"]] == ["heatmap", "heatmap"]
    for trace in heat[0]["data"]:
        assert trace["z"]["dtype"] == "f4"  # half the bytes of float64: plenty for a colour
    before = job.telemetry.snapshot()
    job.telemetry.add_event(3, "lr", 0.5)  # the run moves on; the probe stays
    assert job.telemetry.snapshot() is not before
    at.run()  # a new snapshot, the same probe: nothing rebuilt, the same bytes
    assert job.telemetry.snapshot().probe["step"] == before.probe["step"]
    assert sorted(builds) == ["R", "Z"]
    again = [c.proto.spec for c in at.get("plotly_chart")]
    assert all(spec in again for spec in specs.values() if '"heatmap"' in spec)


def test_the_memory_charts_are_built_once_per_reading(
    make_app: Callable[..., AppTest],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dashboard.charts import memory as memory_charts

    builds: list[str] = []
    for name in ("connectivity_figure", "unit_ranking_figure", "unit_blocks_html"):
        real = getattr(memory_charts, name)

        def counted(*args, _real=real, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            builds.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(memory_charts, name, counted)
    at, _job = on_view(make_app, "Memory")
    assert not at.exception
    made = ["connectivity_figure", "unit_blocks_html", "unit_ranking_figure"]
    assert sorted(builds) == made
    specs = sorted(c.proto.spec for c in at.get("plotly_chart"))
    at.run()  # the same weights, passage and position: the same reading, nothing rebuilt
    assert sorted(builds) == made
    assert sorted(c.proto.spec for c in at.get("plotly_chart")) == specs
    target = next(s for s in at.slider if s.key.startswith("memory_target_"))
    target.set_value(target.value - 1).run()  # another position: a new reading, new figures
    assert builds.count("connectivity_figure") == 2


def test_a_fragment_rerun_keeps_the_memory_reading_while_the_run_trains(
    make_app: Callable[..., AppTest],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The live weights' label does not name the step, so the reading held for a fragment
    rerun (a click on the view's own widgets) is found again after the run has moved on, its
    caption naming the step read."""
    from dashboard.views import display

    at, job = on_view(make_app, "Memory")
    read = lab_of(at).sources()["this run (its latest weights)"].step
    specs = sorted(c.proto.spec for c in at.get("plotly_chart"))
    for _ in range(500):  # the weights move on (copied with the probe, about once a second)
        job.run_sync(1)
        if job.weights()[0] > read:  # type: ignore[index, operator]
            break
    timed = SimpleNamespace(fragment_ids_this_run=["live"])
    monkeypatch.setattr(display, "get_script_run_ctx", lambda: timed)
    at.run()  # as a fragment rerun: the same reading, the same figures, the step it was read at
    assert not at.exception
    assert sorted(c.proto.spec for c in at.get("plotly_chart")) == specs
    assert at.selectbox(key="memory_source").value == "this run (its latest weights)"
    assert any(c.value.startswith(f"Weights read at step {read:,}.") for c in at.caption)
    monkeypatch.undo()
    at.run()  # a full rerun reads the weights afresh
    now = lab_of(at).sources()["this run (its latest weights)"].step
    assert now is not None and read is not None and now > read
    assert any(c.value.startswith(f"Weights read at step {now:,}.") for c in at.caption)


def test_through_time_sends_the_total_gradient_chart_only_when_asked(
    make_app: Callable[..., AppTest],  # noqa: F811
) -> None:
    at, _job = on_view(make_app, "Through time")  # step 1 recorded the gradient's flow
    assert not at.exception
    assert [c.key for c in at.get("plotly_chart")] == ["flow"]
    at.toggle(key="flow_total").set_value(True).run()
    assert [c.key for c in at.get("plotly_chart")] == ["flow", "flow-line"]


def test_the_text_view_lists_the_epochs_in_a_plain_table(
    make_app: Callable[..., AppTest],  # noqa: F811
) -> None:
    at = make_app(**SMALL, epochs="2")
    at.run()
    button(at, "Start").click().run()
    finish(at)  # two epochs
    at.get("button_group")[0].set_value("Text").run()
    assert not at.exception
    assert all(d.key.startswith("compare_table") for d in at.dataframe)  # Compare's only
    (table,) = at.table
    shown = table.value
    assert list(shown.columns) == ["training perplexity", "validation perplexity", "greedy text"]
    assert list(shown.index) == [2, 1]  # the newest epoch first
    assert all(isinstance(v, str) and v for v in shown["training perplexity"])  # '11.87'


def test_a_full_rerun_does_not_rebuild_what_saved_runs_show(
    make_app: Callable[..., AppTest],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Saved runs never change: their overlays and reach charts are built once per choice
    (``display.remembered``) and their CSV once per run, so a page rerun (a seed changed, a
    button pressed) sends the same charts again (0.36 s of a student's rerun before)."""
    at = make_app(**SMALL, epochs="2")
    at.run()
    for seed in (1, 2):
        at.number_input(key=wkey(at, "seed")).set_value(seed).run()
        button(at, "Start").click().run()
        finish(at)
    assert not at.exception and len(lab_of(at).runs) == 2
    builds: list[str] = []
    for module, name in ((compare.charts, "compare_figure"), (compare.flow_charts, "reach_figure")):
        real = getattr(module, name)

        def counted(*args, _real=real, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            builds.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    specs = {c.key: c.proto.spec for c in at.get("plotly_chart") if c.key.startswith("cmp-")}
    assert set(specs) == {"cmp-left", "cmp-right", "cmp-flow", "cmp-reach"}
    csv = lab_of(at).runs.newest().metrics_csv()
    for _ in range(3):
        at.run()
    assert builds == []  # three full reruns: nothing rebuilt, the same charts sent
    assert {c.key: c.proto.spec for c in at.get("plotly_chart") if c.key in specs} == specs
    assert lab_of(at).runs.newest().metrics_csv() is csv  # written once per run
    at.selectbox(key="compare_metric_left").set_value("Perplexity per minibatch").run()
    assert builds == ["compare_figure"]  # a new choice: that chart alone is built
    at.number_input(key=wkey(at, "seed")).set_value(7).run()
    assert builds == ["compare_figure"]
    at.query_params["lang"] = "zh"  # words are the reader's: kept per language
    at.run()
    assert not at.exception and sorted(builds) == sorted(["compare_figure"] * 3 + ["reach_figure"])
    left = next(c for c in at.get("plotly_chart") if c.key == "cmp-left")
    assert "困惑度" in json.loads(left.proto.spec)["layout"]["title"]["text"]  # perplexity
