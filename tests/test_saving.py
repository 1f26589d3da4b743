"""Nothing is lost (issue 20): a run is saved by its job's end, once, with no page rerun; the
plain address finds this browser's runs after a restart; the store's notices reach the page."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.runs.records import new_token
from dashboard.runs.saved import MIN_STEPS_KEPT, SavedRuns
from dashboard.runs.store import open_run_store
from dashboard.screens import lab as lab_page
from dashboard.screens import resources
from dashboard.session import sharing
from dashboard.session.lab import Lab
from dashboard.sidebar.room import TOKEN_COOKIE, remember_script
from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.run import scheduling
from gru_core.run.scheduling import SlotPool

from helpers import TINY_RUN, SyncRunner, wait_for

TINY = TrainConfig(**TINY_RUN, num_epochs=1000, device="cpu")
APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


@pytest.fixture(autouse=True)
def _private_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduling, "_POOL", SlotPool(2))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.sqlite3"


@pytest.fixture
def make_lab(small_corpus: Corpus, db: Path) -> Iterator[Callable[..., Lab]]:
    """Labs with a run store on ``db`` (background threads unless told), closed afterwards."""
    labs: list[Lab] = []

    def make(token: str | None = None, **kwargs: object) -> Lab:
        runs = SavedRuns(store=open_run_store(db), token=token or new_token())
        runs.load()
        lab = Lab(corpus=small_corpus, runs=runs, **kwargs)  # type: ignore[arg-type]
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.close()


def rows(db: Path) -> list[tuple[str, str]]:
    """(run_id, name) of every row in the file, as another process would read it."""
    with sqlite3.connect(db) as conn:
        found = conn.execute("SELECT run_id, name FROM runs ORDER BY seq").fetchall()
    conn.close()
    return found


def test_a_run_that_ends_with_no_page_and_no_stop_is_saved_once(
    make_lab: Callable[..., Lab], db: Path
) -> None:
    """A run finishes in its worker thread while nothing calls the lab (a stalled page, a
    closed laptop): the run is in the store, once, with the lab's run id and number."""
    lab = make_lab()
    job = lab.start(TINY.replace(num_epochs=2), None)
    job.join(120.0)
    assert not job.alive and job.status().state == "done"
    (saved,) = rows(db)
    run = lab.runs.newest()
    assert run is not None and saved == (run.run_id, run.name)
    assert run.name.startswith("#1 ") and run.outcome.status == "done"
    assert not lab.active  # ended and saved: the page's next run stops polling
    lab.stop()  # the page's Stop, a Restart and a closed tab after the end save nothing more
    lab.close()
    assert rows(db) == [saved] and len(lab.runs) == 1


@pytest.mark.parametrize("second", ["stop", "restart", "close"])
def test_two_racing_ends_save_one_row(make_lab: Callable[..., Lab], db: Path, second: str) -> None:
    """Two Stops at once (a double click, two reruns), or a Stop racing a Restart or a closed
    tab: each run is saved exactly once. Four times over, to give the race room."""
    lab = make_lab()
    others = {"stop": lab.stop, "restart": lambda: lab.start(TINY, None), "close": lab.close}
    jobs = []
    for _ in range(4):
        job = lab.start(TINY, None)
        jobs.append(job)
        wait_for(job, lambda s: s.step >= MIN_STEPS_KEPT)
        barrier = threading.Barrier(2)

        def end(call: Callable[[], object], barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            call()

        threads = [threading.Thread(target=end, args=(c,)) for c in (lab.stop, others[second])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60.0)
        assert not job.alive and job.status().state == "stopped"
        if lab.job is not None and lab.job is not job:
            jobs.append(lab.job)  # the Restart's job: stopped at the next Start
    lab.stop()
    kept = [j for j in jobs if j.status().step >= MIN_STEPS_KEPT]
    saved = rows(db)
    assert len(saved) == len(kept) and len({run_id for run_id, _ in saved}) == len(kept)
    assert [run.run_id for run in lab.runs] == [run_id for run_id, _ in saved]


def test_a_second_save_of_the_same_run_adds_nothing(make_lab: Callable[..., Lab], db: Path) -> None:
    lab = make_lab(runner=SyncRunner())
    lab.start(TINY, None).run_sync(MIN_STEPS_KEPT)
    lab.stop()
    run = lab.runs.newest()
    assert run is not None
    assert lab.runs.add(run) == [] and len(lab.runs) == 1 and len(rows(db)) == 1


def test_a_closed_tab_saves_its_running_run(make_lab: Callable[..., Lab], db: Path) -> None:
    lab = make_lab()
    job = lab.start(TINY, None)
    wait_for(job, lambda s: s.step >= MIN_STEPS_KEPT)
    lab.close()  # the session guard's release, after the grace period
    assert [name for _, name in rows(db)] == lab.runs.names()
    assert lab.runs.names()[0].endswith("(stopped)")


# -- the page: the plain address after a restart, the store's notices --------------------------
@pytest.fixture
def make_page(
    corpus_path: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str | None], AppTest]]:
    """A new app session on the plain address; ``cookie``: the bench token this browser
    remembers (AppTest cannot send cookies, so the page's reader is replaced)."""
    monkeypatch.setenv("GRU_LAB_CORPUS", corpus_path)
    monkeypatch.setenv("GRU_LAB_CLOSE_GRACE_S", "0.5")
    apps: list[AppTest] = []

    def make(cookie: str | None) -> AppTest:
        st.cache_resource.clear()  # a server restart: a new store object on the same file
        for module in (resources, lab_page):
            monkeypatch.setattr(module, "remembered_token", lambda: cookie)
        at = AppTest.from_file(str(APP), default_timeout=60)
        apps.append(at)
        return at

    yield make
    for at in apps:
        if "lab" in at.session_state:
            at.session_state["lab"].close()


