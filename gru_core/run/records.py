"""Frozen records that training yields: one per step, one per epoch, and how a run ended.

Records hold plain Python numbers and tuples (no tensors), so they can cross threads, be
stored for a long run and turned into DataFrames without touching the device.
"""

from __future__ import annotations

from dataclasses import dataclass

from gru_core.step.stats import PARAM_GROUPS, PERCENTILES, param_group

__all__ = [
    "PARAM_GROUPS",
    "PERCENTILES",
    "EpochRecord",
    "GateStats",
    "Outcome",
    "StepRecord",
    "param_group",
]


@dataclass(frozen=True)
class GateStats:
    """Distribution of one gate's activations over (T, B, H) in one step."""

    mean: float
    percentiles: tuple[float, ...]  # values at PERCENTILES (5, 25, 50, 75, 95)
    saturated: float  # fraction of entries saturated by the gate's rule (gates.Gate.saturated)


@dataclass(frozen=True)
class StepRecord:
    """Everything measured in one optimisation step (one minibatch). The fields are named
    after the step's statistics (``gru_core.step.stats``: RECORDED, BASE_COLUMNS, FLOWS)."""

    step: int  # 1-based global step
    epoch: int  # 1-based epoch this step belongs to
    loss: float  # mean cross-entropy over the B*T target tokens
    perplexity: float  # exp(loss), the batch perplexity
    grad_norm: float  # global L2 norm of all gradients before clipping
    grad_norm_clipped: float  # global L2 norm after clipping (== grad_norm if not clipped)
    clipped: bool  # whether clipping rescaled the gradients
    clip_threshold: float | None  # the threshold in force at this step (None = off)
    lr: float  # the learning rate in force at this step
    param_grad_norms: dict[str, float]  # parameter name -> L2 norm of its gradient (pre-clip)
    update_ratio: float  # ||lr * g_clipped|| / ||W|| over all parameters
    gates: dict[str, GateStats]  # gate name ('Z', 'R', 'H_tilde', 'I', ...) -> stats
    grad_flow: tuple[float, ...] | None = None  # ||dL/dH_t|| for t = 1..T, every k-th step
    tokens: int = 0  # target tokens processed in this step (B*T)
    # One position's loss flowing back, on the same steps as grad_flow (unnormalised):
    grad_flow_last: tuple[float, ...] | None = None  # ||d l_T / dH_t||, l_T = loss at t = T
    grad_flow_late: tuple[float, ...] | None = None  # ||d l_late / dH_t||, mean of last 5


@dataclass(frozen=True)
class EpochRecord:
    """Summary after each epoch, as d2l's train_ch8 reports it, plus validation."""

    epoch: int
    step: int  # global step at the end of the epoch
    train_perplexity: float  # exp(token-mean loss over the epoch), d2l's definition
    val_perplexity: float | None  # on the held-out slice; None without one or not evaluated
    tokens_per_sec: float  # training throughput over the epoch
    greedy_text: str  # 50 greedy characters after 'time traveller' (d2l's predict_ch8), or ''
    sampled_text: str  # 50 characters sampled at a temperature, or '' (see Trainer.eval_every)
    elapsed: float  # seconds since the run started


@dataclass(frozen=True)
class Outcome:
    """How a run ended. status: 'done', 'stopped', 'diverged', 'out_of_memory' or 'error'."""

    status: str
    step: int  # last step attempted
    message: str = ""
    last_finite_loss: float | None = None
    last_finite_grad_norm: float | None = None
