"""Lab: one session's bench (job, telemetry, saved runs), driven without Streamlit."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator

import pandas as pd
import pytest

from dashboard.runs.saved import MAX_SAVED_RUNS, MIN_STEPS_KEPT, SavedRun
from dashboard.session.lab import Lab
from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.run import scheduling
from gru_core.run.lifecycle import ENDED
from gru_core.run.scheduling import SlotPool

from helpers import CHAOTIC, TINY_RUN, SyncRunner, wait_for

TINY = TrainConfig(**TINY_RUN, num_epochs=1000, device="cpu")


@pytest.fixture(autouse=True)
def _private_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Labs use the process-wide pool; give these tests their own, with room for two jobs."""
    monkeypatch.setattr(scheduling, "_POOL", SlotPool(2))


@pytest.fixture
def make_lab(small_corpus: Corpus) -> Iterator[Callable[[], Lab]]:
    """Labs that are closed afterwards, so no job thread outlives a test."""
    labs: list[Lab] = []

    def make() -> Lab:
        lab = Lab(corpus=small_corpus)
        labs.append(lab)
        return lab

    yield make
    jobs = [lab.job for lab in labs if lab.job is not None]
    for lab in labs:
        lab.close()
    assert not any(job.alive for job in jobs)


def start_and_stop(lab: Lab, config: TrainConfig = TINY, steps: int = MIN_STEPS_KEPT) -> SavedRun:
    job = lab.start(config, None)
    wait_for(job, lambda s: s.step >= steps)
    lab.stop()
    assert not job.alive
    newest = lab.runs.newest()
    assert newest is not None
    return newest


def test_start_runs_in_the_background_and_stop_saves_the_run(
    make_lab: Callable[[], Lab],
) -> None:
    lab = make_lab()
    assert not lab.active and not lab.runs
    job = lab.start(TINY, None)
    assert lab.job is job and job.alive
    wait_for(job, lambda s: s.step >= MIN_STEPS_KEPT)
    assert lab.active
    assert lab.snapshot().total_steps >= 3  # the lab's telemetry is the job's
    lab.stop()
    status = job.status()
    assert status.state == "stopped" and not job.alive and not lab.active
    assert len(lab.runs) == 1
    run = next(iter(lab.runs))
    name = run.name
    assert name.startswith("#1 GRU h16 std0.01 clip 1 T8") and name.endswith("(stopped)")
    assert run.config == run.start_config == TINY
    assert run.corpus_name == "filler.txt"
    assert run.outcome.status == "stopped" and run.outcome.step == status.step
    assert list(run.steps["step"]) == list(range(1, status.step + 1))
    lab.stop()  # stopping again saves nothing new
    assert len(lab.runs) == 1


def test_restart_stops_and_saves_the_previous_run(make_lab: Callable[[], Lab]) -> None:
    lab = make_lab()
    first = lab.start(TINY, None)
    wait_for(first, lambda s: s.step >= MIN_STEPS_KEPT)
    second = lab.start(TINY.replace(clip_threshold=None), None)
    assert first.status().state == "stopped" and not first.alive
    assert lab.job is second
    assert [run.outcome.status for run in lab.runs] == ["stopped"]
    wait_for(second, lambda s: s.step >= MIN_STEPS_KEPT)
    assert lab.telemetry is second.telemetry and lab.active
    lab.stop()
    names = lab.runs.names()
    assert len(names) == 2 and names[1].startswith("#2 GRU h16 std0.01 clip off")


def test_a_run_that_never_stepped_is_not_saved(make_lab: Callable[[], Lab]) -> None:
    lab = make_lab()
    lab.runner = SyncRunner()
    job = lab.start(TINY, None)
    assert job.status().state == "ready" and not lab.active
    lab.stop()
    assert not lab.runs


def test_a_short_run_is_kept_only_when_asked(make_lab: Callable[[], Lab]) -> None:
    """A Restart a moment after Start leaves no stub run behind, unless asked."""
    lab = make_lab()
    lab.runner = SyncRunner()
    lab.start(TINY, None).run_sync(MIN_STEPS_KEPT - 1)
    lab.stop()
    assert not lab.runs
    lab.keep_short = True
    lab.start(TINY, None).run_sync(1)
    lab.stop()
    assert [run.outcome.step for run in lab.runs] == [1]


def test_a_run_that_diverged_at_its_first_step_is_kept(make_lab: Callable[[], Lab]) -> None:
    lab = make_lab()
    lab.runner = SyncRunner()
    job = lab.start(TrainConfig(**{**CHAOTIC, "device": "cpu"}), None)
    status = job.run_sync(5)
    assert status.state == "diverged" and status.outcome is not None
    assert status.outcome.step == 1
    run = lab.runs.newest()  # saved by the job's end, with no stop and no page
    assert run is not None and run.verdict.kind == "diverged"
    assert run.name.endswith("(diverged)") and len(lab.runs) == 1


