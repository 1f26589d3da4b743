"""The one perplexity helper and the one validation layout, and that nothing else repeats them."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from gru_core.config import TrainConfig
from gru_core.limits import BYTES, FWD_PER_UNIT, estimate_bytes
from gru_core.perplexity import (
    MAX_LOG_PERPLEXITY,
    MAX_VAL_STREAMS,
    perplexity,
    validation_layout,
    validation_streams,
)
from gru_core.step.validation import val_bytes

REPO = Path(__file__).resolve().parents[1]


def test_perplexity_is_exp_of_the_mean_loss_capped() -> None:
    for loss in (0.0, 1.0, 2.5, 30.0, 699.0):
        assert perplexity(loss) == math.exp(loss)
    assert perplexity(700.5) == perplexity(1e6) == perplexity(math.inf) == math.exp(700.0)
    assert math.isfinite(perplexity(1e300))  # math.exp(1e300) would raise OverflowError
    assert math.isnan(perplexity(math.nan))  # a diverged loss stays visibly diverged
    assert MAX_LOG_PERPLEXITY == 700.0


@pytest.mark.parametrize("num_tokens", [0, 1, 2, 9, 10, 11, 80, 81, 5000, 100_000])
@pytest.mark.parametrize("num_steps", [1, 10, 35])
def test_validation_layout(num_tokens: int, num_steps: int) -> None:
    B, L = validation_layout(num_tokens, num_steps)
    n = max(num_tokens - 1, 0)
    assert B == max(1, min(MAX_VAL_STREAMS, n // num_steps)) and L == n // B
    assert 1 <= B <= MAX_VAL_STREAMS and B * L <= n
    assert n - B * L < B  # at most B - 1 pairs left over
    if n >= num_steps:
        assert L >= num_steps  # every stream holds at least one whole window


def test_validation_streams_are_views_targets_one_token_later() -> None:
    tokens = torch.arange(1000)
    X, Y = validation_streams(tokens, 7)
    B, L = validation_layout(1000, 7)
    assert X.shape == Y.shape == (B, L) == (142, 7)
    assert torch.equal(X.reshape(-1), tokens[: B * L]) and torch.equal(Y, X + 1)
    assert X.data_ptr() == tokens.data_ptr()  # views, no copy


def test_memory_estimates_use_the_validation_layout() -> None:
    """limits' validation part counts the wider of the probe's B streams and validation's."""
    for val_tokens, batch in ((5000, 32), (350, 32), (0, 32), (100_000, 4)):
        cfg = TrainConfig(num_steps=35, batch_size=batch, hidden_size=64, val_tokens=val_tokens)
        streams = max(batch, validation_layout(val_tokens, 35)[0])
        part = estimate_bytes(cfg, 28)["validation and traced gates"]
        assert part == FWD_PER_UNIT["gru"] * 35 * streams * 64 * BYTES
        B, _ = validation_layout(val_tokens, 35)
        extra = val_bytes(cfg, val_tokens, 3)
        assert extra == (0 if val_tokens < 2 else 2 * (FWD_PER_UNIT["gru"] * 64 + 64) * 35 * B * 4)


def test_exp_min_is_written_once() -> None:
    """Every perplexity goes through ``perplexity``: no other module caps exp by hand."""
    files = sorted((REPO / "gru_core").rglob("*.py")) + sorted((REPO / "dashboard").rglob("*.py"))
    assert len(files) > 40
    pattern = re.compile(r"exp\(\s*min\(")
    offenders = [p.name for p in files if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == ["perplexity.py"]
