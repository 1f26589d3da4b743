"""One lifecycle for every background job (a training run, a sweep): its states, its worker
thread, pause, resume and stop; and the honest speed a run reports.

**States** (``JobState``, strings as well): 'ready' (built) -> 'queued' (started, waiting for
a slot of the server's ``SlotPool``) -> 'running' ('paused' while paused) -> one of ``ENDED``:
'done', 'stopped', 'diverged', 'out_of_memory', 'error'. A training run can end in any of them;
a sweep ends 'done', 'stopped' or 'error', and each of its runs (a map cell) ends in the same
words (``sweep.results``: a cell that diverged says 'diverged').

**Threads.** The worker thread owns the job's device work; other threads talk to it only
through the job's methods, which take the lock (``_cond``, a condition variable) and wake
the worker. ``start()`` queues the job for a slot; once it holds one, the worker calls the
subclass's ``_run()``; the slot is released however that ends. A job stopped while its
worker is not running (stopped in the queue, never started, or driven in the caller's thread
by ``run_sync``) ends through ``_end_without_worker()``. Nothing here knows about Streamlit.

**The end.** A job's ``on_end`` callback (given at construction) is called once, with the
job, when it first reaches an ENDED state, from the thread that ended it (the worker, or the
caller of ``stop``); a subclass calls ``_ended()`` after setting that state. A server saves a
run there, whether or not any page is looking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from gru_core.run.scheduling import SlotPool, new_ticket, shared_pool

_log = logging.getLogger(__name__)


class JobState(StrEnum):
    """Where a background job is (a ``str`` too: ``JobState.DONE == 'done'``)."""

    __hash__ = str.__hash__  # so that 'done' in ENDED, as in a set of plain strings

    READY = "ready"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    OUT_OF_MEMORY = "out_of_memory"
    ERROR = "error"


ENDED = frozenset(
    {JobState.DONE, JobState.STOPPED, JobState.DIVERGED, JobState.OUT_OF_MEMORY, JobState.ERROR}
)


class BackgroundJob:
    """The lifecycle shared by ``TrainingJob`` and ``SweepJob`` (module docstring)."""

    thread_name = "gru-job"

    def __init__(
        self,
        pool: SlotPool | None,
        start_paused: bool,
        on_end: Callable[[Any], None] | None = None,  # called with the job itself
    ) -> None:
        self._pool = pool or shared_pool()
        self._on_end = on_end
        self._end_told = False  # on_end has been called (or taken by the thread calling it)
        self._ticket = new_ticket()
        self._cond = threading.Condition()
        self._state = JobState.READY
        self._paused = start_paused
        self._stop = False
        self._thread: threading.Thread | None = None
        self._started: float | None = None  # perf_counter at start()

    # -- control (any thread) -------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("this job was already started")
            self._state, self._started = JobState.QUEUED, time.perf_counter()
            self._thread = threading.Thread(
                target=self._work, name=f"{self.thread_name}-{self._ticket}", daemon=True
            )
            self._thread.start()

    def pause(self) -> None:
        self._set_paused(True)

    def resume(self) -> None:
        self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        with self._cond:
            self._paused = paused
            self._on_pause_change(paused)
            self._cond.notify_all()

    def stop(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Ask the worker to stop; with ``wait``, join it (at most ``timeout`` seconds)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            with self._cond:
                ended = self._state in ENDED
            if not ended:
                self._end_without_worker()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- what the worker and the status read ----------------------------------------------
    def _visible_state(self) -> JobState:
        """The state as reported (call with the lock held): 'paused' while paused."""
        if self._state == JobState.RUNNING and self._paused:
            return JobState.PAUSED
        return self._state

    def _queue_position(self, state: JobState) -> int | None:
        return self._pool.position(self._ticket) if state == JobState.QUEUED else None

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

    # -- the worker -----------------------------------------------------------------------
    def _work(self) -> None:
        if not self._pool.acquire(self._ticket, lambda: self._stop):
            self._end_without_worker()
            return
        try:
            with self._cond:
                if self._state == JobState.QUEUED:
                    self._state = JobState.RUNNING
            self._run()
        finally:
            self._pool.release(self._ticket)

    def _ended(self) -> None:
        """Call (without the lock) after setting an ENDED state: runs ``on_end`` once."""
        with self._cond:
            if self._end_told or self._state not in ENDED:
                return
            self._end_told = True
        if self._on_end is not None:
            try:
                self._on_end(self)
            except Exception:  # the job has ended either way; say what the callback hit
                _log.exception("on_end of %s-%s failed", self.thread_name, self._ticket)

    # -- what a job defines ---------------------------------------------------------------
    def _run(self) -> None:
        """The job's work, in the worker thread, holding a slot."""
        raise NotImplementedError

    def _end_without_worker(self) -> None:
        """End a job whose worker is not running (stopped in the queue, or never started)."""
        raise NotImplementedError

    def _on_pause_change(self, paused: bool) -> None:
        """Called with the lock held when pause or resume is asked."""


