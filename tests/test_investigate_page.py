"""The investigations page and the locks through AppTest: a step's one click applies its
settings (never undoing a teacher's lock), a lesson keeps a lock and says so, progress shows
and survives a new session of the same bench, and a student who forked a watched run goes on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from worksheet_sample import saved_run

from dashboard.investigate.evidence import MapCell, MapFact
from dashboard.runs.records import new_token
from dashboard.runs.saved import SavedRuns
from dashboard.runs.sqlite import SQLiteRunStore
from dashboard.session.lab import Lab
from dashboard.sidebar import controls as ctl
from gru_core.sources import load_corpus

from helpers import SyncRunner

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "dashboard" / "app.py"


def guide_first() -> None:
    """The app's three pages with the investigations first (AppTest opens the default)."""
    import streamlit as st

    from dashboard.screens.investigate import investigate_page
    from dashboard.screens.lab import lab_page
    from dashboard.screens.map import map_page

    guide = st.Page(investigate_page, title="Investigations", url_path="investigate", default=True)
    lab = st.Page(lab_page, title="Lab", url_path="lab")
    map_ = st.Page(map_page, title="Trainability map", url_path="map")
    st.session_state["_pages"] = {"lab": lab, "map": map_, "investigate": guide}
    st.navigation([guide, lab, map_]).run()


@pytest.fixture
def make_app(
    corpus_path: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., AppTest]]:
    monkeypatch.setenv("GRU_LAB_CORPUS", corpus_path)
    monkeypatch.setenv("GRU_LAB_CLOSE_GRACE_S", "0.5")
    monkeypatch.setenv("GRU_LAB_RUNS_DB", str(tmp_path / "runs.sqlite"))
    st.cache_resource.clear()
    apps: list[AppTest] = []

    def make(guide: bool = False, **query: str) -> AppTest:
        at = AppTest.from_function(guide_first, default_timeout=60) if guide else (
            AppTest.from_file(str(APP), default_timeout=60))  # fmt: skip
        at.session_state["lab"] = Lab(corpus=load_corpus(corpus_path), runner=SyncRunner())
        for key, value in query.items():
            at.query_params[key] = value
        apps.append(at)
        return at

    yield make
    for at in apps:
        if "lab" in at.session_state:
            at.session_state["lab"].close()


def value_of(at: AppTest, control: str) -> Any:
    for kind in ("slider", "select_slider", "toggle", "number_input", "radio"):
        for widget in getattr(at, kind):
            if widget.key and ctl.control_key(widget.key) == control:
                return widget.value
    raise AssertionError(f"no widget for {control}")


def test_a_lesson_never_undoes_a_lock_and_says_so(make_app: Callable[..., AppTest]) -> None:
    at = make_app(lock="lr")
    at.run()
    at.selectbox(key="lesson").select("Exploding gradients").run()
    assert not at.exception
    assert value_of(at, "lr") == 1.0  # the link's value, not the lesson's 5
    assert value_of(at, "init_std") == 0.1 and value_of(at, "clip_on") is False  # the rest applies
    notes = [w.value for w in at.warning if "Locked by your teacher's link" in w.value]
    assert notes and "Learning rate (log scale) stays at 1.0" in notes[0]
    assert at.selectbox(key="lesson").value == "Exploding gradients"  # still the lesson
    at.run()
    assert at.selectbox(key="lesson").value == "Exploding gradients"


def test_without_a_lock_the_lesson_sets_everything(make_app: Callable[..., AppTest]) -> None:
    at = make_app()
    at.run()
    at.selectbox(key="lesson").select("Exploding gradients").run()
    assert value_of(at, "lr") == 5.0
    assert not [w for w in at.warning if "Locked" in w.value]


def test_the_page_lists_the_investigations_and_a_step_applies_in_one_click(
    make_app: Callable[..., AppTest],
) -> None:
    at = make_app(guide=True, lock="init_std")
    at.run()
    assert not at.exception
    summary = " ".join(m.value for m in at.markdown)
    for title in ("Does a GRU need a higher clip threshold", "Why init std 0.01?",
                  "Is ~100 steps the practical limit", "Half a GRU"):  # fmt: skip
        assert title in summary
    assert summary.count("0 of 4 steps") == 2 and summary.count("0 of 3 steps") == 2
    assert any(
        "Still missing: a map of clip θ × init std at hidden 256" in i.value for i in at.info
    )
    # step 2 of the clip investigation: the RNN at init std 0.1, θ 10, in the lab
    next(b for b in at.button if b.key == "apply_clip.2").click().run()
    assert not at.exception
    assert value_of(at, "model") == "RNN" and value_of(at, "clip") == 10.0
    assert value_of(at, "hidden") == 256
    assert value_of(at, "init_std") == 0.01  # locked by the link: the step left it
    assert any("Locked by your teacher's link" in w.value for w in at.warning)
    banner = " ".join(m.value for m in at.markdown)
    assert "Investigation:" in banner and "Does a GRU need a higher clip threshold" in banner


