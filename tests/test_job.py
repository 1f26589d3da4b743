"""TrainingJob: a run in a background thread, its controls, live knobs, queue and endings."""

from __future__ import annotations

import gc
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest
import torch

from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.i18n import language_scope, worded
from gru_core.run import scheduling as job_module
from gru_core.run.job import TrainingJob
from gru_core.run.lifecycle import ENDED
from gru_core.run.scheduling import SlotPool, cpu_name, fair_threads
from gru_core.step import bptt as step_bptt
from gru_core.step import core as step_mod

from helpers import CHAOTIC, TINY_RUN, wait_for

TINY = {**TINY_RUN, "num_epochs": 2, "device": "cpu"}


@pytest.fixture
def make_job(small_corpus: Corpus) -> Iterator[Callable[..., TrainingJob]]:
    """Build jobs on a private pool; every job is stopped (and its thread joined) afterwards."""
    jobs: list[TrainingJob] = []

    def make(
        pool: SlotPool | None = None,
        *,
        max_steps_per_sec: float | None = None,
        start_paused: bool = False,
        **changes: object,
    ) -> TrainingJob:
        job = TrainingJob(
            TrainConfig(**{**TINY, **changes}),  # type: ignore[arg-type]
            small_corpus,
            pool=pool or SlotPool(2),
            max_steps_per_sec=max_steps_per_sec,
            start_paused=start_paused,
        )
        jobs.append(job)
        return job

    yield make
    for job in jobs:
        job.stop(wait=True, timeout=10.0)
    for job in jobs:
        assert not job.alive, "a job's worker thread outlived its test"


def settle(job: TrainingJob, quiet: float = 0.4, timeout: float = 20.0) -> int:
    """The step count once it has not changed for ``quiet`` seconds (a paused job)."""
    deadline = time.monotonic() + timeout
    step, since = job.status().step, time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the job never settled"
        time.sleep(0.02)
        now = job.status().step
        if now != step:
            step, since = now, time.monotonic()
    return step


def steady_step(job: TrainingJob, seconds: float) -> int:
    """The step count, asserting it does not change for ``seconds``."""
    first = job.status().step
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert job.status().step == first
        time.sleep(0.02)
    return first


# -- a whole run --------------------------------------------------------------------------


