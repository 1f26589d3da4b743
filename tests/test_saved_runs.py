"""Saved runs: names, pins, and runs that outlive a reload or a server restart (run store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.runs.records import new_token
from dashboard.runs.saved import (
    MAX_SAVED_RUNS,
    MIN_STEPS_KEPT,
    SavedRuns,
    from_stored,
    run_name,
    to_stored,
)
from dashboard.runs.store import open_run_store
from dashboard.session.lab import Lab
from gru_core.config import TrainConfig
from gru_core.data import Corpus

from helpers import SyncRunner

TINY = TrainConfig(
    hidden_size=16, num_steps=8, batch_size=4, max_tokens=2000, val_tokens=500, num_epochs=50,
    device="cpu",
)  # fmt: skip


def lab_with_store(corpus: Corpus, db: Path, token: str) -> Lab:
    runs = SavedRuns(store=open_run_store(db), token=token)
    runs.load()
    return Lab(corpus=corpus, runner=SyncRunner(), runs=runs)


def train_and_save(lab: Lab, config: TrainConfig = TINY) -> None:
    lab.start(config, None).run_sync(MIN_STEPS_KEPT + 2)
    lab.stop()


def test_a_name_shows_live_changes_as_old_to_new() -> None:
    start = TrainConfig(init_std=0.1, lr=5.0, hidden_size=128)
    assert run_name(3, start, start.replace(clip_threshold=None), "blew up") == (
        "#3 GRU h128 std0.1 clip 1→off lr 5 T35 (blew up)"
    )
    assert (
        run_name(1, TrainConfig(), TrainConfig(), "learned")
        == "#1 GRU h256 std0.01 clip 1 T35 (learned)"
    )


def test_a_saved_run_round_trips_through_the_store_format(small_corpus: Corpus) -> None:
    lab = Lab(corpus=small_corpus, runner=SyncRunner())
    train_and_save(lab)
    run = lab.runs.newest()
    assert run is not None
    back = from_stored(to_stored(run))
    assert (back.name, back.number, back.run_id, back.pinned) == (
        run.name, run.number, run.run_id, run.pinned,
    )  # fmt: skip
    assert back.start_config == run.start_config and back.config == run.config
    assert back.verdict == run.verdict and back.outcome == run.outcome
    assert back.steps.equals(run.steps) and list(back.epochs.columns) == list(run.epochs.columns)
    # The last gradient-flow row travels too (Compare's reach): t = 1..T, no padding.
    assert len(run.flow_last) == TINY.num_steps and back.flow_last == run.flow_last


def test_runs_outlive_a_reload_and_a_server_restart(small_corpus: Corpus, tmp_path: Path) -> None:
    db, token = tmp_path / "runs.sqlite3", new_token()
    first = lab_with_store(small_corpus, db, token)
    train_and_save(first)
    train_and_save(first, TINY.replace(clip_threshold=None))
    first.runs.pin(first.runs.names()[0])
    names = first.runs.names()
    # A reload (F5): a new session with the same token, same server process.
    again = lab_with_store(small_corpus, db, token)
    assert again.runs.names() == names and next(iter(again.runs)).pinned
    # A server restart: a new store object on the same file.
    restarted = lab_with_store(small_corpus, db, token)
    assert restarted.runs.names() == names
    assert [len(r.flow_last) for r in restarted.runs] == [TINY.num_steps] * 2
    # The run counter goes on after the restored runs.
    train_and_save(restarted)
    assert restarted.runs.names()[-1].startswith("#3 ")
    # Another browser sees none of them.
    assert not lab_with_store(small_corpus, db, new_token()).runs


def test_the_store_keeps_the_same_bound_and_pins(small_corpus: Corpus, tmp_path: Path) -> None:
    db, token = tmp_path / "runs.sqlite3", new_token()
    lab = lab_with_store(small_corpus, db, token)
    train_and_save(lab)
    pinned = lab.runs.names()[0]
    lab.runs.pin(pinned)
    for _ in range(MAX_SAVED_RUNS + 1):
        train_and_save(lab)
    reloaded = lab_with_store(small_corpus, db, token)
    assert reloaded.runs.names() == lab.runs.names()
    assert len(reloaded.runs) == MAX_SAVED_RUNS and reloaded.runs.names()[0] == pinned


def test_a_corrupt_database_is_kept_aside_and_the_lab_still_works(
    small_corpus: Corpus, tmp_path: Path
) -> None:
    db = tmp_path / "runs.sqlite3"
    db.write_bytes(b"this is not a database" * 100)
    lab = lab_with_store(small_corpus, db, new_token())
    assert lab.runs.notice and "damaged" in lab.runs.notice
    assert list(tmp_path.glob("runs.sqlite3.corrupt-*"))
    train_and_save(lab)
    assert len(lab.runs) == 1


@pytest.mark.parametrize("token", ["", "short", "../../etc/passwd", "x" * 200])
def test_a_malformed_token_keys_nothing(small_corpus: Corpus, tmp_path: Path, token: str) -> None:
    with pytest.raises(ValueError, match="token"):
        open_run_store(tmp_path / "runs.sqlite3").list_runs(token)


def test_refresh_takes_in_what_another_session_of_the_bench_saved_since(
    small_corpus: Corpus, tmp_path: Path
) -> None:
    """Two tabs of one bench: the second loaded before the first's run reached the store;
    refresh brings that run in (once), in order of creation, and keeps its own runs."""
    token, db = new_token(), tmp_path / "runs.sqlite3"
    first, second = lab_with_store(small_corpus, db, token), lab_with_store(small_corpus, db, token)
    train_and_save(first)
    train_and_save(second)
    assert len(second.runs) == 1  # loaded before the first tab's run was saved
    assert second.runs.refresh() == 1 and second.runs.refresh() == 0
    ours, theirs = second.runs.newest(), first.runs.newest()
    assert theirs is not None and ours is not None
    assert [r.run_id for r in second.runs] == [theirs.run_id, ours.run_id]
    assert ours.weights is not None  # the session's own run keeps its weights in memory