def test_a_map_step_fills_the_map_page(make_app: Callable[..., AppTest]) -> None:
    at = make_app(guide=True)
    at.run()
    at.radio(key="investigation").set_value("init").run()
    next(b for b in at.button if b.key == "apply_init.1").click().run()
    assert not at.exception
    assert at.selectbox(key="map_x").value == "init_std"
    assert at.multiselect(key="map_xv").value == [0.001, 0.01, 0.1, 1.0]
    assert at.multiselect(key="map_models").value == ["GRU", "RNN"]
    assert at.number_input(key="map_hidden").value == 256


def test_progress_shows_and_a_new_session_of_the_bench_keeps_it(
    make_app: Callable[..., AppTest],
) -> None:
    token = new_token()
    at = make_app(guide=True, bench=token)
    at.run()
    book = at.session_state["_progress_book"]
    cells = tuple(
        MapCell(m, x, y, "learned", 5.0) for m in ("gru", "rnn")
        for x in (0.1, 1.0, 10.0, None) for y in (0.01, 0.1)
    )  # fmt: skip
    book.add_map(MapFact("clip_threshold", "init_std", ("gru", "rnn"), 256, 35, 10, cells))
    at.text_area(key="answer_clip").input("The GRU did not need a higher threshold.").run()
    at.run()
    assert any("GRU: trained in 8 of 8 cells" in s.value for s in at.success)
    again = make_app(guide=True, bench=token)  # a reload: a new session, the same bench
    again.run()
    assert again.text_area(key="answer_clip").value == "The GRU did not need a higher threshold."
    assert any("GRU: trained in 8 of 8 cells" in s.value for s in again.success)
    assert "2 of 4 steps" in " ".join(m.value for m in again.markdown)  # the map, the answer


def test_a_student_who_forked_a_watched_run_goes_on_with_the_investigation(
    make_app: Callable[..., AppTest], corpus_path: str
) -> None:
    from dashboard.screens.resources import share_registry

    teacher = Lab(corpus=load_corpus(corpus_path), runner=SyncRunner())
    teacher.start(ctl.config_from_values({**ctl.defaults(), "hidden": 32, "steps": 10}), None)
    token = share_registry().share(teacher, owner="the-teacher")
    try:
        bench = new_token()
        student = make_app(guide=True, bench=bench)
        student.run()
        student.radio(key="investigation").set_value("bptt").run()  # the student's progress
        student.session_state["_progress_book"].mark_done("bptt.1", "GRU, T = 35: reached")
        watcher = make_app(watch=token, bench=bench)  # the watch link, in the same browser
        watcher.run()
        fork = next(b for b in watcher.button if b.label.startswith("Fork"))
        fork.click().run()
        assert not watcher.exception and "watch" not in watcher.query_params
        assert value_of(watcher, "hidden") == 32 and value_of(watcher, "steps") == 10
        banner = " ".join(m.value for m in watcher.markdown)
        assert "Is ~100 steps the practical limit" in banner  # the investigation goes on
        assert "Step 2: A long window: T = 280" in banner and "1 of 4 done" in banner
    finally:
        teacher.close()


def test_a_run_another_session_of_the_bench_saved_later_counts(
    make_app: Callable[..., AppTest], corpus_path: str, tmp_path: Path
) -> None:
    """The clip walk's step 3 (measured in the browser): the lab left for a new page while the
    GRU's clip-off run was ending; that run reached the store when the old session closed,
    after the new session had loaded the bench's runs. The check must still see it."""
    bench = new_token()
    store = SQLiteRunStore(tmp_path / "runs.sqlite")  # the file the app's run_store opens
    at = make_app(guide=True, bench=bench)
    at.session_state["lab"] = Lab(
        corpus=load_corpus(corpus_path),
        runner=SyncRunner(),
        runs=SavedRuns(store=store, token=bench),
    )
    at.run()
    at.radio(key="investigation").set_value("clip").run()
    gru = {"model": "gru", "init_std": 0.1, "hidden_size": 256}
    at.session_state["lab"].runs.add(saved_run(2, 1, clip_threshold=1.0, **gru))  # this tab's
    SavedRuns(store=store, token=bench).add(saved_run(1, 0, clip_threshold=None, **gru))  # the old
    at.run()
    assert not at.exception
    said = " ".join(s.value for s in at.success)
    assert "θ 1: learned" in said and "θ off: learned" in said, said
    assert not any("two θ values" in i.value for i in at.info)


