"""Train one chunk of a sweep: K cells of one shape and seed on one K-axis ``StepCore``.

The loop is ``run.loop.EpochLoop``, the ``Trainer``'s, for K members at once: the minibatches
a single run of that seed draws, the state reset where d2l resets it, every member stepped,
and the (K, S) stats read one step late (the next step is launched before the last one is
read). A member whose loss or gradient norm is not finite
is masked by the core's guard from then on; its ``diverged_step`` is that step, as the
single run's Outcome says, and it is no longer tracked, while the others go on. Validation
perplexity per member every ``eval_every`` epochs and at the last. No gradient flows are
asked for (the map does not show them; the loss, norms and update are the same either way).

Per member, bounded memory: running sums, the first step and the last ``LAST_STEPS``, the
epochs' perplexities, and a curve of ``CURVE_POINTS`` points, each the geometric mean of
the batch perplexities of consecutive steps (``thinning.Curve``: the stride doubles when full).

``run_chunk`` is a plain function of plain arguments, so the local job calls it in a thread
and Ray ships it to a worker as it is.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from gru_core.perplexity import perplexity
from gru_core.run.loop import EpochLoop
from gru_core.run.thinning import Curve
from gru_core.run.verdict import LAST_STEPS, Evidence, Verdict, judge
from gru_core.step import stats
from gru_core.step.core import StepCore
from gru_core.step.forward import Workspace
from gru_core.step.validation import validation_losses
from gru_core.sweep.results import RUNNING, CellResult
from gru_core.sweep.spec import Cell, Plan, SweepSpec

CURVE_POINTS = 100  # most points in a cell's perplexity curve


class Control(Protocol):
    """How a job steers a chunk between steps (the local job; Ray tasks run without one)."""

    def paused(self) -> bool: ...

    def wait(self) -> bool:
        """Block while paused; False when the job was asked to stop."""
        ...


class SweepControl(Control, Protocol):
    """What a backend that runs the chunks itself (``ray_backend``) reads of the job."""

    spec: SweepSpec
    plan: Plan
    train: Tensor
    val: Tensor
    vocab_size: int
    cluster_cpus: int | None

    def stopping(self) -> bool: ...

    def store(self, results: list[CellResult]) -> None: ...

    def fail(self, cells: tuple[Cell, ...], exc: BaseException) -> None: ...


class Tracker:
    """One member's running account of its run (see the module docstring)."""

    def __init__(self, cell: Cell, target: float) -> None:
        self.cell, self.target = cell, target
        self.steps = self.epochs = self.clipped = 0
        self.first: tuple[float, float] | None = None  # (perplexity, grad norm) of step 1
        self.last: deque[tuple[float, float]] = deque(maxlen=LAST_STEPS)
        self.max_grad_norm = -math.inf
        self.epoch_loss, self.epoch_steps = 0.0, 0
        self.train: list[float] = []  # epoch training perplexities
        self.val: list[float] = []  # validation perplexities, where evaluated
        self.diverged_step: int | None = None
        self.steps_to_target: int | None = None
        self.curve = Curve(CURVE_POINTS)

    @property
    def alive(self) -> bool:
        return self.diverged_step is None

    def add_step(self, step: int, loss: float, grad_norm: float, clipped: bool) -> None:
        ppl = perplexity(loss)
        self.steps = step
        self.first = self.first or (ppl, grad_norm)
        self.last.append((ppl, grad_norm))
        self.max_grad_norm = max(self.max_grad_norm, grad_norm)
        self.clipped += clipped
        self.epoch_loss += loss
        self.epoch_steps += 1
        self.curve.add(step, loss)

    def end_epoch(self, val: float | None) -> None:
        self.epochs += 1
        if self.epoch_steps:
            ppl = perplexity(self.epoch_loss / self.epoch_steps)
            self.train.append(ppl)
            if self.steps_to_target is None and ppl <= self.target:
                self.steps_to_target = self.steps
        self.epoch_loss, self.epoch_steps = 0.0, 0
        if val is not None:
            self.val.append(val)

    def result(self, status: str, vocab_size: int, message: str = "") -> CellResult:
        """A CellResult of the run so far; judged unless it is still running."""
        c, cfg = self.cell, self.cell.config
        verdict = self._judge(status, vocab_size) if status != RUNNING else None
        curve_steps, curve_ppl = self.curve.values()
        return CellResult(
            c.model, c.x, c.y, c.seed, cfg.init_std, cfg.clip_threshold, cfg.lr,
            cfg.num_steps, cfg.hidden_size, status=status, steps=self.steps, epochs=self.epochs,
            final_train_perplexity=verdict.final_perplexity if verdict else _last(self.train),
            best_train_perplexity=min(self.train) if self.train else None,
            final_val_perplexity=_last(self.val),
            best_val_perplexity=min(self.val) if self.val else None,
            diverged_step=self.diverged_step,
            max_grad_norm=self.max_grad_norm if self.steps else None,
            clipped_share=self.clipped / self.steps if self.steps else None,
            steps_to_target=self.steps_to_target,
            curve_steps=curve_steps, curve_perplexity=curve_ppl,
            verdict=verdict.kind if verdict else None,
            headline=message,  # an error's text; a verdict is worded where shown
            start_perplexity=self.first[0] if self.first else None,
        )  # fmt: skip

    def _judge(self, status: str, vocab_size: int) -> Verdict:
        """verdict.judge on what it keeps: step 1, the last steps, the epochs."""
        rows = list(self.last)
        if self.first and self.steps > len(self.last):
            rows = [self.first, *rows]
        ppl, norms = [r[0] for r in rows], [r[1] for r in rows]
        return judge(status, Evidence.of(ppl, norms, self.train, self.val), vocab_size)


