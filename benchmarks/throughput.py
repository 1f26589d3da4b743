"""Training throughput: the textbook GRU against gru_core's fast path, with and without the
dashboard's instrumentation, and against torch.nn.GRU.

All variants run in one process on the same data, seed, initial weights and config (d2l's
defaults: hidden 256, batch 32, num_steps 35, the first 10,000 tokens, lr 1, clip 1,
sequential sampling), for ``--epochs`` epochs each, interleaved in rounds (a, b, c, d, c+,
then again, ``--repeats`` times) so that machine noise hits all of them alike. Model
construction is outside the timed region; everything from the first minibatch to the last
update is inside it.

  (a)  textbook: gru_core.model.textbook (one-hot inputs, a matmul per gate, autograd, d2l's
       clipping and SGD), d2l's train_epoch_ch8.
  (b)  fast: fused.loss_and_grads(want_flow=False) + global-norm clipping + SGD, nothing else.
  (c)  instrumented: Trainer.advance, the dashboard's and the CLI's step: gru_core.step's
       device program (guarded, clipped SGD + every statistic into one buffer, gradient flow
       every 10th step; CUDA-graphed on CUDA) with the StepRecord built one step late.
  (c0) the CLI's step: (c) without the one-position gradient probes (``probes=False``: the
       two extra row blocks of the backward on flow steps, which only the dashboard's Through
       time view shows); (c)/(c0) is what those probes cost.
  (d)  nn.GRU: torch.nn.GRU + nn.Linear on one-hot inputs (d2l's concise RNNModel),
       autograd, clip_grad_norm_, torch.optim.SGD.
  (c+) Trainer.run: (c) plus each epoch's validation perplexity and generated text.
  (g)  graphed: StepCore K = 1 replayed from a CUDA graph, stats read one step late, no
       records (CUDA only; on the CPU it is skipped with a line saying so).
  (K)  with ``--configs K``: K configurations (different seeds, init std and lr) trained at
       once by one StepCore on the same minibatches, stepped as a sweep steps them
       (``sweep_run``: the guarded, clipped SGD and its loss, norm and divergence columns read
       one step late; no gate statistics and no gradient flow, which the map does not show);
       throughput counts the tokens of all K (aggregate), compared with (b) in the line
       ``(K configs)/(b) = N.NNx aggregate``.

Besides wall-clock tokens/s the table shows tokens per CPU-second (process CPU time, less
sensitive to other programs on a shared machine) and minor page faults per step (each is a
first touch of freshly mapped memory: a step that allocates big temporaries afresh pays them).

Peak memory: on CUDA, torch.cuda.max_memory_allocated around each run. On the CPU, each
variant runs once more in a fresh child process (``--only VARIANT``) that warms up for one
epoch, resets the RSS high-water mark (Linux) and reports the peak RSS while training and
how far it rose above the RSS before training.

Usage: ``python benchmarks/throughput.py [--epochs 3] [--repeats 3] [--device auto]
[--configs K]``;
``--help`` lists the rest. Prints a markdown table and the target checks.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gru_core.config import TrainConfig, resolve_device
from gru_core.data import Corpus, batch_iterator, split_train_val
from gru_core.model import textbook
from gru_core.model.cells import GRUScratch, State, build_model
from gru_core.run.records import EpochRecord, StepRecord
from gru_core.run.trainer import Trainer
from gru_core.sources import load_corpus
from gru_core.step.core import StepCore
from gru_core.step.forward import Workspace
from gru_core.step.fused import loss_and_grads

REPO = Path(__file__).resolve().parents[1]

DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "timemachine.txt"

VARIANTS: dict[str, str] = {
    "a": "textbook (one-hot, per-gate matmuls, autograd)",
    "b": "gru_core fast path, instrumentation off",
    "c": "gru_core Trainer.advance, instrumentation on",
    "c0": "(c) as the CLI runs it: no one-position probes",
    "d": "torch.nn.GRU + nn.Linear (one-hot, autograd)",
    "c+": "Trainer.run: (c) + per-epoch validation and text",
    "g": "StepCore K=1 replayed from a CUDA graph, no records",
    "K": "K configurations at once (StepCore, stepped as a sweep; aggregate)",
}
CUDA_ONLY = {"g"}


@dataclass(frozen=True)
class Setup:
    config: TrainConfig
    corpus: Corpus
    device: str
    train_tokens: Tensor  # (N,) on device

    def batches(self, rng: random.Random) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch of (X, Y) minibatches, each (B, T), from d2l's iterator."""
        cfg = self.config
        return batch_iterator(self.train_tokens, cfg.batch_size, cfg.num_steps, cfg.sampling, rng)


