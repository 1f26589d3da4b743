r"""Perplexity, and how a held-out slice is laid out to measure it.

**Perplexity** of a mean cross-entropy L (nats per token, as d2l reports it)::

    PPL = exp(min(L, L_max)),    L_max = 700

where the cap keeps a diverged run's perplexity a finite float (``exp`` overflows a float64
past 709.78) instead of raising ``OverflowError``; any L_max in that margin is as good, and
every perplexity in the project goes through ``perplexity`` so they all agree.

**The validation layout.** A held-out slice of N tokens has n = N - 1 (input, target) pairs;
it is read as B parallel streams of L tokens each, in windows of T (the run's num_steps) with
the state carried from window to window::

    B = max(1, min(B_max, n // T)),    L = n // B,    B_max = 256

so the slice takes one wide forward pass per window instead of several d2l-sized minibatches,
and each stream is at least T long when the slice allows it. Stream b holds inputs
``tokens[b L : (b+1) L]`` and targets one token later. The validation of one run
(``step/fused.py``), of many members at once (``step/validation.py``) and the memory estimate
of ``limits.py`` all use ``validation_layout``.
"""

from __future__ import annotations

import math

from torch import Tensor

MAX_LOG_PERPLEXITY = 700.0  # L_max: exp(L_max) is finite in float64 (its limit is ~709.78)
MAX_VAL_STREAMS = 256  # B_max: parallel streams of the validation layout


def perplexity(mean_loss: float) -> float:
    """``exp(min(mean_loss, 700))``: the perplexity of a mean cross-entropy in nats (module
    docstring). NaN stays NaN (a diverged loss), +inf gives exp(700)."""
    return math.exp(min(mean_loss, MAX_LOG_PERPLEXITY))


def validation_layout(num_tokens: int, num_steps: int) -> tuple[int, int]:
    """(B, L) of a held-out slice of ``num_tokens`` tokens read in windows of ``num_steps``:
    B = max(1, min(256, n // T)) streams of L = n // B positions, n = num_tokens - 1 (module
    docstring). L is 0 when there is no (input, target) pair."""
    n = max(num_tokens - 1, 0)
    B = max(1, min(MAX_VAL_STREAMS, n // num_steps))
    return B, n // B


def validation_streams(tokens: Tensor, num_steps: int) -> tuple[Tensor, Tensor]:
    """Inputs and targets (B, L) of held-out ``tokens`` (N,) in the validation layout: views,
    targets one token after their inputs."""
    B, L = validation_layout(len(tokens), num_steps)
    return tokens[: B * L].view(B, L), tokens[1 : B * L + 1].view(B, L)