def test_run_to_the_end(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job()
    assert job.status().state == "ready" and job.status().step == 0
    job.start()
    with pytest.raises(RuntimeError, match="already started"):
        job.start()
    first = wait_for(job, lambda s: s.step >= 1)
    status = wait_for(job, lambda s: s.state in ENDED)
    assert status.step > first.step
    assert status.state == "done"
    assert status.outcome is not None and status.outcome.status == "done"
    assert status.outcome.step == status.step
    assert status.epoch == status.num_epochs == 2
    assert status.tokens_per_sec is not None and status.tokens_per_sec > 0
    job.join(10.0)
    assert not job.alive
    snap = job.telemetry.snapshot()
    assert list(snap.steps["step"]) == list(range(1, status.step + 1))
    assert list(snap.epochs["epoch"]) == [1, 2]
    assert snap.epochs["step"].iloc[-1] == status.step
    assert snap.last_step is not None and snap.last_step.step == status.step
    assert snap.probe is not None and snap.probe["step"] == status.step


def test_run_sync_takes_exactly_the_steps_asked_and_traces_the_probe(
    make_job: Callable[..., TrainingJob],
) -> None:
    job = make_job(hidden_size=24)
    status = job.run_sync(3)
    assert status.step == 3 and status.state == "running"
    assert not job.alive  # no thread was involved
    snap = job.telemetry.snapshot()
    assert list(snap.steps["step"]) == [1, 2, 3]
    probe = snap.probe
    assert probe is not None
    text = probe["text"]
    assert text == job.probe.text  # the corpus's own opening words, read as training reads
    assert text.startswith("the quick brown fox jumps")
    assert set(probe["gates"]) == {"Z", "R", "H_tilde"}
    Z = probe["gates"]["Z"]
    assert Z.shape == (len(text), 24)
    assert ((Z > 0) & (Z < 1)).all()  # a sigmoid gate
    assert job.run_sync(2).step == 5  # continues where it left off


# -- pause, step, resume, stop ------------------------------------------------------------


def test_pause_step_resume_stop(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job(num_epochs=50, max_steps_per_sec=200)
    job.start()
    wait_for(job, lambda s: s.step >= 3)
    job.pause()
    assert wait_for(job, lambda s: s.state == "paused").state == "paused"
    paused_at = settle(job)  # a step already under way may still land
    assert steady_step(job, 0.3) == paused_at
    job.step_once()
    assert wait_for(job, lambda s: s.step == paused_at + 1).step == paused_at + 1
    assert steady_step(job, 0.3) == paused_at + 1
    job.resume()
    assert wait_for(job, lambda s: s.step >= paused_at + 5).state == "running"
    t0 = time.monotonic()
    job.stop(wait=True)
    assert time.monotonic() - t0 < 3.0
    status = job.status()
    assert status.state == "stopped"
    assert status.outcome is not None and status.outcome.status == "stopped"
    assert not job.alive
    assert not [t for t in threading.enumerate() if t.name == f"gru-job-{job._ticket}"]


def test_start_paused_then_step_once_advances_exactly_one(
    make_job: Callable[..., TrainingJob],
) -> None:
    job = make_job(start_paused=True, num_epochs=50)
    job.start()
    assert wait_for(job, lambda s: s.state == "paused").step == 0
    assert steady_step(job, 0.5) == 0
    for expected in (1, 2, 3):
        job.step_once()
        wait_for(job, lambda s, e=expected: s.step == e)
        assert steady_step(job, 0.2) == expected
    assert job.status().state == "paused"
    assert list(job.telemetry.snapshot().steps["step"]) == [1, 2, 3]
    t0 = time.monotonic()
    job.stop(wait=True)
    assert time.monotonic() - t0 < 3.0
    status = job.status()
    assert status.state == "stopped" and status.step == 3
    assert status.outcome is not None and status.outcome.step == 3
    assert not job.alive


def test_step_once_on_a_running_job_pauses_it_after_one_step(
    make_job: Callable[..., TrainingJob],
) -> None:
    job = make_job(num_epochs=50, max_steps_per_sec=50)
    job.start()
    wait_for(job, lambda s: s.step >= 2)
    before = job.status().step
    job.step_once()
    assert job.status().state == "paused"
    held = settle(job)
    # The granted step is the next one to finish (one may have landed in between).
    assert before + 1 <= held <= before + 2
    assert steady_step(job, 0.3) == held
    assert job.status().state == "paused"
    job.stop()
    assert job.status().state == "stopped" and not job.alive


def test_stop_a_running_job_quickly(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job(num_epochs=1000)
    job.start()
    wait_for(job, lambda s: s.step >= 5)
    t0 = time.monotonic()
    job.stop(wait=True)
    assert time.monotonic() - t0 < 3.0
    status = job.status()
    assert status.state == "stopped"
    assert status.outcome is not None and f"step {status.step}" in status.outcome.message
    assert not job.alive
    assert job.telemetry.snapshot().total_steps == status.step
    job.stop()  # stopping twice is harmless
    assert job.status().state == "stopped"


# -- live knobs ---------------------------------------------------------------------------


def _steps_after(job: TrainingJob, step: int, count: int) -> None:
    wait_for(job, lambda s: s.step >= step + count)


def test_live_clip_threshold(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job(num_epochs=1000, max_steps_per_sec=50)
    job.start()
    wait_for(job, lambda s: s.step >= 3)
    before = job.status().step
    job.set_clip_threshold(0.05)
    assert job.status().clip_threshold == 0.05
    _steps_after(job, before, 4)

    snap = job.telemetry.snapshot()
    events = snap.events[snap.events["kind"] == "clip_threshold"]
    assert len(events) == 1 and events["value"].iloc[0] == 0.05
    first = int(events["step"].iloc[0])
    assert before < first <= before + 3  # a step or two may land before the worker sees it
    steps = snap.steps.set_index("step")
    assert steps.loc[first, "clip_threshold"] == 0.05  # the event marks the first step using it
    assert steps.loc[first - 1, "clip_threshold"] == 1.0
    later = steps.loc[first:]
    assert (later["clip_threshold"] == 0.05).all()
    assert (later["grad_norm_clipped"] <= 0.05 * (1 + 1e-5)).all()
    assert later["clipped"].any()

    job.set_clip_threshold(None)
    assert job.status().clip_threshold is None
    off_at = job.status().step
    _steps_after(job, off_at, 4)
    snap = job.telemetry.snapshot()
    events = snap.events[snap.events["kind"] == "clip_threshold"]
    assert len(events) == 2 and math.isnan(events["value"].iloc[-1])
    off = int(events["step"].iloc[-1])
    rows = snap.steps[snap.steps["step"] >= off]
    assert rows["clip_threshold"].isna().all() and not rows["clipped"].any()
    assert (rows["grad_norm_clipped"] == rows["grad_norm"]).all()
    assert snap.last_step is not None and snap.last_step.clip_threshold is None


def test_live_learning_rate(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job(num_epochs=1000, max_steps_per_sec=50)
    job.start()
    wait_for(job, lambda s: s.step >= 2)
    before = job.status().step
    job.set_lr(0.25)
    assert job.status().lr == 0.25
    _steps_after(job, before, 3)
    snap = job.telemetry.snapshot()
    events = snap.events
    assert list(events["kind"]) == ["lr"] and events["value"].iloc[0] == 0.25
    first = int(events["step"].iloc[0])
    assert before < first <= before + 3
    steps = snap.steps.set_index("step")
    assert steps.loc[first - 1, "lr"] == 1.0
    assert (steps.loc[first:, "lr"] == 0.25).all()
    assert snap.last_step is not None and snap.last_step.lr == 0.25


def test_setting_the_same_value_again_records_no_event(
    make_job: Callable[..., TrainingJob],
) -> None:
    job = make_job()
    job.set_clip_threshold(1.0)  # already in force
    job.set_lr(1.0)
    job.run_sync(2)
    assert len(job.telemetry.snapshot().events) == 0


def test_knobs_set_before_a_sync_step_apply_to_it(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job()
    job.run_sync(2)
    job.set_clip_threshold(0.1)
    job.set_lr(0.5)
    job.run_sync(1)
    snap = job.telemetry.snapshot()
    assert sorted(zip(snap.events["kind"], snap.events["step"], strict=True)) == [
        ("clip_threshold", 3),
        ("lr", 3),
    ]
    last = snap.last_step
    assert last is not None and (last.step, last.clip_threshold, last.lr) == (3, 0.1, 0.5)


@pytest.mark.parametrize(
    ("setter", "value"),
    [
        ("set_clip_threshold", -1.0),
        ("set_clip_threshold", 0.0),
        ("set_clip_threshold", 1e9),
        ("set_clip_threshold", math.nan),
        ("set_clip_threshold", math.inf),
        ("set_lr", -1.0),
        ("set_lr", 0.0),
        ("set_lr", math.nan),
        ("set_lr", None),
        ("set_speed", 0.0),
        ("set_speed", -5.0),
    ],
)
def test_invalid_knob_values_raise_in_the_caller(
    make_job: Callable[..., TrainingJob], setter: str, value: float | None
) -> None:
    job = make_job()
    before = job.status()
    with pytest.raises(ValueError):
        getattr(job, setter)(value)
    after = job.status()
    assert (after.clip_threshold, after.lr, after.max_steps_per_sec) == (
        before.clip_threshold,
        before.lr,
        before.max_steps_per_sec,
    )
    job.run_sync(1)
    assert len(job.telemetry.snapshot().events) == 0  # nothing bad was queued


# -- speed limit --------------------------------------------------------------------------


def test_speed_limit(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job(num_epochs=1000, max_steps_per_sec=5)
    job.start()
    wait_for(job, lambda s: s.step >= 1)
    first = job.status().step
    time.sleep(1.5)
    taken = job.status().step - first
    assert 2 <= taken <= 10, taken  # about 7.5 at 5 steps/s
    job.set_speed(None)  # lift the limit: it runs as fast as it can
    now = job.status().step
    wait_for(job, lambda s: s.step >= now + 30, timeout=10.0)
    assert job.status().max_steps_per_sec is None


# -- the queue ----------------------------------------------------------------------------


def test_queue_waits_for_a_free_slot(make_job: Callable[..., TrainingJob]) -> None:
    pool = SlotPool(1)
    first = make_job(pool=pool, num_epochs=1000, max_steps_per_sec=100)
    second = make_job(pool=pool, num_epochs=1)
    first.start()
    wait_for(first, lambda s: s.step >= 1)
    second.start()
    queued = wait_for(second, lambda s: s.queue_position is not None)
    assert queued.state == "queued" and queued.queue_position == 1 and queued.step == 0
    time.sleep(0.3)
    assert second.status().state == "queued" and second.status().step == 0
    assert pool.running == 1
    first.stop()
    assert first.status().state == "stopped"
    done = wait_for(second, lambda s: s.state in ENDED)
    assert done.state == "done" and done.step > 0 and done.queue_position is None
    second.join(10.0)
    assert pool.running == 0


def test_queue_positions_are_first_come_first_served(
    make_job: Callable[..., TrainingJob],
) -> None:
    pool = SlotPool(1)
    first = make_job(pool=pool, start_paused=True)
    second = make_job(pool=pool)
    third = make_job(pool=pool)
    first.start()
    wait_for(first, lambda s: s.state == "paused")
    second.start()
    wait_for(second, lambda s: s.queue_position == 1)
    third.start()
    assert wait_for(third, lambda s: s.queue_position is not None).queue_position == 2
    first.stop()
    wait_for(second, lambda s: s.state not in ("queued",))
    assert wait_for(third, lambda s: s.queue_position == 1).state == "queued"


def test_stopping_a_queued_job_ends_it_without_training(
    make_job: Callable[..., TrainingJob],
) -> None:
    pool = SlotPool(1)
    first = make_job(pool=pool, start_paused=True)
    second = make_job(pool=pool)
    first.start()
    wait_for(first, lambda s: s.state == "paused")
    second.start()
    wait_for(second, lambda s: s.queue_position == 1)
    t0 = time.monotonic()
    second.stop(wait=True)
    assert time.monotonic() - t0 < 3.0
    status = second.status()
    assert status.state == "stopped" and status.step == 0
    assert status.outcome is not None and "queue" in status.outcome.message
    assert status.queue_position is None
    assert second.telemetry.snapshot().total_steps == 0
    assert not second.alive
    assert first.status().state == "paused"  # the slot holder is untouched
    assert pool.position(second._ticket) is None


# -- endings ------------------------------------------------------------------------------


def test_divergence_from_config(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job(**CHAOTIC)
    job.start()
    status = wait_for(job, lambda s: s.state in ENDED)
    assert status.state == "diverged"
    outcome = status.outcome
    assert outcome is not None and outcome.status == "diverged"
    assert outcome.step == 1 and "step 1" in outcome.message
    # Kept as facts by the worker, worded where it is read, in the reader's language.
    with language_scope("zh_CN"):
        assert "在第 1 步" in worded(outcome.message)
    job.join(10.0)
    assert not job.alive


def test_a_stop_is_worded_where_it_is_read(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job()
    job.start()
    wait_for(job, lambda s: s.step >= 1)
    job.stop(wait=True)
    outcome = job.status().outcome
    assert outcome is not None and outcome.status == "stopped"
    assert outcome.message.startswith("stopped at step")
    with language_scope("zh_CN"):
        assert worded(outcome.message).startswith("在第 ")


def test_divergence_mid_run_keeps_the_records_before_it(
    make_job: Callable[..., TrainingJob], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps 1-3 are finite; at step 4 the loss becomes NaN (as a blow-up would make it)."""
    calls = {"n": 0}
    real = step_mod.loss_and_grads

    def blows_up(*args: object, **kwargs: object) -> step_bptt.Grads:
        calls["n"] += 1
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        if calls["n"] == 4:
            return result._replace(loss=result.loss * math.nan)
        return result

    monkeypatch.setattr(step_mod, "loss_and_grads", blows_up)
    job = make_job(clip_threshold=None)
    job.start()
    status = wait_for(job, lambda s: s.state in ENDED)
    job.join(10.0)
    assert status.state == "diverged" and not job.alive
    outcome = status.outcome
    assert outcome is not None and outcome.step == 4
    assert "loss" in outcome.message and "step 4" in outcome.message
    snap = job.telemetry.snapshot()
    assert list(snap.steps["step"]) == [1, 2, 3]
    assert outcome.last_finite_loss == snap.steps["loss"].iloc[-1]
    assert status.step == 3  # the last step that was recorded


def _failing_loss_and_grads(
    monkeypatch: pytest.MonkeyPatch, make_error: Callable[[], BaseException], on_call: int
) -> None:
    calls = {"n": 0}
    real = step_mod.loss_and_grads

    def flaky(*args: object, **kwargs: object) -> step_bptt.Grads:
        calls["n"] += 1
        if calls["n"] == on_call:
            raise make_error()
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(step_mod, "loss_and_grads", flaky)


def test_out_of_memory_ends_the_job(
    make_job: Callable[..., TrainingJob], monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_loss_and_grads(
        monkeypatch, lambda: torch.OutOfMemoryError("CUDA out of memory. Tried 2 GiB"), 3
    )
    job = make_job()
    job.start()
    status = wait_for(job, lambda s: s.state in ENDED)
    job.join(10.0)
    assert status.state == "out_of_memory" and not job.alive
    assert status.outcome is not None and "out of memory" in status.outcome.message.lower()
    assert list(job.telemetry.snapshot().steps["step"]) == [1, 2]


def test_an_unexpected_error_ends_the_job_with_its_message(
    make_job: Callable[..., TrainingJob], monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_loss_and_grads(monkeypatch, lambda: RuntimeError("cuBLAS went away"), 3)
    job = make_job()
    errors: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    job.start()
    status = wait_for(job, lambda s: s.state in ENDED)
    job.join(10.0)
    assert status.state == "error" and not job.alive
    assert status.outcome is not None
    assert status.outcome.message == "RuntimeError: cuBLAS went away"
    assert list(job.telemetry.snapshot().steps["step"]) == [1, 2]
    assert errors == []  # nothing escaped the worker thread


def test_errors_in_run_sync_do_not_escape(
    make_job: Callable[..., TrainingJob], monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_loss_and_grads(monkeypatch, lambda: RuntimeError("boom"), 2)
    job = make_job()
    status = job.run_sync(5)
    assert status.state == "error" and status.step == 1
    assert job.run_sync(5).state == "error"  # an ended job stays ended


# -- resource hygiene ---------------------------------------------------------------------


def _tensor_count() -> int:
    gc.collect()
    count = 0
    with warnings.catch_warnings():  # isinstance on deprecated torch aliases warns
        warnings.simplefilter("ignore")
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.Tensor):
                    count += 1
            except Exception:  # some objects refuse isinstance checks (proxies)
                pass
    return count


def test_start_stop_cycles_leave_no_threads_or_tensors(small_corpus: Corpus) -> None:
    pool = SlotPool(2)
    config = TrainConfig(**{**TINY, "num_epochs": 1000})

    def cycle() -> None:
        job = TrainingJob(config, small_corpus, pool=pool)
        job.start()
        wait_for(job, lambda s: s.step >= 1)
        job.stop(wait=True, timeout=10.0)
        assert job.status().state == "stopped"

    cycle()  # warm up caches (lru caches, torch's lazy state)
    before = _tensor_count()
    for _ in range(50):
        cycle()
    leftovers = [t.name for t in threading.enumerate() if t.name.startswith("gru-job-")]
    assert leftovers == []
    after = _tensor_count()
    assert after - before <= 20, (before, after)
    assert pool.running == 0


# -- one truth for knobs, flushing, weights, threads ---------------------------------------


def test_a_live_change_replaces_the_config_and_keeps_the_start_config(
    make_job: Callable[..., TrainingJob],
) -> None:
    job = make_job(clip_threshold=1.0, lr=1.0)
    start = job.config
    job.run_sync(2)
    job.set_clip_threshold(None)
    job.set_lr(0.5)
    assert job.config == start.replace(clip_threshold=None, lr=0.5)  # in force from now on
    assert job.start_config is start and job.start_config.clip_threshold == 1.0
    with pytest.raises(ValueError, match="lr"):
        job.set_lr(-1.0)
    assert job.config.lr == 0.5  # a rejected value changes nothing
    job.run_sync(1)
    last = job.telemetry.snapshot().last_step
    assert last is not None and (last.clip_threshold, last.lr) == (None, 0.5)
    assert job._trainer is not None and job._trainer.config == job.config
    job.stop()
    assert job.config.clip_threshold is None and job.status().clip_threshold is None


def test_pause_and_stop_flush_the_step_in_flight(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job(num_epochs=1000)
    job.start()
    wait_for(job, lambda s: s.step >= 3)
    job.pause()
    paused = settle(job)
    trainer = job._trainer
    assert trainer is not None and not trainer.pending  # nothing launched but unrecorded
    assert trainer.step == paused == job.telemetry.snapshot().last_step.step  # type: ignore[union-attr]
    job.resume()
    wait_for(job, lambda s: s.step >= paused + 3)
    job.stop()
    status = job.status()
    snap = job.telemetry.snapshot()
    assert snap.total_steps == status.step and snap.last_step is not None
    assert snap.last_step.step == status.step


def test_weights_are_published_and_outlive_the_run(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job(hidden_size=12)
    assert job.weights() is None
    job.run_sync(3)
    got = job.weights()
    assert got is not None
    step, weights = got
    probe = job.telemetry.snapshot().probe
    assert probe is not None and step == probe["step"] and 1 <= step <= 3  # refreshed together
    assert weights["W_xz"].shape == (len(job._trainer.vocab), 12)  # type: ignore[union-attr]
    assert weights["W_hz"].shape == (12, 12) and weights["b_q"].dtype == torch.float32
    assert weights["W_hq"].device.type == "cpu"
    job.run_sync(2)
    job.stop()
    final = job.weights()
    assert final is not None and final[0] == 5
    assert not torch.equal(final[1]["W_hq"], weights["W_hq"])


def test_a_diverged_job_keeps_its_last_finite_weights(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job(**CHAOTIC)
    status = job.run_sync()
    assert status.state == "diverged"
    got = job.weights()
    assert got is not None and got[0] == 0  # step 1 diverged: the initial weights
    assert all(torch.isfinite(w).all() for w in got[1].values())


def test_status_note_is_empty_on_the_cpu(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job()
    assert job.run_sync(2).note is None


def test_torch_threads_are_per_os_thread() -> None:
    """What the job relies on: a thread's set_num_threads does not change another's."""
    main = torch.get_num_threads()
    seen: list[int] = []

    def worker() -> None:
        torch.set_num_threads(max(1, main + 1))
        seen.append(torch.get_num_threads())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [main + 1] and torch.get_num_threads() == main


def test_a_lone_job_gets_every_core_and_jobs_running_together_share_them(
    make_job: Callable[..., TrainingJob], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_module.os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle machine
    cores = os.cpu_count() or 1
    main = torch.get_num_threads()
    pool = SlotPool(2)
    first = make_job(pool=pool, num_epochs=1000, max_steps_per_sec=100)
    first.start()
    wait_for(first, lambda s: s.step >= 2)
    assert first.status().device == cpu_name(cores)
    second = make_job(pool=pool, num_epochs=1000, max_steps_per_sec=100)
    second.start()
    shared = cpu_name(max(1, cores // 2))
    wait_for(second, lambda s: s.step >= 2 and s.device == shared)
    wait_for(first, lambda s: s.device == shared)
    second.stop()
    wait_for(first, lambda s: s.device == cpu_name(cores))
    first.stop()
    assert torch.get_num_threads() == main  # the workers never touched this thread's count
    pinned = make_job(pool=pool, num_threads=1)
    pinned.start()
    assert wait_for(pinned, lambda s: s.step >= 1).device == cpu_name(1)


def test_threads_leave_cores_that_other_programs_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two OpenMP threads on a core another program is using wait on each other; a job takes
    only the cores the load average leaves free (its own threads not counted against it)."""
    monkeypatch.setattr(job_module.os, "cpu_count", lambda: 8)
    for load, running, own, want in [
        (0.0, 1, 0, 8),  # idle: every core
        (0.0, 2, 0, 4),  # two jobs share
        (8.0, 1, 8, 8),  # the load is this job's own 8 threads
        (5.0, 1, 0, 3),  # another program keeps 5 cores busy
        (40.0, 1, 2, 1),  # a saturated machine: one thread, never zero
    ]:
        monkeypatch.setattr(job_module.os, "getloadavg", lambda load=load: (load, load, load))
        assert fair_threads(running, own) == want, (load, running, own)


def test_a_knob_changed_while_paused_says_what_the_next_step_uses_and_the_last_used(
    make_job: Callable[..., TrainingJob],
) -> None:
    job = make_job(num_epochs=1000, clip_threshold=1.0, lr=1.0)
    job.start()
    wait_for(job, lambda s: s.step >= 2)
    job.pause()
    paused = settle(job)
    job.set_clip_threshold(0.05)
    job.set_lr(0.5)
    status = job.status()
    assert status.state == "paused" and status.step == paused
    # In force = what the next step uses; the last step used the old values.
    assert (status.clip_threshold, status.lr) == (0.05, 0.5)
    assert status.last_step_knobs == {"clip_threshold": 1.0, "lr": 1.0}
    assert job.config.clip_threshold == 0.05 and job.start_config.clip_threshold == 1.0
    job.step_once()
    wait_for(job, lambda s: s.step == paused + 1)
    status = job.status()
    assert status.last_step_knobs == {"clip_threshold": 0.05, "lr": 0.5}
    last = job.telemetry.snapshot().last_step
    assert last is not None and (last.step, last.clip_threshold, last.lr) == (paused + 1, 0.05, 0.5)
    # Off is None everywhere: in force, in the last step, in its record.
    job.set_clip_threshold(None)
    assert job.status().clip_threshold is None
    assert job.status().last_step_knobs == {"clip_threshold": 0.05, "lr": 0.5}
    job.step_once()
    wait_for(job, lambda s: s.step == paused + 2)
    assert job.status().last_step_knobs == {"clip_threshold": None, "lr": 0.5}


def test_only_live_knobs_can_change_during_a_run(make_job: Callable[..., TrainingJob]) -> None:
    job = make_job()
    with pytest.raises(ValueError, match="not a live knob"):
        job.set_knob("hidden_size", 8)


def test_tokens_per_second_is_a_window_while_running_and_the_mean_once_ended(
    make_job: Callable[..., TrainingJob],
) -> None:
    job = make_job(num_epochs=1000)
    job.run_sync(3)
    running = job.status()
    assert running.tokens_per_sec is not None and running.tokens_per_sec_basis == "last 5 s"
    job.stop()
    ended = job.status()
    assert ended.tokens_per_sec_basis == "mean over the run"
    assert ended.tokens_per_sec == job.throughput.mean() is not None