def cookie_scripts(at: AppTest) -> list[str]:
    return [e.proto.srcdoc for e in at.sidebar if getattr(e, "type", None) == "iframe"]


def test_the_plain_address_finds_this_browsers_runs_after_a_restart(
    make_lab: Callable[..., Lab], make_page: Callable[[str | None], AppTest]
) -> None:
    # A first visit on the plain address: a fresh token, written into the URL and the cookie.
    first = make_page(None)
    first.run()
    assert not first.exception
    token = first.session_state["bench"]
    assert first.query_params["bench"] == token
    assert cookie_scripts(first) == [remember_script(token)]
    assert f"{TOKEN_COOKIE}={token}" in remember_script(token)
    assert any(f"?bench={token}" in c.value for c in first.sidebar.code)  # to bookmark
    assert any("Your runs" in m.value for m in first.sidebar.markdown)
    # That browser trains two runs (saved by their jobs' ends).
    lab = make_lab(token, runner=SyncRunner())
    for clip in (1.0, None):
        lab.start(TINY.replace(clip_threshold=clip), None).run_sync(MIN_STEPS_KEPT)
        lab.stop()
    names = lab.runs.names()
    # The server restarts; the same browser opens the plain address (no ?bench=).
    again = make_page(token)
    again.run()
    assert not again.exception
    assert again.session_state["bench"] == token and again.query_params["bench"] == token
    assert again.session_state["lab"].runs.names() == names
    assert again.multiselect(key="compare_runs").value == names[-2:]
    assert cookie_scripts(again) == []  # already remembered
    # Another browser's plain address sees none of them.
    other = make_page(None)
    other.run()
    assert other.session_state["bench"] != token and not other.session_state["lab"].runs


def test_a_damaged_database_is_told_once_and_a_failing_disk_while_it_lasts(
    make_page: Callable[[str | None], AppTest], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.write_bytes(b"")  # truncated while the previous server ran
    at = make_page(None)
    at.run()
    warnings = [w.value for w in at.sidebar.warning]
    assert any("empty (0 bytes)" in w and ".corrupt-" in w for w in warnings)
    at.run()
    assert not [w.value for w in at.sidebar.warning if "0 bytes" in w.value]  # once
    store = at.session_state["lab"].runs.store
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(store._primary, "busy_timeout_s", 0.1)
    try:
        at.session_state["lab"].runs.store.delete(at.session_state["bench"], "no-such-run")
        at.run()
        assert any("not reaching the disk" in w.value for w in at.sidebar.warning)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.delete(at.session_state["bench"], "no-such-run")  # the next write gets through
    at.run()
    assert not [w.value for w in at.sidebar.warning if "disk" in w.value]


def test_a_watcher_of_a_bench_back_after_a_restart_is_told_its_last_saved_run(
    make_lab: Callable[..., Lab],
    make_page: Callable[[str | None], AppTest],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = new_token()
    before = make_lab(token, runner=SyncRunner())
    before.start(TINY, None).run_sync(MIN_STEPS_KEPT)
    before.stop()
    st.cache_resource.clear()  # this test's server (an earlier test's registry is cached)
    link = resources.share_registry().share(before, owner="teacher")
    monkeypatch.setattr(sharing, "SERVER_STARTED", time.time() + 1)
    watcher = make_page(None)  # the server restarts: the share is known only to the store
    watcher.query_params["watch"] = link
    watcher.run()
    assert any("server restarted" in e.value for e in watcher.error)
    back = make_lab(token, runner=SyncRunner())  # the teacher opens their lab again
    assert resources.share_registry().resume(back, owner="teacher") == link
    watcher.run()
    assert not watcher.exception and not watcher.error
    (name,) = back.runs.names()
    assert any(name in i.value for i in watcher.info)
