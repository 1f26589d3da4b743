"""The Ray backend of a sweep: chunks as Ray tasks on one machine's cores or a cluster.

Ray is an optional extra (``pip install -r requirements-ray.txt``); it is imported only
here, only when the Ray backend is asked for, and a missing Ray is a ValueError saying how
to install it. ``connect`` joins the cluster at ``address`` (or ``RAY_ADDRESS``), or starts a
local Ray with ``num_cpus`` CPUs (all of them by default), or reuses a Ray already started
in this process. Every node needs this project installed (``pip install -e .`` beside
``requirements-ray.txt``), since a task imports ``gru_core``.

``SweepJob`` plans a Ray sweep so that each group is cut into about as many chunks as the
cluster has CPUs (each chunk one StepCore, one task, one CPU, one torch thread).
``run_on_ray`` puts the training and validation slices into Ray's object store once, keeps at
most that many tasks in flight, and collects results as each finishes (a ``ray.wait`` loop),
storing them in the job. Results equal the local backend's: a chunk is the same computation
whatever its size (members are independent; ``tests/test_sweep_ray.py`` holds them equal).
"""

from __future__ import annotations

import os
from collections import deque
from types import ModuleType

from gru_core.sweep.chunk import SweepControl, run_chunk_task
from gru_core.sweep.results import RUNNING, pending_result

INSTALL_HINT = "pip install -r requirements-ray.txt"
ADDRESS_ENV = "RAY_ADDRESS"
POLL_S = 0.5  # how often the loop looks at pause and stop while tasks run


def ray_module() -> ModuleType:
    """``import ray``, or a ValueError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(
            f"the Ray backend needs Ray, which is not installed: {INSTALL_HINT}"
        ) from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> int:
    """Make sure this process is connected to Ray (module docstring); the cluster's CPUs."""
    ray = ray_module()
    if not ray.is_initialized():
        address = address or os.environ.get(ADDRESS_ENV) or None
        try:
            if address:
                ray.init(address=address, logging_level="ERROR")
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR")
        except Exception as exc:  # ConnectionError, a bad address, a port in use, ...
            where = f" at {address}" if address else ""
            raise ValueError(f"could not start or reach Ray{where}: {exc}") from None
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def run_on_ray(job: SweepControl) -> None:
    """Run ``job``'s chunks as Ray tasks, at most one per cluster CPU in flight, storing each
    chunk's results as it returns."""
    ray = ray_module()
    spec, cpus = job.spec, job.cluster_cpus or 1
    chunks = deque(job.plan.chunks)
    task = ray.remote(num_cpus=1, max_retries=0)(run_chunk_task)
    train, val = ray.put(job.train.cpu()), ray.put(job.val.cpu())
    args = (train, val, job.vocab_size, spec.target_perplexity, spec.eval_every)
    in_flight: dict = {}
    while chunks or in_flight:
        if job.stopping():
            for ref in in_flight:
                ray.cancel(ref, force=True)
            return
        while chunks and len(in_flight) < cpus and not job.paused():
            chunk = chunks.popleft()
            job.store([pending_result(c, RUNNING) for c in chunk])
            in_flight[task.remote(chunk, *args)] = chunk
        if not in_flight:
            job.wait()  # paused with nothing running: sleep until resumed or stopped
            continue
        done, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
        for ref in done:
            chunk = in_flight.pop(ref)
            try:
                job.store(ray.get(ref))
            except Exception as exc:  # the task raised, or its worker died
                job.fail(chunk, exc)