class SteppedJob(BackgroundJob):
    """A job that advances in steps: single steps while paused (``step_once``), a speed
    limit (``set_speed``) and its speed (``throughput``). The worker calls ``_wait_turn``
    before each step and ``_took_step`` after one."""

    def __init__(
        self,
        pool: SlotPool | None,
        start_paused: bool,
        max_steps_per_sec: float | None,
        on_end: Callable[[Any], None] | None = None,
    ) -> None:
        super().__init__(pool, start_paused, on_end)
        self._credits = 0  # single steps granted while paused
        self._max_sps = max_steps_per_sec
        self.throughput = Throughput()

    def _on_pause_change(self, paused: bool) -> None:
        if not paused:
            self._credits = 0  # resuming drops any single steps not yet taken

    def step_once(self) -> None:
        """While paused: take exactly one more step."""
        with self._cond:
            self._paused = True
            self._credits += 1
            self._cond.notify_all()

    def set_speed(self, max_steps_per_sec: float | None) -> None:
        if max_steps_per_sec is not None and not max_steps_per_sec > 0:
            raise ValueError(f"max_steps_per_sec={max_steps_per_sec!r} must be > 0 or None")
        with self._cond:
            self._max_sps = max_steps_per_sec
            self._cond.notify_all()

    def _wait_turn(self, last_step_at: float, in_flight: bool) -> str | bool:
        """Block while paused (without credits) or throttled. False when asked to stop,
        'flush' when about to wait with a step ``in_flight``, else True."""
        with self._cond:
            while True:
                if self._stop:
                    return False
                if self._paused and self._credits == 0:
                    if in_flight:
                        return "flush"
                    self.throughput.pause()
                    self._cond.wait(0.5)
                    continue
                if self._max_sps and not (self._paused and self._credits):
                    wait = last_step_at + 1.0 / self._max_sps - time.perf_counter()
                    if wait > 0:
                        if in_flight:
                            return "flush"
                        self._cond.wait(min(wait, 0.5))
                        continue
                return True

    def _took_step(self) -> float:
        """A step was recorded: spend a single step's credit; when it was (perf_counter)."""
        with self._cond:
            if self._paused and self._credits > 0:
                self._credits -= 1
        return time.perf_counter()


class Throughput:
    """A run's speed in tokens per second, honest about what it measures.

    While the run trains: the tokens of the steps recorded in the last ``window_s`` seconds
    over that window (over the time since it started or resumed, when that is shorter; at
    the last record while paused). Once it has ended or stopped: the mean over the run, every
    token over the seconds it spent training (from its first step's start to its last
    record, less the time it was paused; waits of a speed limit count, they are its pace).
    Times are ``clock()`` seconds (``time.perf_counter``; tests pass a fake clock). Not
    thread-safe: a job calls it under its lock."""

    def __init__(
        self, window_s: float = 5.0, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.window_s, self.clock = window_s, clock
        self._recent: deque[tuple[float, int]] = deque()  # (time, tokens) of recent records
        self._began: float | None = None  # when training began
        self._since: float | None = None  # when it began or last resumed (the window's floor)
        self._idle = 0.0  # seconds paused
        self._paused_at: float | None = None
        self._last: float | None = None  # the last record's time
        self._tokens = 0

    def begin(self) -> None:
        """Training goes on now (call before each step): the first step, or the first after
        a pause, which the mean leaves out and the window starts after."""
        now = self.clock()
        if self._began is None:
            self._began = self._since = now
        elif self._paused_at is not None:
            self._idle += now - self._paused_at
            self._paused_at = None
            self._recent.clear()
            self._since = now

    def pause(self) -> None:
        """Training waits (paused) from now until the next ``begin``."""
        if self._began is not None and self._paused_at is None:
            self._paused_at = self.clock()

    def add(self, tokens: int) -> None:
        """A step's record of ``tokens`` target tokens arrived now."""
        if self._began is None:
            self.begin()
        now = self.clock()
        self._tokens += tokens
        self._last = now
        self._recent.append((now, tokens))
        while self._recent and self._recent[0][0] <= now - self.window_s:
            self._recent.popleft()

    def recent(self) -> float | None:
        """Tokens/s over the last ``window_s`` seconds (module docstring)."""
        at = self._last if self._paused_at is not None else self.clock()
        if at is None or self._since is None:
            return None
        start = max(at - self.window_s, self._since)
        tokens = sum(n for t, n in self._recent if t > start)
        return tokens / (at - start) if at > start and tokens else None

    def report(self, ended: bool) -> tuple[float | None, str]:
        """(tokens/s, what it is over): the window while the run trains, else the mean."""
        if ended:
            return self.mean(), "mean over the run"
        return self.recent(), f"last {self.window_s:g} s"

    def mean(self) -> float | None:
        """Tokens/s over the whole run: all tokens over the seconds spent training."""
        if self._began is None or self._last is None:
            return None
        seconds = self._last - self._began - self._idle
        return self._tokens / seconds if seconds > 0 else None