def test_pinned_runs_are_never_dropped(make_lab: Callable[[], Lab]) -> None:
    lab = make_lab()
    lab.runner = SyncRunner()
    for _ in range(2):
        lab.start(TINY, None).run_sync(MIN_STEPS_KEPT)
        lab.stop()
    first = lab.runs.names()[0]
    lab.runs.pin(first)
    for _ in range(MAX_SAVED_RUNS + 1):
        lab.start(TINY, None).run_sync(MIN_STEPS_KEPT)
        lab.stop()
    assert len(lab.runs) == MAX_SAVED_RUNS and lab.runs.names()[0] == first
    assert lab.runs.get(first).pinned  # type: ignore[union-attr]
    for name in lab.runs.names()[1:-1]:
        lab.runs.pin(name)
    with pytest.raises(ValueError, match="unpin one first"):
        lab.runs.pin(lab.runs.names()[-1])
    with pytest.raises(ValueError, match="no saved run"):
        lab.runs.pin("#99 nothing")


def test_at_most_eight_runs_are_kept_oldest_dropped(make_lab: Callable[[], Lab]) -> None:
    lab = make_lab()
    for _ in range(MAX_SAVED_RUNS + 2):
        start_and_stop(lab)
    assert len(lab.runs) == MAX_SAVED_RUNS == 8
    numbers = [run.number for run in lab.runs]
    assert numbers == list(range(3, 11))


def test_saved_run_downloads(make_lab: Callable[[], Lab]) -> None:
    lab = make_lab()
    config = TINY.replace(num_epochs=2, clip_threshold=None, init_std=0.05)
    job = lab.start(config, None)
    status = wait_for(job, lambda s: s.state in ENDED)
    job.join(10.0)
    assert status.state == "done"
    run = lab.runs.newest()  # saved by the job's end (the worker thread), once
    assert run is not None and run.verdict.kind in ("learned", "did not learn")
    assert run.name.endswith(f"({run.verdict.kind})")
    lab.stop()
    assert len(lab.runs) == 1  # at most once per job

    frame = pd.read_csv(io.BytesIO(run.metrics_csv()))
    assert len(frame) == status.step
    assert list(frame["step"]) == list(range(1, status.step + 1))
    assert {"loss", "grad_norm", "grad_norm_clipped", "train_perplexity"} <= set(frame.columns)
    # Epoch metrics sit on each epoch's last step only.
    with_epoch = frame[frame["train_perplexity"].notna()]
    assert list(with_epoch["step"]) == list(run.epochs["step"])
    assert list(with_epoch["epoch"]) == [1, 2]

    body = json.loads(run.config_json())
    assert TrainConfig.from_dict(body["config"]) == config
    assert TrainConfig.from_dict(body["start_config"]) == config
    assert body["config"]["clip_threshold"] is None
    assert body["corpus"] == "filler.txt"
    assert body["outcome"] == {
        "status": "done",
        "verdict": run.verdict.kind,
        "headline": run.verdict.headline,
        "step": status.step,
        "message": "finished 2 epochs",
    }


def test_reset_clears_the_current_run_but_keeps_saved_ones(
    make_lab: Callable[[], Lab],
) -> None:
    lab = make_lab()
    job = lab.start(TINY, None)
    wait_for(job, lambda s: s.step >= MIN_STEPS_KEPT)
    lab.reset()
    assert not job.alive and job.status().state == "stopped"
    assert lab.job is None and not lab.active
    snap = lab.snapshot()
    assert snap.total_steps == 0 and len(snap.steps) == 0 and len(snap.epochs) == 0
    assert snap.probe is None
    assert len(lab.runs) == 1  # the stopped run was saved before it was forgotten


def test_close_stops_a_running_job(make_lab: Callable[[], Lab]) -> None:
    lab = make_lab()
    job = lab.start(TINY, None)
    wait_for(job, lambda s: s.step >= 1)
    name = f"gru-job-{job._ticket}"
    assert any(t.name == name for t in threading.enumerate())
    lab.close()
    assert not job.alive and job.status().state == "stopped"
    assert lab.job is None and not lab.active
    assert not any(t.name == name for t in threading.enumerate())
    lab.close()  # twice is harmless


def test_two_sessions_are_independent(make_lab: Callable[[], Lab]) -> None:
    a, b = make_lab(), make_lab()
    job_a = a.start(TINY, None)
    job_b = b.start(TINY.replace(hidden_size=24), None)
    assert job_a is not job_b and a.telemetry is not b.telemetry
    wait_for(job_a, lambda s: s.step >= MIN_STEPS_KEPT)
    wait_for(job_b, lambda s: s.step >= MIN_STEPS_KEPT)

    a.stop()
    assert job_a.status().state == "stopped"
    assert b.active and job_b.alive
    before = job_b.status().step
    wait_for(job_b, lambda s: s.step >= before + 3)  # b keeps training
    assert len(a.runs) == 1 and not b.runs

    a.reset()
    assert b.snapshot().total_steps >= before + 3  # b's telemetry is untouched
    assert b.job is job_b
    b.stop()
    assert b.runs.names()[0].startswith("#1 GRU h24")
    assert len(a.runs) == 1 and len(b.runs) == 1
    run_b = next(iter(b.runs))
    assert run_b.config.hidden_size == 24