def replace_epochs(s: Setup, epochs: int) -> Setup:
    return Setup(s.config.replace(num_epochs=epochs), s.corpus, s.device, s.train_tokens)


@dataclass(frozen=True)
class Work:
    tokens: int  # target tokens trained on
    last_loss: float  # token-mean loss of the last epoch


Job = Callable[[], Work]  # a prepared run: calling it trains for config.num_epochs


def fresh_model(s: Setup) -> GRUScratch:
    """The model every variant starts from: drawn from the run's generator, as Trainer's."""
    model = build_model(s.config, len(s.corpus.vocab)).to(s.device)
    assert isinstance(model, GRUScratch) and model.variant == "d2l"
    return model


# -- the variants: each prepares its model outside the timing and returns the training run --
def prepare_textbook(s: Setup) -> Job:
    cfg = s.config
    net = textbook.TextbookGRU(len(s.corpus.vocab), cfg.hidden_size, s.device)
    net.load_from(fresh_model(s))

    def job() -> Work:
        rng, tokens, result = random.Random(cfg.seed), 0, None
        for _ in range(cfg.num_epochs):
            result = textbook.train_epoch(net, s.batches(rng), cfg.lr, cfg.clip_threshold)
            tokens += result.num_tokens
        assert result is not None
        return Work(tokens, math.log(result.perplexity))

    return job


def prepare_fast(s: Setup) -> Job:
    """The step core's maths without the record: loss and grads, clip, SGD."""
    cfg = s.config
    model = fresh_model(s)
    params = dict(model.named_parameters())
    theta, lr = cfg.clip_threshold, cfg.lr
    workspace = Workspace()  # buffers kept between steps, as the trainer keeps its own

    def step(X: Tensor, Y: Tensor, state: State) -> tuple[float, State]:
        res = loss_and_grads(model, X, Y, state, want_flow=False, workspace=workspace)
        with torch.no_grad():
            # float64 norms, as the step core takes them (so a huge gradient stays finite)
            norms = torch.stack([g.norm(dtype=torch.float64) for g in res.grads.values()])
            grad_norm = float(norms.square().sum().sqrt())
            scale = theta / grad_norm if theta is not None and grad_norm > theta else 1.0
            for name, g in res.grads.items():  # W <- W - lr * scale * g
                params[name].add_(g, alpha=-lr * scale)
        return float(res.loss), res.state

    def job() -> Work:
        rng, tokens = random.Random(cfg.seed), 0
        for _ in range(cfg.num_epochs):
            state, loss_sum, n = None, 0.0, 0
            for X, Y in s.batches(rng):
                if state is None:
                    state = model.init_state(X.shape[0])
                loss, state = step(X, Y, state)
                loss_sum += loss * Y.numel()
                n += Y.numel()
            tokens += n
        return Work(tokens, loss_sum / n)

    return job


def prepare_instrumented(s: Setup, probes: bool = True) -> Job:
    """Trainer.advance with evaluation never due: steps and their records, pipelined."""
    never = 10**5
    config = s.config.replace(num_epochs=never)
    # the same initial model as the others
    trainer = Trainer(config, s.corpus, s.device, eval_every=never, probes=probes)

    def job() -> Work:
        tokens, epochs, loss_sum, n = 0, 0, 0.0, 0
        while epochs < s.config.num_epochs:
            for record in trainer.advance():
                if isinstance(record, StepRecord):
                    loss_sum += record.loss * record.tokens
                    n += record.tokens
                elif isinstance(record, EpochRecord):
                    epochs += 1
                    tokens += n
                    last, loss_sum, n = loss_sum / max(n, 1), 0.0, 0
                else:
                    raise RuntimeError(f"(c) ended early: {record.message}")
        return Work(tokens, last)

    return job


