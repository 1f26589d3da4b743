"""Helpers shared by several test files (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from gru_core.job import JobStatus, TrainingJob

# A GRU deep in the chaotic regime: std 3 weights, hidden 64 (gain ~24), 100 steps, no
# clipping. The first gradient's norm is ~1e50 in float64, far past float32's 3e38: it
# cannot be finite, so a run with these settings diverges at step 1.
CHAOTIC = {
    "hidden_size": 64,
    "init_std": 3.0,
    "lr": 10.0,
    "clip_threshold": None,
    "num_steps": 100,
    "batch_size": 2,
    "max_tokens": 2000,
    "val_tokens": 0,
    "num_epochs": 3,
}


def wait_for(
    job: TrainingJob, predicate: Callable[[JobStatus], bool], timeout: float = 20.0
) -> JobStatus:
    """Poll a background job's status until ``predicate`` holds (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        status = job.status()
        if predicate(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last status {status}")
        time.sleep(0.01)
