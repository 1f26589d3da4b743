"""Training as d2l's ``train_ch8`` does it, yielding records instead of printing or plotting.

One step (``Trainer.train_step``) = forward, mean cross-entropy over the B*T targets,
backward (the hand-written BPTT of ``fused.py``; autograd for the LSTM), clipping of the
gradients' *global* L2 norm over all parameters (d2l's ``grad_clipping``:
``g <- g * theta / ||g||`` when ``||g|| > theta``), and an SGD update ``W <- W - lr * g``.
It returns a frozen ``StepRecord`` built from the tensors the step already computed: the
gate statistics come from the forward's own gate buffers and ``||dL/dH_t||`` from the
backward's running gradient, so instrumentation costs no second pass.

``clip_threshold`` and ``lr`` are attributes read at every step, so another thread may change
them while a run is going (``set_clip_threshold`` / ``set_lr``).

``Trainer.run()`` is a generator: a ``StepRecord`` after every step, an ``EpochRecord`` after
every epoch, then one ``Outcome`` ('done', 'diverged' or 'out_of_memory'). A non-finite loss
or gradient ends the run with 'diverged' before the update is applied, so the model keeps the
last finite weights; no exception escapes for it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import TrainConfig, resolve_device
from .data import Corpus, batch_iterator, check_trainable, split_train_val
from .fused import forward_logits, loss_and_grads
from .gates import GATES
from .limits import check_memory
from .model import RecurrentLM, State, build_model
from .records import PERCENTILES, EpochRecord, GateStats, Outcome, StepRecord

PREFIX = "time traveller"  # d2l's prediction prefix
NUM_PREDS = 50  # characters generated after the prefix, as d2l's predict_ch8
SAMPLE_TEMPERATURE = 0.8
_SAMPLE_VALUES = 36_000  # at most this many values per gate feed the statistics
_HIST_BINS = 1000  # resolution of the gate percentiles: 0.001 (sigmoid) / 0.002 (tanh)

Record = StepRecord | EpochRecord | Outcome


class Trainer:
    """Owns the model, the data and the live knobs of one run."""

    def __init__(
        self,
        config: TrainConfig,
        corpus: Corpus,
        device: str | None = None,
        eval_every: int = 1,
    ) -> None:
        """``eval_every``: validation perplexity and the two texts every this many epochs and
        on the last one; the other EpochRecords carry None and ''. The dashboard plots them
        every epoch; the CLI, like d2l's train_ch8, looks every 10 (they cost about a fifth
        of a d2l-sized epoch)."""
        if eval_every < 1:
            raise ValueError(f"eval_every must be at least 1, got {eval_every}")
        self.eval_every = eval_every
        self.config = config
        self.corpus = corpus
        self.vocab = corpus.vocab
        self.device = device or resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.rng = random.Random(config.seed)  # drives the iterators' offsets and shuffles
        self.sample_gen = torch.Generator().manual_seed(config.seed)  # temperature sampling
        train, val = split_train_val(corpus.tokens, config.max_tokens, config.val_tokens)
        check_trainable(len(train), config.batch_size, config.num_steps)
        check_memory(config, len(self.vocab), self.device)  # refuse what won't fit, up front
        self.train_tokens, self.val_tokens = train.to(self.device), val.to(self.device)
        self.model: RecurrentLM = build_model(config, len(self.vocab)).to(self.device)
        self._params = dict(self.model.named_parameters())  # name -> tensor, for the update
        self.clip_threshold: float | None = config.clip_threshold
        self.lr: float = config.lr
        self.step = 0
        self.epoch = 0
        self.last_finite: tuple[float, float] | None = None  # (loss, grad norm)
        # Norms accumulate in float64 (MPS has none): finite float32 gradients can't overflow.
        self._acc = torch.float32 if self.device == "mps" else torch.float64
        self.started = time.perf_counter()

    # -- live knobs ------------------------------------------------------------------------
    def set_clip_threshold(self, value: float | None) -> None:
        self.config.replace(clip_threshold=value)  # validates; raises ValueError
        self.clip_threshold = value

    def set_lr(self, value: float) -> None:
        self.config.replace(lr=value)
        self.lr = value

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> Iterator[Record]:
        """Train for config.num_epochs; yield records; end with one Outcome."""
        cfg = self.config
        try:
            while self.epoch < cfg.num_epochs:
                self.epoch += 1
                state: State | None = None
                loss_sum, n_tokens, t_train = 0.0, 0, 0.0
                for X, Y in batch_iterator(
                    self.train_tokens, cfg.batch_size, cfg.num_steps, cfg.sampling, self.rng
                ):
                    if state is None or cfg.sampling == "random":
                        state = self.model.init_state(X.shape[0])  # d2l: fresh state
                    t0 = time.perf_counter()
                    result = self.train_step(X, Y, state)
                    if isinstance(result, Outcome):
                        yield result
                        return
                    record, state = result
                    t_train += time.perf_counter() - t0
                    loss_sum += record.loss * record.tokens
                    n_tokens += record.tokens
                    yield record
                yield self.epoch_record(loss_sum / max(n_tokens, 1), n_tokens / max(t_train, 1e-9))
        except torch.OutOfMemoryError as exc:
            yield self._out_of_memory(exc)
            return
        yield Outcome("done", self.step, f"finished {cfg.num_epochs} epochs")

    def train_step(self, X: Tensor, Y: Tensor, state: State) -> tuple[StepRecord, State] | Outcome:
        """One minibatch: forward, loss, backward, clip, update. Outcome if it diverged."""
        self.step += 1
        X, Y = X.to(self.device), Y.to(self.device)
        flow_wanted = (self.step - 1) % self.config.flow_every == 0  # steps 1, 1+k, 1+2k, ...
        res = loss_and_grads(self.model, X, Y, state, want_flow=flow_wanted)
        names = list(res.grads)
        params = self._params
        with torch.no_grad():
            # float64 norms: a huge but finite float32 gradient must not overflow to inf here
            norms = torch.stack([res.grads[n].norm(dtype=self._acc) for n in names])
            grad_norm_t = norms.square().sum().sqrt()
            head = torch.stack([res.loss.to(norms.dtype), grad_norm_t]).tolist()
        loss, grad_norm = head
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            return self._diverged(loss, grad_norm)
        self.last_finite = (loss, grad_norm)
        theta, lr = self.clip_threshold, self.lr  # read once: the knobs in force this step
        clipped = theta is not None and grad_norm > theta
        scale = theta / grad_norm if clipped else 1.0  # d2l: g <- g * theta / ||g||
        with torch.no_grad():
            for name in names:  # SGD: W <- W - lr * g
                params[name].add_(res.grads[name], alpha=-lr * scale)
            weight_norms = torch.stack([p.norm(dtype=self._acc) for p in params.values()])
            weight_norm = weight_norms.square().sum().sqrt()
            tail = torch.cat([norms, weight_norm[None]]).tolist()
        grad_norm_after = grad_norm * scale
        flow = tuple(res.grad_flow.tolist()) if res.grad_flow is not None else None
        record = StepRecord(
            step=self.step,
            epoch=self.epoch,
            loss=loss,
            perplexity=math.exp(min(loss, 700.0)),
            grad_norm=grad_norm,
            grad_norm_clipped=grad_norm_after,
            clipped=clipped,
            clip_threshold=theta,
            lr=lr,
            param_grad_norms=dict(zip(names, tail[:-1], strict=True)),
            update_ratio=lr * grad_norm_after / max(tail[-1], 1e-12),
            gates=gate_stats(res.gates),
            grad_flow=flow,
            tokens=Y.numel(),
        )
        return record, res.state

    def epoch_record(self, mean_loss: float, tokens_per_sec: float) -> EpochRecord:
        evaluate = self.epoch % self.eval_every == 0 or self.epoch >= self.config.num_epochs
        return EpochRecord(
            epoch=self.epoch,
            step=self.step,
            train_perplexity=math.exp(min(mean_loss, 700.0)),
            val_perplexity=self.validation_perplexity() if evaluate else None,
            tokens_per_sec=tokens_per_sec,
            greedy_text=self.predict(PREFIX, NUM_PREDS) if evaluate else "",
            sampled_text=(
                self.predict(PREFIX, NUM_PREDS, temperature=SAMPLE_TEMPERATURE) if evaluate else ""
            ),
            elapsed=time.perf_counter() - self.started,
        )

    # -- evaluation ------------------------------------------------------------------------
    def validation_perplexity(self) -> float | None:
        """exp(token-mean cross-entropy) on the held-out slice.

        The slice is laid out as B parallel streams (as many as fit num_steps each, at most
        256) read in windows of num_steps with the state carried, so 5,000 tokens take one
        wide forward pass instead of several d2l-sized minibatches."""
        tokens = self.val_tokens
        n = len(tokens) - 1
        if n < 1:
            return None
        T = self.config.num_steps
        B = max(1, min(256, n // T))
        L = n // B
        X, Y = tokens[: B * L].view(B, L), tokens[1 : B * L + 1].view(B, L)
        state = self.model.init_state(B)
        total = 0.0
        for start in range(0, L, T):
            x, y = X[:, start : start + T], Y[:, start : start + T]
            logits, state = forward_logits(self.model, x, state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.T.reshape(-1))
            total += float(loss) * y.numel()
        return math.exp(min(total / (B * L), 700.0))

    @torch.no_grad()
    def predict(self, prefix: str, num_preds: int, temperature: float | None = None) -> str:
        """d2l's predict_ch8: warm up on the prefix, then emit num_preds characters, greedy
        (argmax) or sampled from softmax(logits / temperature)."""
        ids = self.vocab.encode(prefix.lower()) or [0]
        state = self.model.init_state(1)
        if len(ids) > 1:
            warm = torch.tensor([ids[:-1]], device=self.device)
            state = self.model(warm, state).state
        out = list(ids)
        for _ in range(num_preds):
            x = torch.tensor([[out[-1]]], device=self.device)
            step = self.model(x, state)
            state, logits = step.state, step.logits[0, 0].float().cpu()
            if temperature is None:
                out.append(int(logits.argmax()))
            else:
                logits[0] = -math.inf  # never sample <unk>
                probs = torch.softmax(logits / temperature, dim=0)
                if not torch.isfinite(probs).all():
                    out.append(0)
                    continue
                out.append(int(torch.multinomial(probs, 1, generator=self.sample_gen)))
        return self.vocab.decode(out)

    @torch.no_grad()
    def trace_probe(self, text: str) -> tuple[str, dict[str, np.ndarray]]:
        """Gates of the model reading ``text`` from a zero state: name -> (T, H) array.
        Returns the text as the model saw it (preprocessed) and the gates."""
        ids = self.vocab.encode(text.lower()) or [0]
        tokens = torch.tensor([ids], device=self.device)
        out = self.model(tokens, None, trace=True)
        gates = {k: v[:, 0].float().cpu().numpy() for k, v in (out.gates or {}).items()}
        return self.vocab.decode(ids), gates

    # -- endings ---------------------------------------------------------------------------
    def _diverged(self, loss: float, grad_norm: float) -> Outcome:
        bad = "loss" if not math.isfinite(loss) else "gradient norm"
        value = loss if bad == "loss" else grad_norm
        last_loss, last_norm = self.last_finite or (None, None)
        msg = f"the {bad} became {value} at step {self.step} (epoch {self.epoch})"
        if self.last_finite:
            msg += f"; last finite loss {last_loss:.4g}, gradient norm {last_norm:.4g}"
        return Outcome("diverged", self.step, msg, last_loss, last_norm)

    def _out_of_memory(self, exc: BaseException) -> Outcome:
        self.model.zero_grad(set_to_none=True)
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"out of memory on {self.device} at step {self.step}: {first_line}"
        last_loss, last_norm = self.last_finite or (None, None)
        return Outcome("out_of_memory", self.step, msg, last_loss, last_norm)


def gate_stats(gates: dict[str, Tensor]) -> dict[str, GateStats]:
    """Mean, percentiles and saturated fraction of each gate's (T, B, H) values.

    To keep the cost of instrumentation a few percent of a step, the statistics are taken over
    every k-th sequence of the batch, k chosen so at most ``_SAMPLE_VALUES`` values per gate
    are read (k = 8 at d2l's defaults: 4 of 32 sequences, 35,840 values). Percentiles come
    from a 1000-bin histogram over the gate's range (``gates.GATES``; one pass; exact to 0.001
    for sigmoid gates, 0.002 for tanh-valued ones). Saturation follows the registry's rule,
    counted on the histogram's bins.
    """
    if not gates:
        return {}
    rows = []
    for name, g in gates.items():
        lo, hi = GATES[name].range
        k = max(1, math.ceil(g.numel() / _SAMPLE_VALUES))
        g = g.detach()[:, ::k].float().contiguous()
        rows.append(torch.cat([g.mean()[None], torch.histc(g, _HIST_BINS, min=lo, max=hi)]))
    table = torch.stack(rows).cpu().numpy().astype(np.float64)
    out = {}
    for name, row in zip(gates, table, strict=True):
        hist = row[1:]
        n = hist.sum()
        lo, hi = GATES[name].range
        edges = np.linspace(lo, hi, _HIST_BINS + 1)
        cdf = np.concatenate([[0.0], np.cumsum(hist)]) / max(n, 1.0)
        pct = tuple(float(np.interp(p / 100, cdf, edges)) for p in PERCENTILES)
        centres = (edges[:-1] + edges[1:]) / 2  # a bin is saturated when its centre is
        sat = hist[GATES[name].saturated(centres)].sum()
        out[name] = GateStats(float(row[0]), pct, float(sat / max(n, 1.0)))
    return out