def _core_job(s: Setup, core: StepCore, flow: bool = True) -> Job:
    """Drive a StepCore over the epochs as the trainer does: launch step n+1, then read n.
    ``flow``: gradient flow every ``flow_every`` steps, as a run records it (a sweep: none)."""
    cfg = s.config
    loss_col = core.layout.index["loss"]

    def job() -> Work:
        rng, tokens, step = random.Random(cfg.seed), 0, 0
        for _ in range(cfg.num_epochs):
            core.reset_state()
            loss_sum, n, pending = 0.0, 0, None
            for X, Y in s.batches(rng):
                core.load_batch(X, Y)
                step += 1
                slot = core.run(want_flow=flow and (step - 1) % cfg.flow_every == 0)
                if pending is not None:
                    loss_sum += float(core.read(pending)[:, loss_col].sum()) * Y.numel()
                pending = slot
                n += Y.numel() * core.K
            assert pending is not None
            last_tokens = cfg.batch_size * cfg.num_steps
            loss_sum += float(core.read(pending)[:, loss_col].sum()) * last_tokens
            tokens += n
        return Work(tokens, loss_sum / n)

    return job


def prepare_graphed(s: Setup) -> Job:
    return _core_job(s, StepCore([s.config], len(s.corpus.vocab), s.device, graphs=True))


def prepare_configs(s: Setup, k: int) -> Job:
    """K members of one shape: seeds 0..K-1, init std and lr spread around d2l's; stepped as
    ``sweep_run`` steps a chunk (no gate statistics, no flow)."""
    configs = [
        s.config.replace(seed=i, init_std=0.01 * (1 + i % 3), lr=s.config.lr * (0.5 + i / k))
        for i in range(k)
    ]
    core = StepCore(configs, len(s.corpus.vocab), s.device, gate_stats=False)
    return _core_job(s, core, flow=False)


def prepare_trainer_run(s: Setup) -> Job:
    trainer = Trainer(s.config, s.corpus, s.device)

    def job() -> Work:
        tokens, last = 0, float("nan")
        for record in trainer.run():
            if isinstance(record, StepRecord):
                tokens += record.tokens
            elif isinstance(record, EpochRecord):
                last = math.log(record.train_perplexity)
            elif record.status != "done":
                raise RuntimeError(f"(c+) ended with {record.status}: {record.message}")
        return Work(tokens, last)

    return job