def test_a_saved_run_names_the_corpus_it_trained_on(make_lab: Callable[[], Lab]) -> None:
    lab = make_lab()
    job = lab.start(TINY, None)
    wait_for(job, lambda s: s.step >= MIN_STEPS_KEPT)
    # The learner uploads another text while the run is going; it is for the next run.
    assert lab.accept_upload(b"a different text about gardens and rain " * 100, "rain.txt")
    assert lab.corpus.name == "rain.txt" and job.corpus_name == "filler.txt"
    lab.stop()
    run = next(iter(lab.runs))
    assert run.corpus_name == job.corpus_name == "filler.txt"


def test_an_uploaded_text_generates_from_its_own_first_words(make_lab: Callable[[], Lab]) -> None:
    lab = make_lab()
    lab.runner = SyncRunner()
    text = "once upon a midnight dreary while i pondered weak and weary " * 60
    assert lab.accept_upload(text.encode(), "raven.txt")
    assert lab.corpus.prefix == "once upon a midnight"
    job = lab.start(TINY.replace(num_epochs=1), None)
    job.run_sync()
    epoch = job.telemetry.snapshot().last_epoch
    assert epoch is not None
    assert epoch.greedy_text.startswith("once upon a midnight")
    assert epoch.sampled_text.startswith("once upon a midnight")
    assert not epoch.greedy_text.startswith("time traveller")


class _SlowLaunch:
    """A runner whose launch waits for the test: a Start still building its job."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def launch(self, job: object, step_only: bool) -> None:
        self.entered.set()
        self.release.wait(5)

    def step(self, job: object) -> None:
        raise AssertionError("not used")


def test_a_page_run_waits_for_a_start_still_in_progress(small_corpus: Corpus) -> None:
    """Streamlit can begin the next run (a second click) while the Start callback is still
    in the old run's thread: the new run must see the job, not 'nothing is training'."""
    runner = _SlowLaunch()
    lab = Lab(corpus=small_corpus, runner=SyncRunner())
    lab.runner = runner  # type: ignore[assignment]
    starter = threading.Thread(target=lab.start, args=(TINY, None))
    starter.start()
    assert runner.entered.wait(5)
    assert not lab.settled(timeout_s=0.05)  # the page run waits...
    runner.release.set()
    assert lab.settled(timeout_s=5) and lab.job is not None  # ...and then sees the job
    starter.join(5)
    lab.close()


def test_the_memorised_advice_says_both_numbers_in_a_class_s_words() -> None:
    from dashboard.views.teaching import outcome_advice
    from gru_core.run.records import Outcome
    from gru_core.run.verdict import Evidence, judge

    d2l = TrainConfig()  # hidden 256, 500 epochs, lr 1, 10,000 training characters
    verdict = judge("done", Evidence.of([27.9, 1.05], None, [1.05], [7.1, 77.39]), 28)
    text = outcome_advice(verdict, Outcome("done", 4000), d2l)
    assert "knows the 10,000 training characters by heart" in text
    assert "worse than guessing: 77 vs 28" in text
    for tip in ("more text", "fewer epochs", "a smaller model", "the best epoch"):
        assert tip in text
    # Under |V| but far above its best: it says it got worse, with both numbers.
    verdict = judge("done", Evidence.of([27.9, 1.05], None, [1.05], [7.1, 20.0]), 28)
    text = outcome_advice(verdict, Outcome("done", 4000), d2l)
    assert "got worse as it trained on: 20 now, 7 at its best" in text


def test_the_status_line_says_when_the_next_step_uses_other_knobs_than_the_last() -> None:
    from dashboard.views.training import _pending_knobs
    from gru_core.run.job import JobState, JobStatus

    def status(clip: float | None, lr: float, used: dict | None) -> JobStatus:
        return JobStatus(
            JobState.PAUSED, 5, 1, 10, None, "CPU (1 thread)", clip, lr, None, None, None,
            last_step_knobs=used,
        )  # fmt: skip

    assert _pending_knobs(status(1.0, 1.0, None)) == ""  # no step yet
    assert _pending_knobs(status(1.0, 1.0, {"clip_threshold": 1.0, "lr": 1.0})) == ""
    changed = status(None, 0.5, {"clip_threshold": 1.0, "lr": 1.0})
    assert _pending_knobs(changed) == "the last step used clip 1, lr 1"
    assert _pending_knobs(status(0.1, 1.0, {"clip_threshold": None, "lr": 1.0})) == (
        "the last step used clip off"
    )
