"""Helpers shared by several test files (fixtures live in conftest.py)."""

from __future__ import annotations

import math
import time
import types
from collections.abc import Callable

import torch

from gru_core.model.cells import GRUScratch, LSTMScratch, RecurrentLM, RNNScratch, State
from gru_core.run.job import JobStatus, TrainingJob
from gru_core.run.records import Outcome, StepRecord
from gru_core.run.trainer import Trainer

KINDS = ("gru-d2l", "gru-cudnn", "rnn", "lstm")  # the models every reference test covers
# Half a GRU (d2l's exercise 4) in both conventions: tests/test_half_gru.py covers these.
HALF_KINDS = tuple(
    f"{m}-{v}" for m in ("gru_reset_only", "gru_update_only") for v in ("d2l", "cudnn")
)

# A small run on a short text: fast on a loaded CPU. Files add num_epochs, device, ...
TINY_RUN = {
    "hidden_size": 16,
    "num_steps": 8,
    "batch_size": 4,
    "max_tokens": 2000,
    "val_tokens": 500,
}


def reference_model(
    kind: str,
    vocab: int,
    hidden: int,
    init_std: float = 0.5,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    random_biases: bool = True,
) -> RecurrentLM:
    """A model of ``kind`` (one of KINDS) with non-trivial weights and, by default, non-zero
    random biases, for tests against a reference (test weights may seed the global RNG; the
    engine never does)."""
    torch.manual_seed(seed)
    model: RecurrentLM
    if kind.startswith("gru"):
        name, variant = kind.split("-")  # 'gru-d2l', 'gru_reset_only-cudnn', ...
        model = GRUScratch(vocab, hidden, init_std, variant=variant, model=name)
    elif kind == "rnn":
        model = RNNScratch(vocab, hidden, init_std)
    else:
        model = LSTMScratch(vocab, hidden, init_std)
    model = model.to(dtype)
    if random_biases:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.startswith("b_"):
                    p.normal_(0.0, 0.5)
    return model


# A GRU deep in the chaotic regime: std 3 weights, hidden 64 (gain ~24), 100 steps, no
# clipping. The first gradient's norm is ~1e50 in float64, far past float32's 3e38: it
# cannot be finite, so a run with these settings diverges at step 1.
CHAOTIC = {
    "hidden_size": 64,
    "init_std": 3.0,
    "lr": 10.0,
    "clip_threshold": None,
    "num_steps": 100,
    "batch_size": 2,
    "max_tokens": 2000,
    "val_tokens": 0,
    "num_epochs": 3,
}


def wait_for(
    job: TrainingJob, predicate: Callable[[JobStatus], bool], timeout: float = 20.0
) -> JobStatus:
    """Poll a background job's status until ``predicate`` holds (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        status = job.status()
        if predicate(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last status {status}")
        time.sleep(0.01)


class SyncRunner:
    """A ``Lab`` runner for tests: no thread; Step trains one minibatch in the caller's
    thread, and a started job waits for the test to drive it (``job.run_sync(n)``)."""

    def launch(self, job: TrainingJob, step_only: bool) -> None:
        if step_only:
            self.step(job)

    def step(self, job: TrainingJob) -> None:
        job.step_once()
        job.run_sync(1)


def one_step(
    trainer: Trainer, X: torch.Tensor, Y: torch.Tensor, state: State | None = None
) -> tuple[StepRecord, State] | Outcome:
    """One minibatch outside the epoch loop, read at once, from ``state`` (else the core's):
    its record and the state after it, or the Outcome it diverged with. For tests that hold
    single steps against a reference."""
    if state is not None:
        for mine, given in zip(trainer.core.state, state, strict=True):
            mine[0].copy_(given)
    trainer.loop.launch_batch(X.to(trainer.device), Y.to(trainer.device))
    (result,) = trainer.read_step()
    if isinstance(result, Outcome):
        return result
    assert isinstance(result, StepRecord)
    return result, tuple(s[0].clone() for s in trainer.core.state)


def fake_theory(calls: list[tuple]) -> types.ModuleType:
    """A stand-in for gru_core.theory with its signatures: λ = log(std √H / c), the edge at
    c / √H, c = 2 for the GRU and 1 for the RNN (the issue's linearised estimate)."""
    module = types.ModuleType("gru_core.theory")

    def lyapunov_exponent(model, hidden_size, init_std, tokens, vocab_size, *, steps=300,
                          burn_in=50, seeds=3, gru_variant="d2l"):  # noqa: ANN001, ANN202  # fmt: skip
        calls.append(("lambda", model, hidden_size, init_std, len(tokens), vocab_size))
        return math.log(init_std * math.sqrt(hidden_size) / (2 if model == "gru" else 1))

    def edge_of_chaos(model, hidden_size, tokens, vocab_size, *, low=1e-3, high=10.0,
                      gru_variant="d2l"):  # noqa: ANN001, ANN202  # fmt: skip
        calls.append(("edge", model, hidden_size))
        return (2 if model == "gru" else 1) / math.sqrt(hidden_size)

    module.lyapunov_exponent, module.edge_of_chaos = lyapunov_exponent, edge_of_chaos
    return module
