"""The verdict on a run (learned / memorised / did not learn / blew up / ...), on crafted
records and arrays, and on a seeded run shaped like d2l's default that memorises."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.run.records import EpochRecord, StepRecord
from gru_core.run.trainer import Trainer
from gru_core.run.verdict import (
    BLOW_UP_NORM,
    BLOW_UP_PERPLEXITY,
    BLOW_UP_STEPS,
    MEMORISED_RATIO,
    VERDICTS,
    Evidence,
    final_perplexity,
    judge,
)

V = 28


def evidence(
    batch_ppl: list[float],
    epoch_ppl: list[float] | None = None,
    norms: list[float] | None = None,
    val_ppl: list[float | None] | None = None,
) -> Evidence:
    return Evidence.of(
        batch_ppl, norms if norms is not None else [0.5] * len(batch_ppl), epoch_ppl, val_ppl
    )


def test_a_run_whose_perplexity_fell_learned() -> None:
    v = judge("done", evidence([27.9, 20.0, 12.0], [15.0, 9.5]), V)
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
    v = judge("done", evidence(batch, epoch), V)
    assert v.kind == "did not learn" and v.failed


def test_finite_but_exploded_perplexity_blew_up() -> None:
    v = judge("done", evidence([27.9, 1e9, 1e40], [1e38]), V)
    assert v.kind == "blew up" and "1e+06" in v.headline
    # Just under the threshold is judged on the usual rule instead.
    assert judge("done", evidence([27.9, 2e5], [BLOW_UP_PERPLEXITY / 2]), V).kind == (
        "did not learn"
    )


def test_a_gradient_norm_stuck_over_the_threshold_blew_up() -> None:
    n = BLOW_UP_STEPS + 3
    norms = [1.0] * 3 + [BLOW_UP_NORM * 10] * BLOW_UP_STEPS
    v = judge("done", evidence([27.0] + [5.0] * (n - 1), [5.0], norms), V)
    assert v.kind == "blew up" and "stayed over" in v.headline
    # One spike that clipping rescued is not a blow-up.
    norms[-2] = 0.5
    assert judge("done", evidence([27.0] + [5.0] * (n - 1), [5.0], norms), V).kind == "learned"


@pytest.mark.parametrize(
    "status, kind",
    [("diverged", "diverged"), ("out_of_memory", "out of memory"), ("error", "error")],
)
def test_the_jobs_own_ending_comes_first(status: str, kind: str) -> None:
    v = judge(status, evidence([27.9, 3.0], [3.0], val_ppl=[80.0]), V)
    assert v.kind == kind and v.failed


def test_a_stopped_run_says_how_far_it_got() -> None:
    v = judge("stopped", evidence([27.9, 9.0], [9.0]), V)
    assert v.kind == "stopped" and not v.failed and "27.90 → 9.00" in v.headline


def test_a_run_diverged_at_step_one_has_no_numbers() -> None:
    v = judge("diverged", evidence([]), V)
    assert v.kind == "diverged" and v.start_perplexity is None and v.final_perplexity is None


def test_without_epochs_the_last_batches_decide() -> None:
    e = evidence([27.9] + [4.0] * 20)
    assert final_perplexity(e) == pytest.approx(4.0)
    assert judge("done", e, V).kind == "learned"
    # NaN epoch values (not evaluated) fall back to the batches as well.
    assert final_perplexity(evidence([27.9, 4.0], [math.nan])) == pytest.approx(
        math.sqrt(27.9 * 4.0)
    )


# -- memorised: validation ends >= |V|, or > MEMORISED_RATIO x its best ----------------------
@pytest.mark.parametrize(
    "val, kind",
    [
        ([9.0, 7.0, 27.9], "memorised"),  # under |V|, but over MEMORISED_RATIO x its best
        ([9.0, 7.0, 13.9], "learned"),  # just under MEMORISED_RATIO x best
        ([9.0, 7.0, 14.1], "memorised"),  # just over it
        ([30.0, 29.0, 28.0], "memorised"),  # never good: at |V| = 28 is no better than guessing
        ([30.0, 29.0, 27.9], "learned"),  # just under |V|, near its best
        ([9.0, 7.0, 77.4], "memorised"),  # d2l's default run
        ([None, None], "learned"),  # never evaluated: no claim about held-out text
    ],
)
def test_memorised_either_side_of_each_threshold(val: list[float | None], kind: str) -> None:
    assert MEMORISED_RATIO == 2.0  # the thresholds these cases sit either side of
    v = judge("done", evidence([27.9, 3.0, 1.05], [5.0, 1.05], val_ppl=val), V)
    assert v.kind == kind
    assert v.failed == (kind == "memorised")


def test_a_memorised_verdict_carries_both_numbers() -> None:
    v = judge("done", evidence([27.9, 1.05], [1.05], val_ppl=[7.1, 77.39]), V)
    assert v.kind == "memorised"
    assert (v.final_val_perplexity, v.best_val_perplexity, v.vocab_size) == (77.39, 7.1, 28)
    assert "77.39" in v.headline and "7.10" in v.headline and "1.05" in v.headline


def test_learning_fails_before_memorising_is_asked() -> None:
    # Validation over |V|, but the training text was not learned either: did not learn.
    v = judge("done", evidence([27.9, 28.5], [28.2], val_ppl=[40.0]), V)
    assert v.kind == "did not learn"


def test_records_columns_and_arrays_give_one_verdict() -> None:
    steps = [
        StepRecord(i, 1, math.log(p), p, 0.5, 0.5, False, 1.0, 1.0, {}, 0.0, {})
        for i, p in enumerate([27.9, 3.0, 1.2], start=1)
    ]
    epochs = [
        EpochRecord(1, 2, 4.0, 7.0, 1.0, "", "", 1.0),
        EpochRecord(2, 3, 1.2, None, 1.0, "", "", 2.0),
        EpochRecord(3, 3, 1.1, 30.0, 1.0, "", "", 3.0),
    ]
    by_records = judge("done", Evidence.from_records(steps, epochs), V)
    frames = (
        pd.DataFrame({"perplexity": [27.9, 3.0, 1.2], "grad_norm": [0.5] * 3}),
        pd.DataFrame({"train_perplexity": [4.0, 1.2, 1.1], "val_perplexity": [7.0, None, 30.0]}),
    )
    by_columns = judge("done", Evidence.from_columns(*frames), V)
    assert by_records == by_columns
    assert by_records.kind == "memorised" and by_records.final_perplexity == 1.1


def test_a_small_run_shaped_like_d2ls_default_memorises(time_machine: Corpus) -> None:
    """d2l's default run (hidden 256, 500 epochs, lr 1 on 10,000 characters) learns its
    training text by heart: training ~1.05, validation ~77 > |V| = 28. The same shape,
    small enough for a CPU test: a model far too big for 500 training characters, 60 epochs
    (here validation bottoms near 14 at epoch 20 and ends near 97)."""
    config = TrainConfig(
        hidden_size=64, max_tokens=500, val_tokens=1_000, num_steps=20, batch_size=4,
        num_epochs=60, lr=3.0, seed=0, device="cpu", flow_every=100_000,
    )  # fmt: skip
    steps: list[StepRecord] = []
    epochs: list[EpochRecord] = []
    status = "done"
    for record in Trainer(config, time_machine, eval_every=10, probes=False).run():
        if isinstance(record, StepRecord):
            steps.append(record)
        elif isinstance(record, EpochRecord):
            epochs.append(record)
        else:
            status = record.status
    v = judge(status, Evidence.from_records(steps, epochs), len(time_machine.vocab))
    assert status == "done"
    assert v.kind == "memorised", v.headline
    assert v.final_perplexity is not None and v.final_perplexity < 3  # knows the text
    assert v.final_val_perplexity is not None and v.best_val_perplexity is not None
    assert v.final_val_perplexity > MEMORISED_RATIO * v.best_val_perplexity


def test_every_verdict_is_named() -> None:
    assert set(VERDICTS) == {
        "learned", "memorised", "did not learn", "blew up", "diverged", "stopped",
        "out of memory", "error",
    }  # fmt: skip
