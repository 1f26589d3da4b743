"""The verdict on a run (learned / did not learn / blew up / ...), on crafted telemetry."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gru_core.run.verdict import (
    BLOW_UP_NORM,
    BLOW_UP_PERPLEXITY,
    BLOW_UP_STEPS,
    VERDICTS,
    final_perplexity,
    judge,
)

V = 28


def frames(
    batch_ppl: list[float], epoch_ppl: list[float] | None = None, norms: list[float] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(batch_ppl)
    steps = pd.DataFrame(
        {
            "step": np.arange(1, n + 1),
            "perplexity": batch_ppl,
            "grad_norm": norms if norms is not None else [0.5] * n,
        }
    )
    epochs = pd.DataFrame(
        {
            "epoch": np.arange(1, len(epoch_ppl or []) + 1),
            "train_perplexity": epoch_ppl or [],
        }
    )
    return steps, epochs


def test_a_run_whose_perplexity_fell_learned() -> None:
    steps, epochs = frames([27.9, 20.0, 12.0], [15.0, 9.5])
    v = judge("done", steps, epochs, V)
    assert v.kind == "learned" and not v.failed
    assert (v.start_perplexity, v.final_perplexity) == (27.9, 9.5)
    assert "27.90 → 9.50" in v.headline and "28" in v.headline


@pytest.mark.parametrize(
    "batch, epoch",
    [
        ([27.9, 28.5], [28.2]),  # not below uniform guessing
        ([12.0, 14.0], [13.0]),  # below |V| but above where it started
    ],
)
def test_a_run_that_ends_no_better_did_not_learn(batch: list[float], epoch: list[float]) -> None:
    v = judge("done", *frames(batch, epoch), V)
    assert v.kind == "did not learn" and v.failed


def test_finite_but_exploded_perplexity_blew_up() -> None:
    v = judge("done", *frames([27.9, 1e9, 1e40], [1e38]), V)
    assert v.kind == "blew up" and "1e+06" in v.headline
    # Just under the threshold is judged on the usual rule instead.
    assert judge("done", *frames([27.9, 2e5], [BLOW_UP_PERPLEXITY / 2]), V).kind == (
        "did not learn"
    )


def test_a_gradient_norm_stuck_over_the_threshold_blew_up() -> None:
    n = BLOW_UP_STEPS + 3
    norms = [1.0] * 3 + [BLOW_UP_NORM * 10] * BLOW_UP_STEPS
    v = judge("done", *frames([27.0] + [5.0] * (n - 1), [5.0], norms), V)
    assert v.kind == "blew up" and "stayed over" in v.headline
    # One spike that clipping rescued is not a blow-up.
    norms[-2] = 0.5
    assert judge("done", *frames([27.0] + [5.0] * (n - 1), [5.0], norms), V).kind == "learned"


@pytest.mark.parametrize(
    "status, kind",
    [("diverged", "diverged"), ("out_of_memory", "out of memory"), ("error", "error")],
)
def test_the_jobs_own_ending_comes_first(status: str, kind: str) -> None:
    v = judge(status, *frames([27.9, 3.0], [3.0]), V)
    assert v.kind == kind and v.failed


def test_a_stopped_run_says_how_far_it_got() -> None:
    v = judge("stopped", *frames([27.9, 9.0], [9.0]), V)
    assert v.kind == "stopped" and not v.failed and "27.90 → 9.00" in v.headline


def test_a_run_diverged_at_step_one_has_no_numbers() -> None:
    v = judge("diverged", *frames([]), V)
    assert v.kind == "diverged" and v.start_perplexity is None and v.final_perplexity is None


def test_without_epochs_the_last_batches_decide() -> None:
    steps, epochs = frames([27.9] + [4.0] * 20)
    assert final_perplexity(steps, epochs) == pytest.approx(4.0)
    assert judge("done", steps, epochs, V).kind == "learned"
    # NaN epoch values (not evaluated) fall back to the batches as well.
    steps, epochs = frames([27.9, 4.0], [math.nan])
    assert final_perplexity(steps, epochs) == pytest.approx(math.sqrt(27.9 * 4.0))


def test_every_verdict_is_named() -> None:
    assert set(VERDICTS) == {
        "learned", "did not learn", "blew up", "diverged", "stopped", "out of memory", "error",
    }  # fmt: skip
