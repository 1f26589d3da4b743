"""Reliability: bad uploads, memory limits, closed tabs, and sessions kept apart."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dashboard.runs.saved import MIN_STEPS_KEPT
from dashboard.session.lab import CloseOnRelease, Lab
from gru_core.config import TrainConfig
from gru_core.data import corpus_from_text
from gru_core.limits import BUDGET_ENV, check_memory, estimate_bytes
from gru_core.run.job import TrainingJob
from gru_core.run.scheduling import SlotPool
from gru_core.sources import load_corpus

from helpers import SyncRunner

REPO = Path(__file__).resolve().parents[1]
TINY = TrainConfig(
    hidden_size=16, num_steps=8, batch_size=4, max_tokens=2000, val_tokens=300, num_epochs=2
)
ENGLISH = "the time traveller smiled and we all looked at the lamp in the room " * 60

BAD_UPLOADS = {
    "empty": (b"", "empty"),
    "png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "PNG"),
    "latin-1": ("caf\xe9 au lait ".encode("latin-1") * 50, "UTF-8"),
    "digits": (b"0123456789 " * 300, "letters"),
    "chinese": ("时间旅行者".encode() * 300, "letters"),
    "too big": (b"a" * (6 * 2**20), "limit"),
}


@pytest.fixture
def lab() -> Lab:
    return Lab(corpus=corpus_from_text(ENGLISH, "english.txt"))


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_bad_upload_is_refused_and_keeps_corpus_and_runs(lab: Lab, case: str) -> None:
    lab.runner = SyncRunner()
    lab.start(TINY, None).run_sync(MIN_STEPS_KEPT)
    lab.stop()
    before_corpus, before_runs = lab.corpus, lab.runs.names()
    data, words = BAD_UPLOADS[case]
    with pytest.raises(ValueError, match=words):
        lab.accept_upload(data, "notes.txt")
    # offered again on the next rerun: the same message, no reprocessing surprises
    with pytest.raises(ValueError, match=words):
        lab.accept_upload(data, "notes.txt")
    assert lab.corpus is before_corpus
    assert lab.runs.names() == before_runs and len(lab.runs) == 1


def test_upload_with_path_characters_is_only_a_display_name(lab: Lab) -> None:
    message = lab.accept_upload(ENGLISH.encode(), "../../etc/passwd.txt")
    assert message is not None and lab.corpus.source == "upload"
    assert "/" not in lab.corpus.name and ".." not in lab.corpus.name
    assert lab.accept_upload(ENGLISH.encode(), "../../etc/passwd.txt") is None  # same file


def test_utf16_upload_is_decoded_and_says_so(lab: Lab) -> None:
    lab.accept_upload(ENGLISH.encode("utf-16"), "wide.txt")
    assert lab.corpus.name == "wide.txt" and "UTF-16" in lab.corpus.reason


def test_memory_estimate_refuses_huge_configs_with_numbers(monkeypatch) -> None:
    big = TrainConfig(hidden_size=1024, num_steps=500, batch_size=256)
    parts = estimate_bytes(big, 28)
    assert parts["activations kept for backprop"] > 2**30
    with pytest.raises(ValueError, match=r"needs about [\d.,]+ GB.*budget of 4.0 GB"):
        check_memory(big, 28, "cpu")
    assert check_memory(TrainConfig(), 28, "cpu") < 200 * 2**20  # d2l's run is small
    monkeypatch.setenv(BUDGET_ENV, "1")
    with pytest.raises(ValueError, match="budget of 1 MB"):
        check_memory(TrainConfig(), 28, "cpu")
    for junk in ("lots", "inf", "-inf", "nan", "-5", "0"):  # inf once overflowed int()
        monkeypatch.setenv(BUDGET_ENV, junk)
        with pytest.raises(ValueError, match=BUDGET_ENV):
            check_memory(TrainConfig(), 28, "cpu")


def test_memory_estimate_is_an_upper_bound_of_what_a_step_allocates() -> None:
    """Measured: the tensors a training step keeps alive fit inside the estimate."""
    from gru_core.model.cells import build_model
    from gru_core.step.fused import loss_and_grads

    cfg = TrainConfig(hidden_size=128, num_steps=50, batch_size=16)
    model = build_model(cfg, 28)
    X = torch.randint(0, 28, (16, 50))
    res = loss_and_grads(model, X, X, model.init_state(16), want_flow=True)
    kept = sum(t.numel() * t.element_size() for t in res.grads.values())
    kept += sum(g.untyped_storage().nbytes() for g in res.gates.values())
    assert kept < sum(estimate_bytes(cfg, 28).values())


def test_closed_tab_stops_its_job_after_the_grace_period(lab: Lab) -> None:
    job = lab.start(TINY.replace(num_epochs=10_000), max_steps_per_sec=20)
    guard = CloseOnRelease(lab, grace_s=0.2)
    guard.release()  # what Streamlit does when the websocket goes away
    deadline = time.time() + 10
    while job.alive and time.time() < deadline:
        time.sleep(0.05)
    assert not job.alive and job.status().state == "stopped"


def test_reconnect_within_grace_keeps_the_job(lab: Lab) -> None:
    job = lab.start(TINY.replace(num_epochs=10_000), max_steps_per_sec=20)
    CloseOnRelease(lab, grace_s=0.3).release()
    CloseOnRelease(lab, grace_s=0.3)  # the session came back: a new guard cancels the close
    time.sleep(0.6)
    assert job.alive
    lab.close()
    assert not job.alive


def test_many_sessions_queue_visibly_and_all_finish() -> None:
    pool = SlotPool(2)
    corpus = corpus_from_text(ENGLISH, "english.txt")
    jobs = [TrainingJob(TINY, corpus, pool=pool) for _ in range(5)]
    for job in jobs:
        job.start()
    time.sleep(0.2)
    states = [j.status() for j in jobs]
    queued = [s for s in states if s.state == "queued"]
    assert pool.running <= 2
    assert all(s.queue_position is not None for s in queued)
    for job in jobs:
        job.join(60)
    assert [j.status().state for j in jobs] == ["done"] * 5
    assert not [t for t in threading.enumerate() if t.name.startswith("gru-job-")]


def _app(monkeypatch, tmp_path: Path) -> AppTest:
    text = tmp_path / "english.txt"
    text.write_text(ENGLISH * 3)
    monkeypatch.setenv("GRU_LAB_CORPUS", str(text))
    import streamlit as st

    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=60)
    at.session_state["lab"] = Lab(corpus=load_corpus(text), runner=SyncRunner())
    return at


def test_two_sessions_cannot_see_each_others_jobs(monkeypatch, tmp_path: Path) -> None:
    a, b = _app(monkeypatch, tmp_path), _app(monkeypatch, tmp_path)
    for at in (a, b):
        at.query_params.update(hidden="16", steps="8", batch="4", epochs="2")
        at.run()
    next(btn for btn in a.button if btn.label == "Start").click().run()
    a.session_state["lab"].job.run_sync(3)
    a.run()
    b.run()
    lab_a, lab_b = a.session_state["lab"], b.session_state["lab"]
    assert lab_a is not lab_b
    assert lab_a.job is not None and lab_a.job.status().step == 3
    assert lab_b.job is None and lab_b.snapshot().total_steps == 0
    assert not b.exception


def test_oversized_config_gets_a_message_not_a_crash(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(BUDGET_ENV, "50")  # a small machine's budget, in MB
    at = _app(monkeypatch, tmp_path)
    at.query_params.update(hidden="1024")
    at.run()
    next(btn for btn in at.button if btn.label == "Start").click().run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "Can't start" in errors and "needs about" in errors and "budget" in errors
    assert at.session_state["lab"].job is None


def test_hostile_url_values_are_ignored_with_warnings(monkeypatch, tmp_path: Path) -> None:
    at = _app(monkeypatch, tmp_path)
    at.query_params.update(
        hidden="1e309",
        clip="-5",
        steps="NaN",
        lr="abc",
        epochs="99999999999",
        model="<script>",
        corpus="/etc/passwd",
    )
    at.run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    for key in ("hidden", "clip", "steps", "lr", "epochs", "model"):
        assert f"`{key}=" in warnings
    assert "corpus" not in warnings  # not a setting: never read, never opened
    assert at.slider(key="hidden").value == 256
    assert "english.txt" in " ".join(m.value for m in at.markdown)


def test_saved_runs_weights_count_against_the_memory_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = TrainConfig(hidden_size=64, device="cpu")
    need = check_memory(config, 28, "cpu")
    monkeypatch.setenv(BUDGET_ENV, str((need + 10_000) / 2**20))
    assert check_memory(config, 28, "cpu") == need
    with pytest.raises(ValueError, match="saved runs' weights"):
        check_memory(config, 28, "cpu", held_bytes=10 * 2**20)
