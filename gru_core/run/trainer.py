"""Training as d2l's ``train_ch8`` does it, yielding records instead of printing or plotting.

One step = forward, mean cross-entropy over the B*T targets, backward (the hand-written BPTT
of ``step_bptt.py``; autograd for the LSTM), clipping of the gradients' *global* L2 norm over
all parameters (d2l's ``grad_clipping``: ``g <- g * theta / ||g||`` when ``||g|| > theta``)
and an SGD update ``W <- W - lr * g``. The ``Trainer`` runs it as a K = 1 ``StepCore``
(``step.py``): a device program with no host syncs that writes every statistic of the
``StepRecord`` into one stats buffer (graphed on CUDA).

**Records one step late.** ``advance()`` launches step n+1, then reads step n's stats (copied
to host memory without blocking) and builds StepRecord n while the device works on n+1.
``advance(lookahead=False)`` and ``flush()`` leave nothing in flight; the trainer never looks
ahead across an epoch's end (validation sees the epoch's last weights). A non-finite loss or
gradient norm is still reported at the step where it happened: the step's update is masked on
the device (and every later one, so the step already in flight changes nothing), the run ends
with Outcome 'diverged' carrying the last finite values, and the model keeps the last finite
weights. No exception escapes for it, nor for running out of memory.

**Live knobs, one truth.** ``set_config`` replaces ``config`` with a new validated config
(``config.LIVE_KNOBS`` changed) and writes the values into the device tensors that the next
*launched* step reads (a step already in flight keeps the old value; its record says which
it used). It is called by the thread that drives the trainer: a ``TrainingJob`` queues
changes from other threads and applies them in its worker between steps.

``Trainer.run()`` is a generator over ``advance()``: a ``StepRecord`` per step, an
``EpochRecord`` per epoch, then one ``Outcome`` ('done', 'diverged' or 'out_of_memory').
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from gru_core.config import TrainConfig, host_clip, resolve_device
from gru_core.data import Corpus, check_trainable, preprocess, split_train_val
from gru_core.i18n import N_, Nn_, Note
from gru_core.limits import check_memory
from gru_core.model.cells import RecurrentLM
from gru_core.model.sampling import generate
from gru_core.perplexity import perplexity
from gru_core.run.loop import EpochLoop, Launched
from gru_core.run.records import EpochRecord, GateStats, Outcome, StepRecord
from gru_core.step import stats
from gru_core.step.core import StepCore
from gru_core.step.stats import (
    CLIP_THRESHOLD,
    CLIPPED,
    FLOWS,
    GATE_SUFFIXES,
    GRAD_NORM_CLIPPED,
    HEAD,
    LOSS,
    LR,
    RECORDED,
    WEIGHT_NORM,
    StatsLayout,
    flow_column,
    gate_column,
    gnorm_column,
)

NUM_PREDS = 50  # characters generated after the prefix, as d2l's predict_ch8
SAMPLE_TEMPERATURE = 0.8

Record = StepRecord | EpochRecord | Outcome


class Trainer:
    """Owns the step core (model, state, knobs), the data and the bookkeeping of one run."""

    def __init__(
        self,
        config: TrainConfig,
        corpus: Corpus,
        device: str | None = None,
        eval_every: int = 1,
        dtype: torch.dtype = torch.float32,
        held_bytes: int = 0,
        probes: bool = True,
    ) -> None:
        """``eval_every``: validation perplexity and the two texts every this many epochs and
        on the last one; the other EpochRecords carry None and ''. The dashboard plots them
        every epoch; the CLI, like d2l's train_ch8, looks every 10 (they cost about a fifth
        of a d2l-sized epoch). ``dtype``: of the parameters (float64 for tests).
        ``held_bytes``: memory the caller already holds against the budget (limits).
        ``probes``: the one-position gradient flows on flow steps (``StepCore``'s switch;
        the CLI, which shows none, turns them off)."""
        if eval_every < 1:
            raise ValueError(f"eval_every must be at least 1, got {eval_every}")
        self.eval_every = eval_every
        self.corpus = corpus
        self.vocab = corpus.vocab
        self.device = device or resolve_device(config.device)
        self.sample_gen = torch.Generator().manual_seed(config.seed)  # temperature sampling
        train, val = split_train_val(corpus.tokens, config.max_tokens, config.val_tokens)
        check_trainable(len(train), config.batch_size, config.num_steps)
        # refuse what won't fit, up front
        check_memory(config, len(self.vocab), self.device, held_bytes=held_bytes)
        self.train_tokens, self.val_tokens = train.to(self.device), val.to(self.device)
        self.core = StepCore([config], len(self.vocab), self.device, dtype, probes=probes)
        self.model: RecurrentLM = self.core.member_model(0)  # views of the core's weights
        self.loop = EpochLoop(self.core, self.train_tokens, config.flow_every)
        self.last_finite: tuple[float, float] | None = None  # (loss, grad norm)
        self._epoch_sums = [0.0, 0, 0.0]  # loss * tokens, tokens, seconds of training
        self._ended: Outcome | None = None
        self._error: BaseException | None = None
        self.started = time.perf_counter()

    @property
    def config(self) -> TrainConfig:
        """The config in force: the start config with every live knob change applied."""
        return self.core.configs[0]

    @property
    def note(self) -> str | None:
        """Why a CUDA run trains eagerly instead of replaying a graph, if it does."""
        return self.core.note

    @property
    def step(self) -> int:
        """Steps launched."""
        return self.loop.step

    @property
    def epoch(self) -> int:
        return self.loop.epoch

    @property
    def weights_step(self) -> int:
        """Updates applied to the weights so far (a diverged step applies none)."""
        diverged = self._ended is not None and self._ended.status == "diverged"
        return self.step - 1 if diverged else self.step

    @property
    def pending(self) -> bool:
        """Whether a launched step's record is still to come."""
        return bool(self.loop.pending)

    # -- live knobs ------------------------------------------------------------------------
    def set_config(self, config: TrainConfig) -> None:
        """Make ``config`` (this run's config with live knobs changed) the one in force: the
        next step launched uses it (``StepCore.set_config``)."""
        self.core.set_config(0, config)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> Iterator[Record]:
        """Train for config.num_epochs; yield records; end with one Outcome."""
        while True:
            records = self.advance()
            yield from records
            if records and isinstance(records[-1], Outcome):
                return

    def advance(self, lookahead: bool = True) -> list[Record]:
        """One more step's record (a StepRecord, or the Outcome it ended the run with), plus
        the EpochRecord and final Outcome when it was the epoch's or the run's last. With
        ``lookahead`` the following step is launched before this one is read."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._ended is not None:
            return []
        out: list[Record] = []
        t0 = time.perf_counter()
        try:
            if self.loop.epoch_over:
                self._start_epoch()
            if not self.loop.pending:
                self.loop.launch()
            if lookahead:
                self.loop.launch()
            out += self.read_step()
        except torch.OutOfMemoryError as exc:
            out += self.flush()
            if self._ended is None:
                out.append(self._end(self._out_of_memory(exc)))
            return out
        except Exception as exc:  # keep the records before it, then let it surface
            out += self.flush()
            if not out:
                raise
            self._error = exc
            return out
        self._epoch_sums[2] += time.perf_counter() - t0
        return out + self._epoch_end()

    def flush(self) -> list[Record]:
        """The records of every step in flight (and an epoch's end, if reached)."""
        out: list[Record] = []
        while self.loop.pending and self._ended is None:
            out += self.read_step()
        return out + self._epoch_end()

    def _start_epoch(self) -> None:
        self._epoch_sums = [0.0, 0, 0.0]
        self.loop.start_epoch()

    def read_step(self) -> list[Record]:
        """Read the oldest step in flight: its StepRecord, or the diverged Outcome."""
        launched, rows = self.loop.collect()
        row, layout = rows[0], self.core.layout
        if row[layout.index[stats.DIVERGED]]:
            self.loop.drop_pending(launched.step)  # masked on the device: none was applied
            return [self._end(self._diverged(row, launched))]
        record = build_record(
            layout, row, launched.step, launched.epoch, launched.tokens, launched.want_flow
        )
        self.last_finite = (record.loss, record.grad_norm)
        self._epoch_sums[0] += record.loss * record.tokens
        self._epoch_sums[1] += record.tokens
        return [record]

    def _epoch_end(self) -> list[Record]:
        """The EpochRecord (and 'done') once the epoch's last step has been read."""
        if not self.loop.epoch_over or self._ended is not None or not self.epoch:
            return []
        if self._epoch_sums[1] == 0:
            return []
        loss_sum, tokens, seconds = self._epoch_sums
        self._epoch_sums = [0.0, 0, 0.0]
        out: list[Record] = [self.epoch_record(loss_sum / tokens, tokens / max(seconds, 1e-9))]
        if self.epoch >= self.config.num_epochs:
            cfg = self.config
            done = Note(Nn_("finished {n} epoch", "finished {n} epochs"), n=cfg.num_epochs)
            out.append(self._end(Outcome("done", self.step, done)))
        return out

    def _end(self, outcome: Outcome) -> Outcome:
        self._ended = outcome
        return outcome

    def epoch_record(self, mean_loss: float, tokens_per_sec: float) -> EpochRecord:
        evaluate = self.epoch % self.eval_every == 0 or self.epoch >= self.config.num_epochs
        return EpochRecord(
            epoch=self.epoch,
            step=self.step,
            train_perplexity=perplexity(mean_loss),
            val_perplexity=self.validation_perplexity() if evaluate else None,
            tokens_per_sec=tokens_per_sec,
            greedy_text=self.predict(self.corpus.prefix, NUM_PREDS) if evaluate else "",
            sampled_text=(
                self.predict(self.corpus.prefix, NUM_PREDS, SAMPLE_TEMPERATURE) if evaluate else ""
            ),
            elapsed=time.perf_counter() - self.started,
        )

    # -- evaluation ------------------------------------------------------------------------
    def validation_perplexity(self) -> float | None:
        """exp(token-mean cross-entropy) on the held-out slice (``fused.validation_loss``)."""
        loss = self.core.validation_loss(0, self.val_tokens)
        return None if loss is None else perplexity(float(loss))

    def weights(self) -> dict[str, Tensor]:
        """A CPU float32 copy of the parameters (name -> tensor, shapes as in model.py)."""
        return self.core.weights(0)

    def predict(self, prefix: str, num_preds: int, temperature: float | None = None) -> str:
        """d2l's predict_ch8 (``sampling.generate``): greedy, or sampled at ``temperature``
        from this run's own sampling generator."""
        return generate(self.model, self.vocab, prefix, num_preds, temperature, self.sample_gen)

    @torch.no_grad()
    def trace_probe(self, text: str) -> tuple[str, dict[str, np.ndarray]]:
        """Gates of the model reading ``text`` from a zero state: name -> (T, H) array.
        Returns the text as the model saw it (preprocessed) and the gates."""
        ids = self.vocab.encode(preprocess(text)) or [0]  # read as training reads text
        tokens = torch.tensor([ids], device=self.device)
        out = self.model(tokens, None, trace=True)
        gates = {k: v[:, 0].float().cpu().numpy() for k, v in (out.gates or {}).items()}
        return self.vocab.decode(ids), gates

    # -- endings ---------------------------------------------------------------------------
    def _diverged(self, row: np.ndarray, launched: Launched) -> Outcome:
        index = self.core.layout.index
        loss, grad_norm = float(row[index[stats.LOSS]]), float(row[index[stats.GRAD_NORM]])
        bad = Note(N_("loss")) if not math.isfinite(loss) else Note(N_("gradient norm"))
        value = loss if not math.isfinite(loss) else grad_norm
        last_loss, last_norm = self.last_finite or (None, None)
        where = dict(what=bad, value=str(value), step=launched.step, epoch=launched.epoch)
        if self.last_finite:
            msg = Note(
                N_(
                    "the {what} became {value} at step {step} (epoch {epoch}); last finite "
                    "loss {loss:.4g}, gradient norm {norm:.4g}"
                ),
                loss=last_loss, norm=last_norm, **where,
            )  # fmt: skip
        else:
            msg = Note(N_("the {what} became {value} at step {step} (epoch {epoch})"), **where)
        return Outcome("diverged", launched.step, msg, last_loss, last_norm)

    def _out_of_memory(self, exc: BaseException) -> Outcome:
        self.loop.drop_pending(self.step)
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = Note(
            N_("out of memory on {device} at step {step}: {error}"),
            device=self.device, step=self.step, error=first_line,
        )  # fmt: skip
        last_loss, last_norm = self.last_finite or (None, None)
        return Outcome("out_of_memory", self.step, msg, last_loss, last_norm)


def build_record(
    layout: StatsLayout, row: np.ndarray, step: int, epoch: int, tokens: int, want_flow: bool
) -> StepRecord:
    """A StepRecord from one member's host stats row (``StatsLayout``): every RECORDED head
    statistic under its own name, what the host derives from the head, the parameters', the
    gates' and (when ``want_flow``) the flows' columns."""
    index = layout.index
    values = row.tolist()
    head = {name: values[index[name]] for name in HEAD}
    recorded = {name: head[name] for name in RECORDED}
    recorded[CLIPPED] = bool(head[CLIPPED])
    theta = head[CLIP_THRESHOLD]
    recorded[CLIP_THRESHOLD] = host_clip(theta)
    T = layout.num_steps
    flows = {}
    for f in FLOWS:
        start = index[flow_column(f, 1)]
        flows[f"grad_{f}"] = tuple(values[start : start + T]) if want_flow else None
    gates = {}
    for g in layout.gates:
        stats = [values[index[gate_column(g, s)]] for s in GATE_SUFFIXES]
        gates[g] = GateStats(stats[0], tuple(stats[1:-1]), stats[-1])
    return StepRecord(
        step=step,
        epoch=epoch,
        tokens=tokens,
        perplexity=perplexity(head[LOSS]),
        update_ratio=head[LR] * head[GRAD_NORM_CLIPPED] / max(head[WEIGHT_NORM], 1e-12),
        param_grad_norms={n: values[index[gnorm_column(n)]] for n in layout.params},
        gates=gates,
        **recorded,
        **flows,
    )