def _progress_polls(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The ``run_every`` of each declaration of the investigations page's progress fragment."""
    seen: list[float | None] = []
    real = st.fragment

    def fragment(func: Callable[..., Any] | None = None, **kw: Any) -> Any:
        if func is not None and func.__name__ == "progress":
            seen.append(kw.get("run_every"))
        return real(func, **kw) if func else real(**kw)

    monkeypatch.setattr(st, "fragment", fragment)
    return seen


def test_a_run_another_session_ends_while_the_page_is_open_ticks_its_step(
    make_app: Callable[..., AppTest],
    corpus_path: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race: the student comes back to the page while a run of the bench is still
    training in another session (a page left for a new one); that run is saved after the page
    drew. The page must not wait for a click: while the run is in flight its progress is a
    fragment on a timer (AppTest never fires the timer: ``at.run()`` stands for its next run),
    and once nothing is in flight it stops polling, the step done with the run's numbers."""
    from dashboard.screens.investigate import POLL_S
    from dashboard.screens.resources import bench_work

    polls = _progress_polls(monkeypatch)
    bench = new_token()
    store = SQLiteRunStore(tmp_path / "runs.sqlite")  # the file the app's run_store opens
    at = make_app(guide=True, bench=bench)
    at.session_state["lab"] = Lab(
        corpus=load_corpus(corpus_path),
        runner=SyncRunner(),
        runs=SavedRuns(store=store, token=bench),
    )
    at.run()
    at.radio(key="investigation").set_value("clip").run()
    assert polls and polls[-1] is None  # nothing in flight: drawn once

    other = Lab(  # the old session's lab, still training when this page loaded
        corpus=load_corpus(corpus_path),
        runner=SyncRunner(),
        runs=SavedRuns(store=store, token=bench),
    )
    bench_work().add(bench, other)
    tiny = ctl.config_from_values({**ctl.defaults(), "hidden": 16, "steps": 10, "epochs": 1})
    other.start(tiny, None).run_sync(1)
    assert other.active
    at.run()
    assert not at.exception
    assert polls[-1] == POLL_S and 1.0 <= POLL_S <= 2.0  # in flight: the progress polls
    assert any("two θ values" in i.value for i in at.info)  # step 3 not done yet

    gru = {"model": "gru", "init_std": 0.1, "hidden_size": 256}
    other.runs.add(saved_run(1, 0, clip_threshold=None, **gru))  # saved after the page drew
    other.runs.add(saved_run(2, 1, clip_threshold=1.0, **gru))
    other.job.run_sync(10_000)  # the old session's run ends (and is saved by its end)
    assert not other.active
    at.run()  # the fragment's next run
    assert not at.exception
    said = " ".join(s.value for s in at.success)
    assert "θ 1: learned" in said and "θ off: learned" in said, said
    assert polls[-1] is None  # nothing in flight any more: polling stopped
    other.close()


def test_a_map_that_ends_while_the_student_reads_the_page_ticks_its_step(
    make_app: Callable[..., AppTest],
    small_corpus: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The map of 'Why init std 0.01?' step 2, started on the map page, still running when
    the student went back to the investigation: the page polls while it runs, records it
    when it has ended and ticks the step, without a visit to the map page."""
    from dashboard.screens.investigate import POLL_S
    from gru_core.config import TrainConfig
    from gru_core.sweep.job import SweepJob
    from gru_core.sweep.spec import SweepSpec

    polls = _progress_polls(monkeypatch)
    at = make_app(guide=True)
    base = TrainConfig(hidden_size=32, num_steps=10, batch_size=4, max_tokens=2000,
                       val_tokens=500, num_epochs=1, device="cpu")  # fmt: skip
    spec = SweepSpec("init_std", (0.01, 0.1, 1.0), "clip_threshold", (1.0,), base, 1, ("gru",))
    sweep = SweepJob(spec, small_corpus, device="cpu")
    at.session_state["sweep"] = sweep  # started on the map page (not yet ended)
    at.run()
    at.radio(key="investigation").set_value("init").run()
    assert not at.exception
    assert polls[-1] == POLL_S
    missing = [i.value for i in at.info if i.value.startswith("Still missing: a map of")]
    assert any("at hidden 32" in m for m in missing), missing
    sweep.run_sync()  # the map ends while the page is open
    at.run()  # the fragment's next run
    assert not at.exception
    maps = at.session_state["_progress_book"].progress.maps
    assert [m.hidden for m in maps] == [32]  # recorded here, the map page never reopened
    assert any("GRU: trained in" in s.value for s in at.success), [s.value for s in at.success]
    assert not any("at hidden 32" in i.value for i in at.info)
    assert polls[-1] is None
