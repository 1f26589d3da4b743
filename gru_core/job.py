"""A training run in a background thread: start, pause, step, resume, stop, and live knobs.

The worker thread owns the ``Trainer`` (and so the model); other threads talk to it only
through this object's methods, which take a lock and wake the worker with a condition
variable. Records go into a thread-safe ``Telemetry`` store; the UI reads snapshots of it.
Nothing here knows about Streamlit.

Knob changes (clip threshold, learning rate) are queued and applied by the worker between
two steps; the store gets an event at the first step that uses the new value, so charts can
mark it. ``run_sync`` drives the same loop in the calling thread (for tests).

A process-wide ``SlotPool`` caps how many jobs train at once; a job over the cap waits in
a FIFO queue in state 'queued' and reports its position.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .config import TrainConfig, describe_device, resolve_device
from .data import Corpus
from .records import EpochRecord, Outcome, StepRecord
from .telemetry import Telemetry
from .train import Record, Trainer

PROBE_TEXT = "time traveller for so it will be convenient to speak of him"
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
    """The server-wide pool. Creating it also caps torch's intra-op threads so that the
    jobs allowed to run at once share the CPU cores instead of oversubscribing them (the
    cap is process-wide in torch; tiny GRU matmuls gain little from a second thread, and
    oversubscribed OpenMP threads can slow a step down many times over)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = SlotPool(default_max_jobs())
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // _POOL.capacity))
        return _POOL


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


_ticket_lock = threading.Lock()
_next_ticket = 0


def _new_ticket() -> int:
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
        probe_text: str = PROBE_TEXT,
        probe_every_s: float = 1.0,
        max_steps_per_sec: float | None = None,
        pool: SlotPool | None = None,
        start_paused: bool = False,
    ) -> None:
        self.config = config
        self.telemetry = telemetry or Telemetry()
        self._pool = pool or shared_pool()  # first: the shared pool sets torch's threads
        self.device = device or resolve_device(config.device)
        self.device_name = describe_device(self.device)
        self.corpus_name = corpus.name
        self._trainer: Trainer | None = Trainer(config, corpus, self.device)
        self.probe_text = probe_text
        self.probe_every_s = probe_every_s
        self._ticket = _new_ticket()
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
        self._clip = config.clip_threshold
        self._lr = config.lr
        self._outcome: Outcome | None = None
        self._thread: threading.Thread | None = None
        self._last_probe = 0.0
        self._gen: Iterator[Record] | None = None

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
                self._finish(Outcome("stopped", self._step, f"stopped at step {self._step}"))

    def set_clip_threshold(self, value: float | None) -> None:
        self.config.replace(clip_threshold=value)  # validate now, in the caller's thread
        self._queue_knob("clip_threshold", value)

    def set_lr(self, value: float) -> None:
        self.config.replace(lr=value)
        self._queue_knob("lr", value)

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
                num_epochs=self.config.num_epochs,
                tokens_per_sec=self._tps,
                device=self.device_name,
                clip_threshold=self._clip,
                lr=self._lr,
                queue_position=self._pool.position(self._ticket) if state == "queued" else None,
                outcome=self._outcome,
                max_steps_per_sec=self._max_sps,
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
        Pause and the speed limit are ignored; stop is not."""
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
        if self._gen is None:
            self._gen = trainer.run()
        taken = 0
        last_step_at = 0.0
        try:
            while True:
                if not (self._wait_turn(last_step_at) if wait else not self._stop):
                    self._finish(Outcome("stopped", self._step, f"stopped at step {self._step}"))
                    return
                self._apply_knobs(trainer)
                try:
                    record = next(self._gen)
                except StopIteration:
                    return
                if isinstance(record, StepRecord):
                    last_step_at = time.perf_counter()
                    self.telemetry.add_step(record)
                    with self._cond:
                        self._step, self._epoch = record.step, record.epoch
                        if self._paused and self._credits > 0:
                            self._credits -= 1
                    self._maybe_probe(trainer, force=self._paused)
                    taken += 1
                    if max_steps is not None and taken >= max_steps:
                        return
                elif isinstance(record, EpochRecord):
                    self.telemetry.add_epoch(record)
                    with self._cond:
                        self._tps = record.tokens_per_sec
                    self._maybe_probe(trainer, force=True)
                else:
                    self._maybe_probe(trainer, force=True)
                    self._finish(record)
                    return
        except Exception as exc:  # a bug or a device error: end the job, keep the records
            self._finish(Outcome("error", self._step, f"{type(exc).__name__}: {exc}"))

    def _wait_turn(self, last_step_at: float) -> bool:
        """Block while paused (without credits) or throttled. False when asked to stop."""
        with self._cond:
            while True:
                if self._stop:
                    return False
                if self._paused and self._credits == 0:
                    self._cond.wait(0.5)
                    continue
                if self._max_sps and not (self._paused and self._credits):
                    wait = last_step_at + 1.0 / self._max_sps - time.perf_counter()
                    if wait > 0:
                        self._cond.wait(min(wait, 0.5))
                        continue
                return True

    def _apply_knobs(self, trainer: Trainer) -> None:
        with self._cond:
            pending, self._pending = self._pending, {}
        at_step = trainer.step + 1
        for name, value in pending.items():
            if name == "clip_threshold":
                if value == trainer.clip_threshold:
                    continue
                trainer.set_clip_threshold(value)
            else:
                if value == trainer.lr:
                    continue
                trainer.set_lr(float(value))  # type: ignore[arg-type]
            self.telemetry.add_event(at_step, name, value)
        with self._cond:
            self._clip, self._lr = trainer.clip_threshold, trainer.lr

    def _queue_knob(self, name: str, value: float | None) -> None:
        with self._cond:
            self._pending[name] = value
            if name == "clip_threshold":
                self._clip = value
            else:
                self._lr = float(value)  # type: ignore[arg-type]
            self._cond.notify_all()

    def _maybe_probe(self, trainer: Trainer, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_probe < self.probe_every_s:
            return
        self._last_probe = now
        text, gates = trainer.trace_probe(self.probe_text)
        self.telemetry.set_probe(trainer.step, text, gates)

    def _finish(self, outcome: Outcome) -> None:
        with self._cond:
            self._outcome = outcome
            self._state = outcome.status
            self._trainer = None  # free the model and its buffers
            self._gen = None
            self._cond.notify_all()
