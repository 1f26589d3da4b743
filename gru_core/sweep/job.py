"""A trainability map as a background job: start, pause, resume, stop, and live snapshots.

Like ``job.TrainingJob``: the worker thread owns the step cores; other threads talk to it
only through this object's methods, which take a lock and wake the worker with a condition
variable; the UI reads ``snapshot()``, a frozen copy of every cell's ``CellResult`` so far.
Nothing here knows about Streamlit. A sweep takes one slot of the server's ``SlotPool``
(waiting in state 'queued' while the pool is full) and, on the CPU, that slot's share of
the cores as torch threads.

Building the job validates everything up front (ValueError with a message): the spec, the
device, the corpus (one minibatch must fit), the memory plan (``sweep_spec.plan``) and, for
the Ray backend, that Ray is installed and reachable (``sweep_ray.connect``, in the calling
thread). Backends:

- 'local': the chunks run one after another in the worker thread, each one ``StepCore``;
  cells update after every epoch. Pause takes effect between two steps.
- 'ray': the chunks (at most as many members as the cluster has CPUs share out) run as Ray
  tasks; a cell updates when its task returns. Pause holds back tasks not yet submitted
  (running tasks finish); stop cancels what is queued or running.

States: 'ready', 'queued', 'running' ('paused' while paused), then 'done', 'stopped' (cells
not run are 'stopped' too) or 'error' (a chunk failed: its cells say why; the rest ran).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import torch

from gru_core.config import resolve_device
from gru_core.data import Corpus, check_trainable, split_train_val
from gru_core.run.job import SlotPool, fair_threads, new_ticket, shared_pool
from gru_core.sweep.chunk import run_chunk
from gru_core.sweep.results import PENDING, RUNNING, CellResult
from gru_core.sweep.spec import Cell, Plan, SweepSpec, plan

ENDED = frozenset({"done", "stopped", "error"})


@dataclass(frozen=True)
class SweepSnapshot:
    """What the UI draws: the job's state and every run's result so far, in spec order."""

    state: str  # 'ready', 'queued', 'running', 'paused', 'done', 'stopped', 'error'
    results: tuple[CellResult, ...]
    finished: int  # runs that ended
    total: int
    elapsed: float  # seconds since start
    plan: str  # how the runs were split (Plan.describe)
    backend: str
    message: str = ""  # the first error, if any


def pending_result(cell: Cell, status: str = PENDING, headline: str = "") -> CellResult:
    c = cell.config
    return CellResult(
        cell.model, cell.x, cell.y, cell.seed, c.init_std, c.clip_threshold, c.lr,
        status=status, headline=headline,
    )  # fmt: skip


class SweepJob:
    """One trainability map. Build it (validates and plans), then ``start()``."""

    def __init__(
        self,
        spec: SweepSpec,
        corpus: Corpus,
        *,
        device: str | None = None,
        pool: SlotPool | None = None,
        start_paused: bool = False,
        num_cpus: int | None = None,
        address: str | None = None,
    ) -> None:
        """``num_cpus``/``address``: for the Ray backend (a new local Ray's CPUs; a cluster)."""
        self.spec = spec
        self.device = device or resolve_device(spec.base.device)
        base = spec.base
        self.train, self.val = split_train_val(corpus.tokens, base.max_tokens, base.val_tokens)
        check_trainable(len(self.train), base.batch_size, base.num_steps)
        self.vocab_size = len(corpus.vocab)
        self.plan: Plan = plan(spec, self.vocab_size, self.device)  # refuses what can't fit
        self.cluster_cpus: int | None = None
        if spec.backend == "ray":
            from gru_core.sweep.ray_backend import connect

            self.cluster_cpus = cpus = connect(address, num_cpus)
            largest = max(len(g) for g in spec.groups())  # about one chunk per CPU
            self.plan = plan(spec, self.vocab_size, self.device, math.ceil(largest / cpus))
        self.train, self.val = self.train.to(self.device), self.val.to(self.device)
        self._pool = pool or shared_pool()
        self._ticket = new_ticket()
        self._cond = threading.Condition()
        self._cells = spec.cells()
        self._results = {c.key: pending_result(c) for c in self._cells}
        self._state, self._paused, self._stop = "ready", start_paused, False
        self._errors: list[str] = []
        self._started: float | None = None
        self._thread: threading.Thread | None = None

    # -- control (any thread) -------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("this sweep was already started")
            self._state, self._started = "queued", time.perf_counter()
            self._thread = threading.Thread(target=self._work, name="gru-sweep", daemon=True)
            self._thread.start()

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def stop(self, wait: bool = True, timeout: float = 30.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is None:
            self._end()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> SweepSnapshot:
        with self._cond:
            results = tuple(self._results[c.key] for c in self._cells)
            state = "paused" if self._state == "running" and self._paused else self._state
            elapsed = time.perf_counter() - self._started if self._started else 0.0
            return SweepSnapshot(
                state, results, sum(r.finished for r in results), len(results),
                elapsed, self.plan.describe(), self.spec.backend,
                self._errors[0] if self._errors else "",
            )  # fmt: skip

    # -- what the chunks see (sweep_run.Control) -------------------------------------------
    def paused(self) -> bool:
        with self._cond:
            return self._paused and not self._stop

    def stopping(self) -> bool:
        with self._cond:
            return self._stop

    def wait(self) -> bool:
        """Block while paused; False once asked to stop."""
        with self._cond:
            while self._paused and not self._stop:
                self._cond.wait(0.5)
            return not self._stop

    def store(self, results: list[CellResult]) -> None:
        with self._cond:
            for r in results:
                self._results[r.key] = r

    def fail(self, cells: tuple[Cell, ...], exc: BaseException) -> None:
        """Mark a chunk's unfinished cells 'error' with what went wrong."""
        message = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._errors.append(message)
            for c in cells:
                if not self._results[c.key].finished:
                    self._results[c.key] = pending_result(c, "error", message)

    # -- the worker -----------------------------------------------------------------------
    def run_sync(self) -> SweepSnapshot:
        """Run the whole sweep in this thread (tests, the CLI); pause is ignored."""
        with self._cond:
            self._state, self._started = "running", time.perf_counter()
        self._run()
        return self.snapshot()

    def _work(self) -> None:
        if not self._pool.acquire(self._ticket, lambda: self._stop):
            self._end()
            return
        try:
            with self._cond:
                self._state = "running"
            if self.device == "cpu":  # this OS thread's torch threads (job.py's docstring)
                threads = self.spec.base.num_threads or fair_threads(self._pool.running)
                torch.set_num_threads(threads)
            self._run()
        finally:
            self._pool.release(self._ticket)

    def _run(self) -> None:
        if self.spec.backend == "ray":
            from gru_core.sweep.ray_backend import run_on_ray

            run_on_ray(self)
        else:
            for chunk in self.plan.chunks:
                if not self.wait():
                    break
                self.store([pending_result(c, RUNNING) for c in chunk])
                try:
                    self.store(self.run_chunk(chunk))
                except Exception as exc:  # a device error or a bug: keep the other chunks
                    self.fail(chunk, exc)
        self._end()

    def run_chunk(self, chunk: tuple[Cell, ...]) -> list[CellResult]:
        return run_chunk(
            chunk, self.train, self.val, self.vocab_size, self.device,
            self.spec.target_perplexity, self.spec.eval_every, control=self,
            on_update=self.store,
        )  # fmt: skip

    def _end(self) -> None:
        with self._cond:
            for c in self._cells:
                if not self._results[c.key].finished:
                    self._results[c.key] = pending_result(c, "stopped", "not run: stopped")
            stopped = any(r.status == "stopped" for r in self._results.values())
            self._state = "error" if self._errors else "stopped" if stopped else "done"
            self._cond.notify_all()
