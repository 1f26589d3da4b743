"""A trainability map as a background job: start, pause, resume, stop, and live snapshots.

The lifecycle is ``run.lifecycle.BackgroundJob``'s, as ``TrainingJob``'s: the worker thread
owns the step cores; other threads talk to it only through this object's methods, which
take a lock and wake the worker with a condition variable; the UI reads ``snapshot()``, a
frozen copy of every cell's ``CellResult`` so far. Nothing here knows about Streamlit. A
sweep takes one slot of the server's ``SlotPool`` (waiting in state 'queued' while the pool
is full) and, on the CPU, that slot's share of the cores as torch threads.

Building the job validates everything up front (ValueError with a message): the spec, the
device, the corpus (one minibatch must fit), the memory plan (``spec.plan``) and, for
the Ray backend, that Ray is installed and reachable (``ray_backend.connect``, in the calling
thread). Backends:

- 'local': the chunks run one after another in the worker thread, each one ``StepCore``;
  cells update after every epoch. Pause takes effect between two steps.
- 'ray': the chunks (at most as many members as the cluster has CPUs share out) run as Ray
  tasks; a cell updates when its task returns. Pause holds back tasks not yet submitted
  (running tasks finish); stop cancels what is queued or running.

States (``lifecycle.JobState``): 'ready', 'queued', 'running' ('paused' while paused), then
'done', 'stopped' (cells not run are 'stopped' too) or 'error' (a chunk failed: its cells say
why; the rest ran).

The theory (``sweep.edge``: λ per cell, the edge of chaos) is computed in a thread of its own
beside the training; a map that trains to the end waits for it before it is 'done', so the
finished map and its CSV carry every λ. A stopped map stops its theory at the next λ or edge
(keeping the values it has) and waits for that too: no thread of a job outlives it, so a
process may exit as soon as its job has ended. (At exit Python 3.11 ends a daemon thread
still inside torch with ``pthread_exit``, which unwinds through torch's C++ frames and aborts
the process: "terminate called without an active exception", exit -6. A Ctrl-C'd sweep
whose theory was still running used to die that way.)
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field, replace

import torch

from gru_core.config import resolve_device
from gru_core.data import Corpus, check_trainable, split_train_val
from gru_core.i18n import N_
from gru_core.run.lifecycle import ENDED, BackgroundJob, JobState
from gru_core.run.scheduling import SlotPool, fair_threads
from gru_core.sweep import ray_backend
from gru_core.sweep.chunk import run_chunk
from gru_core.sweep.edge import MapTheory, map_theory
from gru_core.sweep.results import RUNNING, CellResult, pending_result
from gru_core.sweep.spec import Cell, Plan, SweepSpec, plan

__all__ = ["ENDED", "THEORY_MISSING", "SweepJob", "SweepSnapshot"]
# How a reader is told a map has no theory: _(THEORY_MISSING).format(error=snap.theory_error),
# where it is shown (the worker keeps the exception; it never words it).
THEORY_MISSING = N_("No theory (λ, edge of chaos) for this map: {error}")


@dataclass(frozen=True)
class SweepSnapshot:
    """What the UI draws: the job's state and every run's result so far, in spec order."""

    state: JobState  # 'ready', 'queued', 'running', 'paused', 'done', 'stopped', 'error'
    results: tuple[CellResult, ...]
    finished: int  # runs that ended
    total: int
    elapsed: float  # seconds since start
    plan: str  # how the runs were split (Plan.describe)
    backend: str
    message: str = ""  # the first error, if any
    edges: dict[tuple[str, int], float | None] = field(default_factory=dict)  # sweep.edge
    theory_error: str = ""  # why there is no theory (λ, edge): the exception, as a fact


class SweepJob(BackgroundJob):
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
        super().__init__(pool, start_paused)
        self.spec = spec
        self.device = device or resolve_device(spec.base.device)
        base = spec.base
        self.train, self.val = split_train_val(corpus.tokens, base.max_tokens, base.val_tokens)
        longest = max(c.config.num_steps for c in spec.cells())  # T may be an axis
        check_trainable(len(self.train), base.batch_size, longest)
        self.vocab_size = len(corpus.vocab)
        self.plan: Plan = plan(spec, self.vocab_size, self.device)  # refuses what can't fit
        self.cluster_cpus: int | None = None
        if spec.backend == "ray":
            self.cluster_cpus = cpus = ray_backend.connect(address, num_cpus)
            largest = max(len(g) for g in spec.groups())  # about one chunk per CPU
            self.plan = plan(spec, self.vocab_size, self.device, math.ceil(largest / cpus))
        self.train, self.val = self.train.to(self.device), self.val.to(self.device)
        self._cells = spec.cells()
        self._results = {c.key: pending_result(c) for c in self._cells}
        self._errors: list[str] = []
        self.theory: MapTheory | None = None
        self._theory_error = ""

    thread_name = "gru-sweep"

    def snapshot(self) -> SweepSnapshot:
        with self._cond:
            results = tuple(self._results[c.key] for c in self._cells)
            state = self._visible_state()
            elapsed = time.perf_counter() - self._started if self._started else 0.0
            return SweepSnapshot(
                state, results, sum(r.finished for r in results), len(results),
                elapsed, self.plan.describe(), self.spec.backend,
                self._errors[0] if self._errors else "",
                dict(self.theory.edges) if self.theory else {}, self._theory_error,
            )  # fmt: skip

    # -- what the chunks see (chunk.Control: paused and wait are the lifecycle's) -------
    def store(self, results: list[CellResult]) -> None:
        with self._cond:
            for r in results:
                self._results[r.key] = self._with_theory(r)

    def _with_theory(self, r: CellResult) -> CellResult:
        """``r`` with its cell's λ (under the lock)."""
        if self.theory is None:
            return r
        return replace(r, lyapunov=self.theory.lam(r.model, r.hidden_size, r.init_std))

    def _add_theory(self) -> None:
        """λ per cell and the edge of chaos (``sweep.edge``), in a thread beside the training.
        The theory is an aid: a map trains without it, and keeps why (``theory_error``: the
        exception, a fact; the reader's words are made where it is shown)."""
        try:
            theory = map_theory(self.spec, self.train, self.vocab_size, self.stopping)
        except Exception as exc:  # a missing or failing theory module
            with self._cond:
                self._theory_error = f"{type(exc).__name__}: {exc}"
            return
        with self._cond:
            self.theory = theory
            for key, r in self._results.items():
                self._results[key] = self._with_theory(r)

    def fail(self, cells: tuple[Cell, ...], exc: BaseException) -> None:
        """Mark a chunk's unfinished cells 'error' with what went wrong."""
        message = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._errors.append(message)
            for c in cells:
                if not self._results[c.key].finished:
                    self._results[c.key] = self._with_theory(pending_result(c, "error", message))

    # -- the worker -----------------------------------------------------------------------
    def run_sync(self) -> SweepSnapshot:
        """Run the whole sweep in this thread (tests, the CLI); pause is ignored."""
        with self._cond:
            self._state, self._started = JobState.RUNNING, time.perf_counter()
        self._train_beside_theory()
        return self.snapshot()

    def _run(self) -> None:
        if self.device == "cpu":  # this OS thread's torch threads (run.scheduling)
            threads = self.spec.base.num_threads or fair_threads(self._pool.running)
            torch.set_num_threads(threads)
        self._train_beside_theory()

    def _end_without_worker(self) -> None:
        self._end()

    def _train_beside_theory(self) -> None:
        theory = threading.Thread(target=self._add_theory, name="gru-sweep-theory", daemon=True)
        if not self.stopping():
            theory.start()  # beside the training: the map fills in while λ is computed
        self._train()
        if theory.is_alive():  # a finished map and its CSV have every λ; a stopped map's
            theory.join()  # theory ends at its next λ (module docstring: never outlive the job)
        self._end()

    def _train(self) -> None:
        if self.spec.backend == "ray":
            ray_backend.run_on_ray(self)
        else:
            for chunk in self.plan.chunks:
                if not self.wait():
                    break
                self.store([pending_result(c, RUNNING) for c in chunk])
                try:
                    self.store(self.run_chunk(chunk))
                except Exception as exc:  # a device error or a bug: keep the other chunks
                    self.fail(chunk, exc)

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
                    left = pending_result(c, "stopped")  # its status says it: not run
                    self._results[c.key] = self._with_theory(left)
            stopped = any(r.status == JobState.STOPPED for r in self._results.values())
            self._state = (
                JobState.ERROR if self._errors else JobState.STOPPED if stopped else JobState.DONE
            )
            self._cond.notify_all()
        self._ended()
