"""The epoch loop, once: d2l's ``train_ch8`` order of minibatches on a K-axis ``StepCore``.

Each epoch draws its minibatches from ``batch_iterator(train, B, T, sampling, rng)`` with
``rng = random.Random(seed)``, so K members of one seed (a sweep chunk) draw exactly what a
single run of that seed draws. The state is reset at the epoch's start, and before every
minibatch with random sampling (d2l: a fresh state per epoch, per batch when random).
Gradient flows are asked for on steps 1, 1 + k, 1 + 2k, ... (``flow_every`` = k; never when
None).

**One step late.** ``launch()`` starts the next minibatch on the device and returns at
once; ``collect()`` reads the oldest step in flight (its (K, S) stats rows). A caller that
launches step n+1 before it collects step n keeps the device busy while the host builds
records. The loop never launches across an epoch's end (``epoch_over``): validation after
an epoch sees its last weights. Used by ``trainer.Trainer`` (K = 1, records, endings) and
``sweep.chunk`` (K cells, trackers).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from gru_core.data import batch_iterator
from gru_core.step.core import StepCore


@dataclass(frozen=True)
class Launched:
    """A step on its way: which step and epoch, where its stats land, what it computes."""

    step: int  # 1-based global step
    epoch: int  # 1-based epoch
    slot: int  # host slot of its stats (``StepCore.read``)
    want_flow: bool  # whether it records the gradient flows
    tokens: int  # target tokens (B*T)


class EpochLoop:
    """The minibatches of every epoch, launched on ``core`` (module docstring)."""

    def __init__(self, core: StepCore, train: Tensor, flow_every: int | None) -> None:
        config = core.configs[0]  # members share the shape, sampling and seed
        self.core, self.train, self.flow_every = core, train, flow_every
        self.rng = random.Random(config.seed)  # the iterators' offsets and shuffles
        self.step = 0  # steps launched
        self.epoch = 0  # epochs started
        self.pending: deque[Launched] = deque()
        self._batches: Iterator[tuple[Tensor, Tensor]] | None = None
        self._next: tuple[Tensor, Tensor] | None = None  # the epoch's next minibatch
        self._first = True

    @property
    def epoch_over(self) -> bool:
        """The epoch's every minibatch launched and collected (True before the first)."""
        return not self.pending and self._next is None

    @property
    def has_next(self) -> bool:
        """A minibatch of this epoch is still to launch."""
        return self._next is not None

    def start_epoch(self) -> None:
        cfg = self.core.configs[0]
        self.epoch += 1
        self._batches = batch_iterator(
            self.train, cfg.batch_size, cfg.num_steps, cfg.sampling, self.rng
        )
        self._next = next(self._batches, None)
        self._first = True

    def launch(self) -> Launched | None:
        """Start the epoch's next minibatch on the device (None at the epoch's end)."""
        if self._next is None or self._batches is None:
            return None
        X, Y = self._next
        self._next = next(self._batches, None)
        if self._first or self.core.configs[0].sampling == "random":
            self.core.reset_state()
            self._first = False
        return self.launch_batch(X, Y)

    def launch_batch(self, X: Tensor, Y: Tensor) -> Launched:
        """Start ``(X, Y)`` as the next step, from the core's state as it is."""
        self.step += 1
        every = self.flow_every
        want_flow = every is not None and (self.step - 1) % every == 0
        self.core.load_batch(X, Y)
        launched = Launched(self.step, self.epoch, self.core.run(want_flow), want_flow, Y.numel())
        self.pending.append(launched)
        return launched

    def collect(self) -> tuple[Launched, np.ndarray]:
        """The oldest step in flight and its (K, S) host stats rows."""
        launched = self.pending.popleft()
        return launched, self.core.read(launched.slot)

    def drop_pending(self, last_step: int) -> None:
        """Forget the steps in flight after ``last_step`` (the core masked them: a single
        run that diverged, or ran out of memory, ends there)."""
        self.pending.clear()
        self.step = last_step