def _last(values: list[float]) -> float | None:
    return values[-1] if values else None


RowsHook = Callable[[int, int, np.ndarray, StepCore], None]  # (step, epoch, (K, S) rows, core)


def run_chunk(
    cells: Sequence[Cell],
    train: Tensor,
    val: Tensor,
    vocab_size: int,
    device: str,
    target: float,
    eval_every: int,
    control: Control | None = None,
    on_update: Callable[[list[CellResult]], None] | None = None,
    on_rows: RowsHook | None = None,
) -> list[CellResult]:
    """Train ``cells`` (one shape, one seed) to the end; their final CellResults.

    ``on_update`` gets the results so far after every epoch (the job's live map);
    ``on_rows`` every step's (K, S) stats rows (tests compare them with single runs)."""
    configs = [c.config for c in cells]
    cfg = configs[0]
    assert all(c.seed == cfg.seed for c in configs), "a chunk shares one seed (data order)"
    core = StepCore(configs, vocab_size, device, gate_stats=False)  # the map shows none
    loop = EpochLoop(core, train, flow_every=None)  # no gradient flows: the map shows none
    val_ws = Workspace()
    ix = core.layout.index
    cols = [ix[stats.LOSS], ix[stats.GRAD_NORM], ix[stats.CLIPPED], ix[stats.DIVERGED]]
    trackers = [Tracker(c, target) for c in cells]
    stopped = False

    def read() -> None:
        launched, rows = loop.collect()
        if on_rows is not None:
            on_rows(launched.step, launched.epoch, rows, core)
        for t, (loss, norm, clipped, diverged) in zip(
            trackers, rows[:, cols].tolist(), strict=True
        ):
            if not t.alive:
                continue
            if diverged:
                t.diverged_step = launched.step
            else:
                t.add_step(launched.step, loss, norm, bool(clipped))

    for epoch in range(1, cfg.num_epochs + 1):
        loop.start_epoch()
        while loop.has_next:
            if control is not None and control.paused() and loop.pending:
                read()  # about to wait: show the step in flight first
                _update(on_update, trackers, vocab_size)
            if control is not None and not control.wait():
                stopped = True
                break
            loop.launch()
            if len(loop.pending) > 1:  # read step n once step n+1 is on its way
                read()
        while loop.pending:
            read()
        if stopped or not any(t.alive for t in trackers):
            break
        evaluate = epoch % eval_every == 0 or epoch == cfg.num_epochs
        alive = [k for k, t in enumerate(trackers) if t.alive]
        losses = validation_losses(core, alive, val, val_ws) if evaluate else None
        vals = (
            {}
            if losses is None
            else dict(zip(alive, map(perplexity, losses.tolist()), strict=True))
        )
        for k in alive:
            trackers[k].end_epoch(vals.get(k))
        _update(on_update, trackers, vocab_size)
    return [
        t.result("diverged" if not t.alive else "stopped" if stopped else "done", vocab_size)
        for t in trackers
    ]


def _update(
    hook: Callable[[list[CellResult]], None] | None, trackers: list[Tracker], vocab_size: int
) -> None:
    if hook is not None:
        hook([t.result(RUNNING if t.alive else "diverged", vocab_size) for t in trackers])


def run_chunk_task(
    cells: Sequence[Cell], train: Tensor, val: Tensor, vocab_size: int, target: float,
    eval_every: int, threads: int = 1,
) -> list[CellResult]:  # fmt: skip
    """``run_chunk`` on a worker (Ray): its own device and torch thread count."""
    from gru_core.config import resolve_device

    torch.set_num_threads(threads)
    device = resolve_device(cells[0].config.device)
    return run_chunk(cells, train.to(device), val.to(device), vocab_size, device, target,
                     eval_every)  # fmt: skip
