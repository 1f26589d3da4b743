"""The lifecycle every background job shares: one state vocabulary, and honest speed."""

from __future__ import annotations

import pytest

from gru_core.run.lifecycle import ENDED, JobState, Throughput
from gru_core.run.records import Outcome
from gru_core.sweep import job as sweep_job
from gru_core.sweep import results


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_ended_vocabulary_for_runs_sweeps_and_map_cells() -> None:
    assert {str(s) for s in ENDED} == {"done", "stopped", "diverged", "out_of_memory", "error"}
    assert sweep_job.ENDED is ENDED and results.FINISHED is ENDED
    assert "done" in ENDED and JobState("out_of_memory") is JobState.OUT_OF_MEMORY
    # Every status an Outcome can carry is a state a job ends in.
    for status in ("done", "stopped", "diverged", "out_of_memory", "error"):
        assert JobState(Outcome(status, 0).status) in ENDED


def test_the_window_rate_counts_the_last_seconds_only() -> None:
    clock = FakeClock()
    speed = Throughput(window_s=5.0, clock=clock)
    assert speed.recent() is None and speed.mean() is None
    speed.begin()
    for _ in range(10):  # 1,000 tokens a second for 10 s
        clock.now += 1.0
        speed.add(1000)
    assert speed.recent() == pytest.approx(1000.0)
    for _ in range(5):  # then 4,000 a second for 5 s
        clock.now += 1.0
        speed.add(4000)
    assert speed.recent() == pytest.approx(4000.0)  # the last 5 s only
    assert speed.mean() == pytest.approx(30_000 / 15)  # the whole run


def test_a_pause_counts_neither_in_the_mean_nor_in_the_window() -> None:
    clock = FakeClock()
    speed = Throughput(window_s=5.0, clock=clock)
    speed.begin()
    for _ in range(4):
        clock.now += 1.0
        speed.add(2000)
    speed.pause()
    clock.now += 60.0  # a minute paused
    assert speed.recent() == pytest.approx(2000.0)  # as at the last step, not decayed
    speed.begin()
    clock.now += 0.5
    speed.add(1000)
    assert speed.recent() == pytest.approx(2000.0)  # since it resumed, not over the pause
    assert speed.mean() == pytest.approx(9000 / 4.5)


def test_after_stop_the_mean_is_the_runs_not_a_partial_epochs() -> None:
    # The bug this replaces: after Stop the status showed a partial epoch's figure
    # (24,333 -> 4,249). The mean over the run matches the rate the run kept.
    clock = FakeClock()
    speed = Throughput(window_s=5.0, clock=clock)
    speed.begin()
    for _ in range(100):
        clock.now += 0.05
        speed.add(1120)  # d2l's minibatch: 32 x 35 tokens, 20 steps/s
    assert speed.recent() == pytest.approx(22_400.0)
    assert speed.mean() == pytest.approx(22_400.0)