class ConciseGRU(nn.Module):
    """d2l's concise RNNModel around nn.GRU: one-hot inputs, nn.GRU, a Linear output layer."""

    def __init__(self, vocab_size: int, hidden_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.GRU(vocab_size, hidden_size)
        self.linear = nn.Linear(hidden_size, vocab_size)

    def forward(self, X: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        inputs = F.one_hot(X.T, self.vocab_size).float()  # (T, B, V)
        Y, state = self.rnn(inputs, state)
        return self.linear(Y.reshape(-1, Y.shape[-1])), state

    @torch.no_grad()
    def load_from(self, m: GRUScratch) -> ConciseGRU:
        """The scratch model's weights in nn.GRU's layout (gates stacked r, z, n)."""
        self.rnn.weight_ih_l0.copy_(torch.cat([m.W_xr, m.W_xz, m.W_xh], dim=1).T)
        self.rnn.weight_hh_l0.copy_(torch.cat([m.W_hr, m.W_hz, m.W_hh], dim=1).T)
        self.rnn.bias_ih_l0.zero_()
        self.rnn.bias_hh_l0.zero_()
        self.linear.weight.copy_(m.W_hq.T)
        self.linear.bias.copy_(m.b_q)
        return self


def prepare_nn_gru(s: Setup) -> Job:
    cfg = s.config
    net = ConciseGRU(len(s.corpus.vocab), cfg.hidden_size).to(s.device)
    net.load_from(fresh_model(s))
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr)
    theta = cfg.clip_threshold

    def job() -> Work:
        rng, tokens = random.Random(cfg.seed), 0
        for _ in range(cfg.num_epochs):
            state, loss_sum, n = None, 0.0, 0
            for X, Y in s.batches(rng):
                if state is None:
                    state = torch.zeros(1, X.shape[0], cfg.hidden_size, device=s.device)
                else:
                    state = state.detach()
                y_hat, state = net(X, state)
                loss = F.cross_entropy(y_hat, Y.T.reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                if theta is not None:
                    nn.utils.clip_grad_norm_(net.parameters(), theta)
                optimizer.step()
                loss_sum += float(loss.detach()) * Y.numel()
                n += Y.numel()
            tokens += n
        return Work(tokens, loss_sum / n)

    return job


PREPARE: dict[str, Callable[[Setup], Job]] = {
    "a": prepare_textbook,
    "b": prepare_fast,
    "c": prepare_instrumented,
    "c0": lambda s: prepare_instrumented(s, probes=False),
    "d": prepare_nn_gru,
    "c+": prepare_trainer_run,
    "g": prepare_graphed,
    "K": lambda s: prepare_configs(s, CONFIGS[0]),
}
CONFIGS = [1]  # K of variant (K), from --configs


# -- measuring ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    tokens_per_sec: float  # wall clock
    tokens_per_cpu_sec: float  # process CPU time, all threads (less sensitive to other load)
    seconds: float
    faults_per_step: float  # minor page faults (first touches of freshly mapped memory)
    last_loss: float
    cuda_peak_mib: float | None


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_run(s: Setup, variant: str) -> Run:
    job = PREPARE[variant](s)
    cuda = s.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    sync(s.device)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start, cpu_start = time.perf_counter(), time.process_time()
    work = job()
    sync(s.device)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    steps = work.tokens / (s.config.batch_size * s.config.num_steps)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return Run(
        work.tokens / seconds,
        work.tokens / max(cpu_seconds, 1e-9),
        seconds,
        faults / max(steps, 1),
        work.last_loss,
        peak,
    )


def _proc_status_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Linux: reset the peak RSS (VmHWM) to the current RSS. False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _proc_status_mib("VmHWM") is not None


def _release_free_heap() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's malloc_trim)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def child_memory(s: Setup, variant: str) -> dict[str, float]:
    """In a fresh child process: peak RSS while training, and how far it rose above the RSS
    just before (imports, data and model already in place).

    A one-epoch warm-up first pages in the code and lazy library state; its freed memory is
    handed back before measuring. Linux then resets the RSS high-water mark; elsewhere the
    rise is measured against ru_maxrss, which a larger transient before training can hide."""
    PREPARE[variant](replace_epochs(s, 1))()
    job = PREPARE[variant](s)
    _release_free_heap()
    if reset_peak_rss():
        base = _proc_status_mib("VmRSS") or 0.0
        job()
        peak = _proc_status_mib("VmHWM") or 0.0
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux/BSD: KiB
        job()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_rss_mib": peak, "delta_rss_mib": peak - base}


def memory_in_child(
    args: argparse.Namespace, corpus_path: Path | None, variant: str
) -> dict[str, float]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--only", variant, "--memory-child"]
    cmd += ["--epochs", str(args.epochs), "--hidden", str(args.hidden)]
    cmd += ["--num-steps", str(args.num_steps), "--batch", str(args.batch)]
    cmd += ["--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.configs:
        cmd += ["--configs", str(args.configs)]
    if corpus_path is not None:
        cmd += ["--corpus", str(corpus_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory child for ({variant}) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- reporting ------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def header(s: Setup, args: argparse.Namespace) -> str:
    cfg = s.config
    if s.device.startswith("cuda"):
        where = f"CUDA {torch.cuda.get_device_name(torch.device(s.device))}"
    else:
        where = "CPU"
    clip = "off" if cfg.clip_threshold is None else f"{cfg.clip_threshold:g}"
    return (
        f"device: {where} | torch {torch.__version__} | {torch.get_num_threads()} threads | "
        f"CPU: {cpu_model()}\n"
        f"config: hidden {cfg.hidden_size}, batch {cfg.batch_size}, num_steps {cfg.num_steps}, "
        f"{len(s.train_tokens):,} training tokens, lr {cfg.lr:g}, clip {clip}, "
        f"{cfg.sampling}, float32, seed {cfg.seed} | {cfg.num_epochs} epochs x "
        f"{args.repeats} repeats per variant, interleaved | corpus: {s.corpus.label}"
    )


def table(
    s: Setup, runs: dict[str, list[Run]], memory: dict[str, dict[str, float]]
) -> tuple[str, dict[str, float]]:
    """The markdown table, and the median wall-clock throughput per variant."""
    median = {v: statistics.median(r.tokens_per_sec for r in rs) for v, rs in runs.items()}
    cpu = {v: statistics.median(r.tokens_per_cpu_sec for r in rs) for v, rs in runs.items()}
    cuda = s.device.startswith("cuda")
    mem_cols = "peak CUDA alloc (MiB)" if cuda else "peak RSS (MiB) | RSS added by training (MiB)"
    lines = [
        "| variant | tokens/s (median) | min - max | vs (a) | tokens/CPU-s | page faults/step "
        f"| last-epoch loss | {mem_cols} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + ("" if cuda else "---:|"),
    ]
    base = median.get("a")
    for v, rs in runs.items():
        speeds = [r.tokens_per_sec for r in rs]
        ratio = f"{median[v] / base:.2f}x" if base else "-"
        faults = statistics.median(r.faults_per_step for r in rs)
        if cuda:
            mem = f"{max(r.cuda_peak_mib or 0.0 for r in rs):,.1f}"
        elif v in memory:
            mem = f"{memory[v]['peak_rss_mib']:,.0f} | {memory[v]['delta_rss_mib']:,.1f}"
        else:
            mem = "- | -"
        lines.append(
            f"| {label(v)} {VARIANTS[v]} | {median[v]:,.0f} "
            f"| {min(speeds):,.0f} - {max(speeds):,.0f} "
            f"| {ratio} | {cpu[v]:,.0f} | {faults:,.0f} | {rs[-1].last_loss:.4f} | {mem} |"
        )
    return "\n".join(lines), median


CHECKS = [
    ("b", "a", 1.5, "target"),
    ("c", "b", 0.93, "target"),
    ("c0", "b", 0.93, "target"),
    ("b", "d", 1.0, "stretch"),
    ("K", "b", 3.0, "target"),  # only with --configs K
]


def label(v: str) -> str:
    """A variant's name in the table and target lines: '(b)', '(8 configs)'."""
    return f"({CONFIGS[0]} configs)" if v == "K" else f"({v})"


def target_lines(runs: dict[str, list[Run]]) -> list[str]:
    """The checks on median wall-clock throughput: (b) >= 1.5x (a), (c) and (c0) >= 0.93x (b)
    (the README before the step core), (K) >= 3x (b), and the
    stretch goal (b) >= (d); then, for reading a noisy machine, the same ratios on the best
    round of each variant and on median CPU time."""
    median = {v: statistics.median(r.tokens_per_sec for r in rs) for v, rs in runs.items()}
    best = {v: max(r.tokens_per_sec for r in rs) for v, rs in runs.items()}
    cpu = {v: statistics.median(r.tokens_per_cpu_sec for r in rs) for v, rs in runs.items()}
    out, notes = [], []
    for num, den, goal, kind in CHECKS:
        if num in runs and den in runs:
            ratio = median[num] / median[den]
            verdict = "PASS" if ratio >= goal else "FAIL"
            what = f"{label(num)}/{label(den)} = {ratio:.2f}x"
            if num == "K":
                what += " aggregate"
            out.append(f"{what}  {kind} >= {goal:g}x  {verdict}")
            notes.append(
                f"{label(num)}/{label(den)}: best round {best[num] / best[den]:.2f}x, "
                f"CPU time {cpu[num] / cpu[den]:.2f}x"
            )
    if notes:
        out += ["", "for reference (less sensitive to other load on the machine):", *notes]
    return out


def cli_wall(args: argparse.Namespace, corpus_path: Path | None) -> str:
    """Time the full 500-epoch d2l run through ``python -m gru_core`` in a subprocess."""
    cmd = [sys.executable, "-m", "gru_core", "--device", args.device]
    cmd += ["--hidden-size", str(args.hidden), "--num-steps", str(args.num_steps)]
    cmd += ["--batch-size", str(args.batch)]
    cmd += ["--corpus", str(corpus_path)] if corpus_path is not None else ["--offline"]
    if args.threads:
        cmd += ["--num-threads", str(args.threads)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    lines = [
        f"CLI: python {' '.join(cmd[1:])}",
        f"exit status {done.returncode}, wall time {wall:.1f} s (process start to exit)",
        *done.stdout.strip().splitlines()[-5:],
    ]
    if done.returncode != 0:
        lines.append(f"stderr: {done.stderr[-1000:]}")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--epochs", type=int, default=3, help="epochs per variant per repeat")
    p.add_argument("--hidden", type=int, default=256, help="hidden units (d2l: 256)")
    p.add_argument("--num-steps", type=int, default=35, help="sequence length T (d2l: 35)")
    p.add_argument("--batch", type=int, default=32, help="batch size B (d2l: 32)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median reported)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help=f"text file (default {DEFAULT_CORPUS} if present, else the offline fallback)",
    )
    p.add_argument("--only", choices=tuple(VARIANTS), help="run just this variant")
    p.add_argument(
        "--configs",
        type=int,
        default=0,
        metavar="K",
        help="also train K configurations at once, variant (K) (default: off)",
    )
    p.add_argument("--markdown", type=Path, metavar="OUT", help="also write the table here")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    p.add_argument(
        "--cli-wall", action="store_true", help="also time `python -m gru_core` (500 epochs)"
    )
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    return p


def main() -> int:
    args = build_parser().parse_args()
    if args.configs < 0:
        raise SystemExit("--configs must be >= 1 (or 0 for off)")
    CONFIGS[0] = args.configs or 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    corpus_path = args.corpus or (DEFAULT_CORPUS if DEFAULT_CORPUS.exists() else None)
    corpus = load_corpus(corpus_path, allow_download=False)
    config = TrainConfig(
        hidden_size=args.hidden,
        num_steps=args.num_steps,
        batch_size=args.batch,
        num_epochs=args.epochs,
        device=device,
    )
    train, _ = split_train_val(corpus.tokens, config.max_tokens, config.val_tokens)
    s = Setup(config, corpus, device, train.to(device))

    if args.memory_child:
        print(json.dumps(child_memory(s, args.only)))
        return 0

    variants = [args.only] if args.only else [v for v in VARIANTS if v != "K" or args.configs]
    print(header(s, args), flush=True)
    if not device.startswith("cuda") and any(v in CUDA_ONLY for v in variants):
        variants = [v for v in variants if v not in CUDA_ONLY]
        print("(g) skipped: CUDA graphs need a CUDA device", flush=True)
    # One short untimed warm-up per variant: first-call costs (allocator, kernels) are not
    # what this benchmark measures.
    warm = replace_epochs(s, 1)
    for v in variants:
        timed_run(warm, v)
    runs: dict[str, list[Run]] = {v: [] for v in variants}
    for r in range(args.repeats):
        for v in variants:
            run = timed_run(s, v)
            runs[v].append(run)
            print(
                f"round {r + 1}/{args.repeats} ({v}): {run.tokens_per_sec:,.0f} tokens/s "
                f"in {run.seconds:.2f} s",
                file=sys.stderr,
                flush=True,
            )
    memory: dict[str, dict[str, float]] = {}
    if not args.no_memory and not device.startswith("cuda"):
        for v in variants:
            memory[v] = memory_in_child(args, corpus_path, v)
    text, _ = table(s, runs, memory)
    checks = target_lines(runs)
    report = "\n".join([header(s, args), "", text, "", *checks])
    print("\n" + text + "\n\n" + "\n".join(checks))
    if args.cli_wall:
        cli = cli_wall(args, corpus_path)
        print("\n" + cli)
        report += "\n\n```\n" + cli + "\n```"
    if args.markdown:
        args.markdown.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
