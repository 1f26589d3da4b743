"""Server scheduling: how many jobs train at once, who waits, and how they share the cores.

A process-wide ``SlotPool`` caps how many jobs (training runs and sweeps) train at once
(``default_max_jobs``); a job over the cap waits in a FIFO queue and can report its position.
Each job holds a ``ticket`` (``new_ticket``) for its place.

**Threads.** On the CPU a running job takes ``cores // (jobs running)`` torch threads (its
config's ``num_threads`` when set), and no more than the load average leaves free
(``fair_threads``), set from its own worker thread between steps (``CpuThreads``): with
torch's OpenMP backend the intra-op thread count is per OS thread (a thread sets it for
itself; a new thread starts from the last value set anywhere), so a lone run on an idle
machine gets every core and jobs split them only while several run.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable

import torch

from gru_core.i18n import ngettext

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
    on a core another program is using wait on each other, so a busy machine can make two
    threads hundreds of times slower than one (benchmarks/README.md).
    """
    cores = os.cpu_count() or 1
    share = max(1, cores // max(1, running))
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return share
    free = cores - max(0.0, load - own_threads)
    return max(1, min(share, int(free + 0.5)))


_ticket_lock = threading.Lock()
_next_ticket = 0


def new_ticket() -> int:
    global _next_ticket
    with _ticket_lock:
        _next_ticket += 1
        return _next_ticket


def cpu_name(threads: int) -> str:
    """How a CPU device with ``threads`` torch threads reads in a status line."""
    return ngettext("CPU ({n} thread)", "CPU ({n} threads)", threads).format(n=threads)


class CpuThreads:
    """A CPU job's torch threads: its config's ``num_threads`` when set (``pinned``), else
    its fair share of the cores (``fair_threads``), updated from its worker between steps."""

    def __init__(self, pool: SlotPool, pinned: int | None) -> None:
        self.pool, self.pinned = pool, pinned
        self.count = pinned or fair_threads(pool.running + 1)

    @property
    def name(self) -> str:
        return cpu_name(self.count)

    def update(self, pooled: bool) -> None:
        """Set this OS thread's torch threads for the jobs running now (``pooled``: this job
        holds a slot of the pool, else it runs beside them)."""
        running = self.pool.running if pooled else self.pool.running + 1
        want = self.pinned or fair_threads(running, running * self.count)
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)  # this OS thread's OpenMP team size
        self.count = want
