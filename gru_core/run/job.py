"""A training run in a background thread: start, pause, step, resume, stop, and live knobs.

The lifecycle (states, worker thread, pause/resume/stop, the server's slot, single steps, the
speed limit) is ``lifecycle.SteppedJob``'s; scheduling (the slot pool, torch threads) is
``scheduling``'s.
The worker owns the ``Trainer`` (and so the model); records go into a thread-safe
``Telemetry`` store, which the UI reads snapshots of. Nothing here knows about Streamlit.

**Knobs, one truth.** ``set_knob`` (``set_clip_threshold``, ``set_lr``) validates in the
caller's thread and queues the change; only the worker applies it to the trainer, between
two steps, so it reaches the next step launched. The job keeps no config of its own:
``config`` is the trainer's config in force with the queued changes on top, i.e. the one
the next step uses (the start config stays in ``start_config``); the status says that and,
apart, what the last recorded step used. The store gets an event at the first step using a
change, so charts can mark it, and every record says which values its step used.

**Records one step late.** The worker asks the trainer to launch step n+1 before it reads
step n's record (``Trainer.advance``), unless it is about to wait: while paused, under a
speed limit, or at the last step ``run_sync`` was asked for, it does not look ahead; on
pause and stop it flushes the step in flight, so no record is lost. ``run_sync`` drives the
same loop in the calling thread (tests, single steps before a start).

**Speed.** The status's tokens/s is ``lifecycle.Throughput``'s: over the last 5 s while the
run trains, the mean over the run once it has ended; ``tokens_per_sec_basis`` says which.

**Weights.** Whenever the gate probe is refreshed (about once a second, and always at the
end), the job also keeps a CPU copy of the weights for the memory views (``weights()``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gru_core.config import LIVE_KNOBS, TrainConfig, describe_device, resolve_device
from gru_core.data import Corpus
from gru_core.i18n import N_, Note
from gru_core.run.lifecycle import ENDED, JobState, SteppedJob
from gru_core.run.records import EpochRecord, Outcome, StepRecord
from gru_core.run.scheduling import CpuThreads, SlotPool
from gru_core.run.telemetry import Telemetry
from gru_core.run.trainer import Record, Trainer

__all__ = ["ENDED", "JobState", "JobStatus", "TrainingJob"]
Knobs = dict[str, float | None]  # LIVE_KNOBS name -> value


@dataclass(frozen=True)
class JobStatus:
    state: JobState  # 'ready', 'queued', 'running', 'paused', + the ENDED states
    step: int
    epoch: int
    num_epochs: int
    tokens_per_sec: float | None  # see tokens_per_sec_basis
    device: str  # human name, e.g. 'CPU (2 threads)' or 'CUDA: NVIDIA H100'
    clip_threshold: float | None  # in force: what the next step uses (None = off)
    lr: float  # in force: what the next step uses
    queue_position: int | None
    outcome: Outcome | None
    max_steps_per_sec: float | None
    note: str | None = None  # e.g. why a CUDA run trains eagerly instead of in a CUDA graph
    last_step_knobs: Knobs | None = None  # what the last recorded step used; None before one
    tokens_per_sec_basis: str = ""  # 'last 5 s' while it trains, 'mean over the run' ended


class Probe:
    """The gates on the probe text and a CPU copy of the weights, taken from the worker at
    most every ``every_s`` seconds (always when forced: at an epoch's end, while paused, at
    the end of the run); ``weights()`` may be read from any thread."""

    def __init__(self, text: str, every_s: float, telemetry: Telemetry) -> None:
        self.text, self.every_s, self.telemetry = text, every_s, telemetry
        self._lock = threading.Lock()
        self._last = 0.0
        self._weights: tuple[int, dict[str, torch.Tensor]] | None = None

    def refresh(self, trainer: Trainer, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        text, gates = trainer.trace_probe(self.text)
        self.telemetry.set_probe(trainer.weights_step, text, gates)
        weights = (trainer.weights_step, trainer.weights())
        with self._lock:
            self._weights = weights

    def weights(self) -> tuple[int, dict[str, torch.Tensor]] | None:
        with self._lock:
            return self._weights


class TrainingJob(SteppedJob):
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
        on_end: Callable[[TrainingJob], None] | None = None,
    ) -> None:
        """``held_bytes``: memory the session already holds against the budget (limits).
        ``on_end``: called once with this job when it ends (``lifecycle``: The end)."""
        super().__init__(pool, start_paused, max_steps_per_sec, on_end)
        self.start_config = config
        self.telemetry = telemetry or Telemetry()
        self.device = device or resolve_device(config.device)
        self._threads = CpuThreads(self._pool, config.num_threads) if self.device == "cpu" else None
        self._device_label = describe_device(self.device)
        self.corpus_name = corpus.name
        self._trainer: Trainer | None = Trainer(config, corpus, self.device, held_bytes=held_bytes)
        self._ended_config = config  # the trainer's last config, once the trainer is freed
        text = probe_text or corpus.probe or corpus.prefix  # the text's own words
        self.probe = Probe(text, probe_every_s, self.telemetry)
        self._pending: Knobs = {}  # knob -> new value, applied by the worker
        self._step = self._epoch = 0
        self._used: Knobs | None = None
        self._note: str | None = None
        self._outcome: Outcome | None = None

    @property
    def device_name(self) -> str:
        """e.g. 'CPU (2 threads)' or 'CUDA: NVIDIA H100'."""
        return self._threads.name if self._threads is not None else self._device_label

    @property
    def config(self) -> TrainConfig:
        """The config the next step uses: the trainer's, with the queued knob changes."""
        with self._cond:
            return self._config_locked()

    def _config_locked(self) -> TrainConfig:
        base = self._trainer.config if self._trainer is not None else self._ended_config
        return base.replace(**self._pending) if self._pending else base

    def weights(self) -> tuple[int, dict[str, torch.Tensor]] | None:
        """(step, name -> CPU float32 tensor) of the latest weights copy, None before one.
        Refreshed with the gate probe (about once a second) and at the end of the run."""
        return self.probe.weights()

    # -- control (any thread) -------------------------------------------------------------
    def _end_without_worker(self) -> None:
        queued, trainer = self._state == JobState.QUEUED, self._trainer
        try:
            if trainer is not None and trainer.pending and self._deliver(trainer.flush()):
                return
        except Exception as exc:
            self._finish(Outcome("error", self._step, f"{type(exc).__name__}: {exc}"))
            return
        if queued:
            message = Note(N_("stopped while waiting in the queue"))
        else:
            message = Note(N_("stopped at step {step}"), step=self._step)
        self._finish(Outcome("stopped", self._step, message))

    def set_knob(self, name: str, value: float | None) -> None:
        """Queue a live knob change (``config.LIVE_KNOBS``); ValueError if it is invalid."""
        if name not in LIVE_KNOBS:
            raise ValueError(f"{name!r} is not a live knob: {', '.join(LIVE_KNOBS)}")
        with self._cond:
            self._config_locked().replace(**{name: value})  # validates; raises
            self._pending[name] = value
            self._cond.notify_all()

    def set_clip_threshold(self, value: float | None) -> None:
        self.set_knob("clip_threshold", value)

    def set_lr(self, value: float) -> None:
        self.set_knob("lr", value)

    def status(self) -> JobStatus:
        with self._cond:
            state, config = self._visible_state(), self._config_locked()
            tps, basis = self.throughput.report(ended=state in ENDED)
            return JobStatus(
                state, self._step, self._epoch, config.num_epochs, tps, self.device_name,
                config.clip_threshold, config.lr, self._queue_position(state), self._outcome,
                self._max_sps, self._note, self._used, basis,
            )  # fmt: skip

    # -- the worker -----------------------------------------------------------------------
    def run_sync(self, max_steps: int | None = None) -> JobStatus:
        """Drive the loop in this thread (tests): up to ``max_steps`` more steps, or to the end.
        Pause and the speed limit are ignored; stop is not. Nothing is left in flight."""
        if self._trainer is None:
            return self.status()
        with self._cond:
            self._state = JobState.RUNNING
        self._loop(max_steps, wait=False)
        return self.status()

    def _run(self) -> None:
        self._loop(None, wait=True)

    def _loop(self, max_steps: int | None, wait: bool) -> None:
        trainer = self._trainer
        assert trainer is not None
        taken, last_step_at = 0, 0.0
        try:
            while True:
                go = self._wait_turn(last_step_at, trainer.pending) if wait else not self._stop
                if go == "flush":  # about to wait (paused): show the step in flight first
                    if self._deliver(trainer.flush()):
                        return
                    continue
                if not go:
                    self._end_without_worker()  # stopped: flush, then end
                    return
                self._apply_knobs(trainer)
                if self._threads is not None:  # on the CPU: its share of the cores now
                    self._threads.update(pooled=wait)
                with self._cond:
                    last = max_steps is not None and taken + 1 >= max_steps
                    lookahead = not (self._paused or self._max_sps or last)
                    self.throughput.begin()
                records = trainer.advance(lookahead)
                steps = sum(isinstance(r, StepRecord) for r in records)
                if steps:
                    last_step_at = self._took_step()
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
                    self._used = {name: getattr(record, name) for name in LIVE_KNOBS}
                    self.throughput.add(record.tokens)
                    self._note, paused = (trainer.note if trainer else None), self._paused
                if trainer is not None:
                    self.probe.refresh(trainer, force=paused)
            elif isinstance(record, EpochRecord):
                self.telemetry.add_epoch(record)
                if trainer is not None:
                    self.probe.refresh(trainer, force=True)
            else:
                self._finish(record)
                return True
        return False

    def _apply_knobs(self, trainer: Trainer) -> None:
        at_step = trainer.step + 1  # the next step launched is the first to use them
        with self._cond:
            pending, self._pending = self._pending, {}
            changed = {n: v for n, v in pending.items() if v != getattr(trainer.config, n)}
            if changed:
                trainer.set_config(trainer.config.replace(**changed))
        for name, value in changed.items():
            self.telemetry.add_event(at_step, name, value)

    def _finish(self, outcome: Outcome) -> None:
        trainer = self._trainer
        if trainer is not None:
            try:
                self.probe.refresh(trainer, force=True)  # the final gates and weights
            except Exception:  # the run is over either way; keep its outcome
                pass
        with self._cond:
            self._outcome = outcome
            self._state = JobState(outcome.status)
            if trainer is not None:
                self._ended_config = trainer.config
            self._trainer = None  # free the model and its buffers
            self._cond.notify_all()
        self._ended()
