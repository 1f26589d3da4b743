"""A training run in a background thread: start, pause, step, resume, stop, and live knobs.

The worker thread owns the ``Trainer`` (and so the model); other threads talk to it only
through this object's methods, which take a lock and wake the worker with a condition
variable. Records go into a thread-safe ``Telemetry`` store; the UI reads snapshots of it.
Nothing here knows about Streamlit.

**Knobs.** ``set_clip_threshold`` / ``set_lr`` validate in the caller's thread and replace
``config`` at once with the config in force (the start config stays in ``start_config``).
The change is queued; only the worker calls the trainer's setters, between two steps, and
the new value reaches the next step it launches. The store gets an event at that step, so
charts can mark it, and every record says which values its step used.

**Records one step late.** The worker asks the trainer to launch step n+1 before it reads
step n's record (``Trainer.advance``), unless it is about to wait: while paused, under a
speed limit, or at the last step ``run_sync`` was asked for, it does not look ahead; on
pause and stop it flushes the step in flight, so no record is lost. ``run_sync`` drives the
same loop in the calling thread (tests, single steps before a start).

**Threads.** A process-wide ``SlotPool`` caps how many jobs train at once; a job over the cap
waits in a FIFO queue in state 'queued' and reports its position. On the CPU a running job
takes ``cores // (jobs running)`` torch threads (its config's ``num_threads`` when set), and
no more than the load average leaves free (``fair_threads``), set from its own worker thread
between steps: with torch's OpenMP backend the intra-op thread count is per OS thread (a
thread set it for itself; a new thread starts from the last value set anywhere), so a lone
run on an idle machine gets every core and jobs split them only while several run.

**Weights.** Whenever the gate probe is refreshed (about once a second, and always at the
end), the job also keeps a CPU copy of the weights for the memory views (``weights()``).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gru_core.config import TrainConfig, describe_device, resolve_device
from gru_core.data import Corpus
from gru_core.run.records import EpochRecord, Outcome, StepRecord
from gru_core.run.telemetry import Telemetry
from gru_core.run.trainer import Record, Trainer

ENDED = frozenset({"done", "stopped", "diverged", "out_of_memory", "error"})
MAX_JOBS_ENV = "GRU_LAB_MAX_JOBS"


def default_max_jobs() -> int:
    """Concurrent training jobs per server: GRU_LAB_MAX_JOBS, else one per two CPU cores
    (at least 2), so a 2-core laptop trains two runs while others queue."""
    env = os.environ.get(MAX_JOBS_ENV)
    if env:
        value = int(env)
        if value < 1:
            raise ValueError(f"{MAX_JOBS_ENV}={env!r} must be a whole number >= 1")
        return value
    return max(2, (os.cpu_count() or 2) // 2)


class SlotPool:
    """A FIFO-fair counting semaphore that can tell a waiter its queue position."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._cond = threading.Condition()
        self._holders: set[int] = set()
        self._queue: deque[int] = deque()

    def acquire(self, ticket: int, cancelled: Callable[[], bool]) -> bool:
        """Block until ``ticket`` holds a slot (True) or ``cancelled()`` turns True (False)."""
        with self._cond:
            self._queue.append(ticket)
            try:
                while not (self._queue[0] == ticket and len(self._holders) < self.capacity):
                    if cancelled():
                        return False
                    self._cond.wait(timeout=0.2)
                self._queue.popleft()
                self._holders.add(ticket)
                return True
            finally:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                self._cond.notify_all()

    def release(self, ticket: int) -> None:
        with self._cond:
            self._holders.discard(ticket)
            self._cond.notify_all()

    def position(self, ticket: int) -> int | None:
        """1-based place in the queue, or None when not waiting."""
        with self._cond:
            return self._queue.index(ticket) + 1 if ticket in self._queue else None

    @property
    def running(self) -> int:
        with self._cond:
            return len(self._holders)

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)


_POOL: SlotPool | None = None
_POOL_LOCK = threading.Lock()


