"""The room: teacher links (hide / lock), sharing one run read-only, the watcher cap."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.runs.records import new_token
from dashboard.runs.saved import SavedRuns
from dashboard.runs.store import open_run_store
from dashboard.screens import watch
from dashboard.session.lab import Lab
from dashboard.session.sharing import ShareRegistry, WatchError
from dashboard.sidebar import controls as ctl
from dashboard.sidebar import lessons
from dashboard.sidebar.room import parse_keys, student_link
from gru_core.data import Corpus

from helpers import SyncRunner


def test_hide_and_lock_name_controls_and_warn_about_others() -> None:
    keys, warnings = parse_keys("clip_on, clip,bogus,", "hide")
    assert keys == {"clip_on", "clip"}
    assert warnings == ["ignored `hide=bogus` in the URL: no control is called 'bogus'"]
    assert parse_keys(None, "lock") == (frozenset(), [])


def test_a_student_link_carries_settings_hide_lock_and_never_the_token() -> None:
    values = {**ctl.defaults(), "lr": 5.0, "clip_on": False}
    url = student_link(
        "http://class.example:8501/?bench=SECRET_TOKEN_1234567&lr=1", values,
        ["seed", "device"], ["lr", "seed"], projector=True,
    )  # fmt: skip
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "class.example:8501", "/")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "lr": "5", "clip_on": "false", "hide": "seed,device", "lock": "lr", "projector": "1",
    }  # fmt: skip
    assert "SECRET" not in url


@pytest.mark.parametrize("lesson", lessons.LESSONS, ids=lambda lesson: lesson.name)
def test_lesson_suggestions_name_real_controls(lesson: lessons.Lesson) -> None:
    assert set(lesson.hide) <= set(ctl.BY_KEY) and set(lesson.lock) <= set(ctl.BY_KEY)
    assert not set(lesson.hide) & set(lesson.lock)


def test_a_shared_lab_is_watched_read_only_and_only_its_owner_stops_it(
    small_corpus: Corpus,
) -> None:
    registry = ShareRegistry(max_watchers=2)
    lab = Lab(corpus=small_corpus, runner=SyncRunner())
    token = registry.share(lab, owner="teacher-secret")
    assert registry.share(lab, owner="teacher-secret") == token  # one token per lab
    assert len(token) >= 20
    assert registry.watch(token, "student-1") is lab
    assert registry.watch(token, "student-2") is lab
    assert registry.watch(token, "student-1") is lab  # a refresh is not a new watcher
    with pytest.raises(WatchError, match="already has 2 watchers"):
        registry.watch(token, "student-3")
    registry.leave(token, "student-2")
    assert registry.watch(token, "student-3") is lab and registry.watchers(token) == 2
    assert not registry.stop(token, owner="student-1")  # a watcher cannot end it
    assert registry.token_of(lab) == token
    assert registry.stop(token, owner="teacher-secret")
    with pytest.raises(WatchError, match="not valid"):
        registry.watch(token, "student-1")


def test_a_wrong_token_or_a_closed_owner_says_so(small_corpus: Corpus) -> None:
    registry = ShareRegistry()
    with pytest.raises(WatchError, match="not valid"):
        registry.watch("no-such-token", "w")
    lab = Lab(corpus=small_corpus, runner=SyncRunner())
    token = registry.share(lab, owner="o")
    lab.close()  # the teacher's tab went away
    with pytest.raises(WatchError, match="not valid"):
        registry.watch(token, "w")


def test_the_watcher_cap_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRU_LAB_MAX_WATCHERS", "3")
    assert ShareRegistry().max_watchers == 3
    monkeypatch.setenv("GRU_LAB_MAX_WATCHERS", "zero")
    with pytest.raises(ValueError, match="GRU_LAB_MAX_WATCHERS"):
        ShareRegistry()


def test_a_crowd_of_watchers_redraws_less_often() -> None:
    from dashboard.screens.watch import WATCH_REDRAWS_PER_S, watch_interval

    few = int(2.0 * WATCH_REDRAWS_PER_S)  # as many as 2 s redraws keep within the budget
    assert watch_interval(1) == watch_interval(few) == 2.0 < watch_interval(few + 1)
    assert watch_interval(40) == pytest.approx(40 / WATCH_REDRAWS_PER_S)
    assert 40 / watch_interval(40) <= WATCH_REDRAWS_PER_S  # the room's total stays bounded


def test_a_watcher_gets_a_new_interval_once_the_room_changed_enough() -> None:
    """The interval a watcher was given when it joined is renewed when the crowd has grown
    or shrunk by more than the slack (30 joining at once: the first ones were told 2 s)."""
    assert watch.interval_is_stale(2.0, 30)  # 6 s now
    assert not watch.interval_is_stale(watch.watch_interval(26), 30)  # within the slack
    assert watch.interval_is_stale(watch.watch_interval(40), 3)  # the room emptied
    assert not watch.interval_is_stale(2.0, 1)


# -- issue 20: watch links outlive a restart ---------------------------------------------------
def _bench(corpus: Corpus, db: object, token: str) -> Lab:
    runs = SavedRuns(store=open_run_store(db), token=token)  # type: ignore[arg-type]
    return Lab(corpus=corpus, runner=SyncRunner(), runs=runs)


def test_a_watch_link_tells_the_truth_after_a_restart_and_follows_the_bench_back(
    small_corpus: Corpus, tmp_path: Path
) -> None:
    db, bench = tmp_path / "runs.sqlite3", new_token()
    before = ShareRegistry(store=open_run_store(db), started=time.time() - 60)
    link = before.share(_bench(small_corpus, db, bench), owner="teacher")
    # The server restarts: a new registry and store on the same file, started after the share.
    after = ShareRegistry(store=open_run_store(db), started=time.time() + 1)
    with pytest.raises(WatchError, match="the server restarted at .* works again as soon"):
        after.watch(link, "student")
    with pytest.raises(WatchError, match="not valid"):
        after.watch(new_token(), "student")  # never shared: as before
    # The teacher opens their lab again (the same browser token): the old link works.
    back = _bench(small_corpus, db, bench)
    assert after.resume(back, owner="teacher-2") == link
    assert after.watch(link, "student") is back and after.token_of(back) == link
    assert after.resume(_bench(small_corpus, db, new_token()), owner="x") is None
    # The teacher's tab closes: the link says so, and comes back with the lab.
    back.close()
    with pytest.raises(WatchError, match="lab has been closed since"):
        after.watch(link, "student")
    again = _bench(small_corpus, db, bench)
    assert after.resume(again, owner="teacher-3") == link
    assert after.watch(link, "student") is again
    # Stopping the share ends the link for good, restarts included.
    assert after.stop(link, owner="teacher-3")
    restarted = ShareRegistry(store=open_run_store(db), started=time.time() + 2)
    with pytest.raises(WatchError, match="not valid"):
        restarted.watch(link, "student")
    assert restarted.resume(_bench(small_corpus, db, bench), owner="teacher") is None


def test_sharing_again_ends_the_benchs_older_link(small_corpus: Corpus, tmp_path: Path) -> None:
    db, bench = tmp_path / "runs.sqlite3", new_token()
    first = ShareRegistry(store=open_run_store(db), started=time.time() - 60)
    old = first.share(_bench(small_corpus, db, bench), owner="teacher")
    second = ShareRegistry(store=open_run_store(db), started=time.time() + 1)
    new = second.share(_bench(small_corpus, db, bench), owner="teacher")
    assert new != old
    with pytest.raises(WatchError, match="not valid"):
        second.watch(old, "student")