def shared_pool() -> SlotPool:
    """The server-wide pool (threads are shared out per running job: see the docstring)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = SlotPool(default_max_jobs())
        return _POOL


def fair_threads(running: int, own_threads: int = 0) -> int:
    """Torch threads for each of ``running`` jobs training at once: ``cores // running``, but
    no more than the cores the rest of the machine leaves free (the 1-minute load average
    less ``own_threads``, the training threads this process already runs). Two OpenMP threads
    on a core another program is using wait on each other: measured here, a hidden-64 GRU
    ran 108 steps/s on one thread and 0.3 steps/s on two while other work kept the load at 11.
    """
    cores = os.cpu_count() or 1
    share = max(1, cores // max(1, running))
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return share
    free = cores - max(0.0, load - own_threads)
    return max(1, min(share, int(free + 0.5)))


def _cpu_name(threads: int) -> str:
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


@dataclass(frozen=True)
class JobStatus:
    state: str  # 'ready', 'queued', 'running', 'paused', + the ENDED states
    step: int
    epoch: int
    num_epochs: int
    tokens_per_sec: float | None  # last epoch's training throughput
    device: str  # human name, e.g. 'CPU (2 threads)' or 'CUDA: NVIDIA H100'
    clip_threshold: float | None  # in force now
    lr: float
    queue_position: int | None
    outcome: Outcome | None
    max_steps_per_sec: float | None
    note: str | None = None  # e.g. why a CUDA run trains eagerly instead of in a CUDA graph


_ticket_lock = threading.Lock()
_next_ticket = 0


def new_ticket() -> int:
    global _next_ticket
    with _ticket_lock:
        _next_ticket += 1
        return _next_ticket


class TrainingJob:
    """One run of one session. Build it (validates and allocates), then ``start()``."""

    def __init__(
        self,
        config: TrainConfig,
        corpus: Corpus,
        telemetry: Telemetry | None = None,
        *,
        device: str | None = None,
        probe_text: str | None = None,
        probe_every_s: float = 1.0,
        max_steps_per_sec: float | None = None,
        pool: SlotPool | None = None,
        start_paused: bool = False,
        held_bytes: int = 0,
    ) -> None:
        """``held_bytes``: memory the session already holds against the budget (limits)."""
        self.start_config = config
        self._config = config
        self.telemetry = telemetry or Telemetry()
        self._pool = pool or shared_pool()
        self.device = device or resolve_device(config.device)
        self._cpu = self.device == "cpu"
        self._threads = config.num_threads or fair_threads(self._pool.running + 1)
        self.device_name = _cpu_name(self._threads) if self._cpu else describe_device(self.device)
        self.corpus_name = corpus.name
        self._trainer: Trainer | None = Trainer(config, corpus, self.device, held_bytes=held_bytes)
        self.probe_text = probe_text or corpus.probe or corpus.prefix  # the text's own words
        self.probe_every_s = probe_every_s
        self._ticket = new_ticket()
        self._cond = threading.Condition()
        self._state = "ready"
        self._paused = start_paused
        self._stop = False
        self._credits = 0  # single steps granted while paused
        self._pending: dict[str, float | None] = {}  # knob -> new value, applied by the worker
        self._max_sps = max_steps_per_sec
        self._step = 0
        self._epoch = 0
        self._tps: float | None = None
        self._note: str | None = None
        self._outcome: Outcome | None = None
        self._thread: threading.Thread | None = None
        self._last_probe = 0.0
        self._weights: tuple[int, dict[str, torch.Tensor]] | None = None

    @property
    def config(self) -> TrainConfig:
        """The config in force: the start config with every live knob change applied."""
        with self._cond:
            return self._config

    def weights(self) -> tuple[int, dict[str, torch.Tensor]] | None:
        """(step, name -> CPU float32 tensor) of the latest weights copy, None before one.
        Refreshed with the gate probe (about once a second) and at the end of the run."""
        with self._cond:
            return self._weights

    # -- control (any thread) -------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("this job was already started")
            self._thread = threading.Thread(
                target=self._work, name=f"gru-job-{self._ticket}", daemon=True
            )
            self._state = "queued"
            self._thread.start()

    def pause(self) -> None:
        self._set(paused=True)

    def resume(self) -> None:
        self._set(paused=False)

    def _set(self, *, paused: bool) -> None:
        with self._cond:
            self._paused = paused
            if not paused:
                self._credits = 0  # resuming drops any single steps not yet taken
            self._cond.notify_all()

    def step_once(self) -> None:
        """While paused: train exactly one more minibatch."""
        with self._cond:
            self._paused = True
            self._credits += 1
            self._cond.notify_all()

    def stop(self, wait: bool = True, timeout: float = 30.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is None or not thread.is_alive():  # never started, or driven by run_sync
            with self._cond:
                ended = self._state in ENDED
            if not ended:
                trainer = self._trainer
                if trainer is not None and trainer.pending:
                    try:
                        if self._deliver(trainer.flush()):
                            return
                    except Exception as exc:
                        self._finish(Outcome("error", self._step, f"{type(exc).__name__}: {exc}"))
                        return
                self._finish(Outcome("stopped", self._step, f"stopped at step {self._step}"))

    def set_clip_threshold(self, value: float | None) -> None:
        self._queue_knob("clip_threshold", value)

    def set_lr(self, value: float) -> None:
        self._queue_knob("lr", value)

    def _queue_knob(self, name: str, value: float | None) -> None:
        with self._cond:
            self._config = self._config.replace(**{name: value})  # validates; raises
            self._pending[name] = value
            self._cond.notify_all()

    def set_speed(self, max_steps_per_sec: float | None) -> None:
        if max_steps_per_sec is not None and not max_steps_per_sec > 0:
            raise ValueError(f"max_steps_per_sec={max_steps_per_sec!r} must be > 0 or None")
        with self._cond:
            self._max_sps = max_steps_per_sec
            self._cond.notify_all()

    def status(self) -> JobStatus:
        with self._cond:
            state = self._state
            if state in ("running",) and self._paused:
                state = "paused"
            return JobStatus(
                state=state,
                step=self._step,
                epoch=self._epoch,
                num_epochs=self._config.num_epochs,
                tokens_per_sec=self._tps,
                device=self.device_name,
                clip_threshold=self._config.clip_threshold,
                lr=self._config.lr,
                queue_position=self._pool.position(self._ticket) if state == "queued" else None,
                outcome=self._outcome,
                max_steps_per_sec=self._max_sps,
                note=self._note,
            )

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the worker -----------------------------------------------------------------------
    def run_sync(self, max_steps: int | None = None) -> JobStatus:
        """Drive the loop in this thread (tests): up to ``max_steps`` more steps, or to the end.
        Pause and the speed limit are ignored; stop is not. Nothing is left in flight."""
        if self._trainer is None:
            return self.status()
        with self._cond:
            self._state = "running"
        self._loop(max_steps, wait=False)
        return self.status()

    def _work(self) -> None:
        if not self._pool.acquire(self._ticket, lambda: self._stop):
            self._finish(Outcome("stopped", 0, "stopped while waiting in the queue"))
            return
        try:
            with self._cond:
                if self._state == "queued":
                    self._state = "running"
            self._loop(None, wait=True)
        finally:
            self._pool.release(self._ticket)

    def _loop(self, max_steps: int | None, wait: bool) -> None:
        trainer = self._trainer
        assert trainer is not None
        taken = 0
        last_step_at = 0.0
        try:
            while True:
                go = self._wait_turn(last_step_at, trainer) if wait else not self._stop
                if go == "flush":  # about to wait (paused): show the step in flight first
                    if self._deliver(trainer.flush()):
                        return
                    continue
                if not go:
                    if not self._deliver(trainer.flush()):
                        step = self._step
                        self._finish(Outcome("stopped", step, f"stopped at step {step}"))
                    return
                self._apply_knobs(trainer)
                self._share_threads(wait)
                with self._cond:
                    last = max_steps is not None and taken + 1 >= max_steps
                    lookahead = not (self._paused or self._max_sps or last)
                records = trainer.advance(lookahead)
                steps = sum(isinstance(r, StepRecord) for r in records)
                if steps:
                    last_step_at = time.perf_counter()
                    with self._cond:
                        if self._paused and self._credits > 0:
                            self._credits -= 1
                if self._deliver(records):
                    return
                taken += steps
                if max_steps is not None and taken >= max_steps:
                    return
        except Exception as exc:  # a bug or a device error: end the job, keep the records
            self._finish(Outcome("error", self._step, f"{type(exc).__name__}: {exc}"))

    def _deliver(self, records: list[Record]) -> bool:
        """Store records; True when one of them ended the run."""
        trainer = self._trainer
        for record in records:
            if isinstance(record, StepRecord):
                self.telemetry.add_step(record)
                with self._cond:
                    self._step, self._epoch = record.step, record.epoch
                if trainer is not None:
                    with self._cond:
                        self._note, paused = trainer.note, self._paused
                    self._maybe_probe(trainer, force=paused)
            elif isinstance(record, EpochRecord):
                self.telemetry.add_epoch(record)
                with self._cond:
                    self._tps = record.tokens_per_sec
                if trainer is not None:
                    self._maybe_probe(trainer, force=True)
            else:
                self._finish(record)
                return True
        return False

    def _wait_turn(self, last_step_at: float, trainer: Trainer) -> str | bool:
        """Block while paused (without credits) or throttled. False when asked to stop,
        'flush' when about to wait with a step in flight, else True."""
        with self._cond:
            while True:
                if self._stop:
                    return False
                if self._paused and self._credits == 0:
                    if trainer.pending:
                        return "flush"
                    self._cond.wait(0.5)
                    continue
                if self._max_sps and not (self._paused and self._credits):
                    wait = last_step_at + 1.0 / self._max_sps - time.perf_counter()
                    if wait > 0:
                        if trainer.pending:
                            return "flush"
                        self._cond.wait(min(wait, 0.5))
                        continue
                return True

    def _share_threads(self, pooled: bool) -> None:
        """On the CPU: this worker's torch threads, from the jobs running now (module doc)."""
        if not self._cpu:
            return
        running = self._pool.running if pooled else self._pool.running + 1
        want = self._config.num_threads or fair_threads(running, running * self._threads)
        if want != self._threads or torch.get_num_threads() != want:
            torch.set_num_threads(want)  # this OS thread's OpenMP team size
            with self._cond:
                self._threads = want
                self.device_name = _cpu_name(want)

    def _apply_knobs(self, trainer: Trainer) -> None:
        with self._cond:
            pending, self._pending = self._pending, {}
        at_step = trainer.step + 1  # the next step launched is the first to use them
        for name, value in pending.items():
            if name == "clip_threshold":
                if value == trainer.config.clip_threshold:
                    continue
                trainer.set_clip_threshold(value)
            else:
                if value == trainer.config.lr:
                    continue
                trainer.set_lr(float(value))  # type: ignore[arg-type]
            self.telemetry.add_event(at_step, name, value)

    def _maybe_probe(self, trainer: Trainer, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_probe < self.probe_every_s:
            return
        self._last_probe = now
        text, gates = trainer.trace_probe(self.probe_text)
        self.telemetry.set_probe(trainer.weights_step, text, gates)
        weights = (trainer.weights_step, trainer.weights())
        with self._cond:
            self._weights = weights

    def _finish(self, outcome: Outcome) -> None:
        trainer = self._trainer
        if trainer is not None:
            try:
                self._maybe_probe(trainer, force=True)  # the final gates and weights
            except Exception:  # the run is over either way; keep its outcome
                pass
        with self._cond:
            self._outcome = outcome
            self._state = outcome.status
            self._trainer = None  # free the model and its buffers
            self._cond.notify_all()
