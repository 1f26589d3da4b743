"""Training: d2l's clipping and SGD, live knobs, records, divergence, OOM, determinism."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import Tensor

from gru_core.config import TrainConfig
from gru_core.data import Corpus, corpus_from_text
from gru_core.model.cells import GRUScratch
from gru_core.run.records import PERCENTILES, EpochRecord, GateStats, Outcome, StepRecord
from gru_core.run.trainer import NUM_PREDS, Record, Trainer
from gru_core.sources import D2L_PREFIX as PREFIX
from gru_core.step import bptt as step_bptt
from gru_core.step import core as step_mod
from gru_core.step import fused
from gru_core.step.stats import GATE_SUFFIXES, GateTable

from helpers import CHAOTIC, TINY_RUN, one_step

SMALL = {**TINY_RUN, "num_epochs": 2, "init_std": 0.1}


def make_trainer(corpus: Corpus, dtype: torch.dtype = torch.float32, **changes: object) -> Trainer:
    return Trainer(TrainConfig(**{**SMALL, **changes}), corpus, device="cpu", dtype=dtype)


def first_batch(trainer: Trainer) -> tuple[Tensor, Tensor]:
    B, T = trainer.config.batch_size, trainer.config.num_steps
    tokens = trainer.train_tokens
    return tokens[: B * T].view(B, T), tokens[1 : B * T + 1].view(B, T)


def params_of(trainer: Trainer) -> dict[str, Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


def split(records: list[Record]) -> tuple[list[StepRecord], list[EpochRecord], list[Outcome]]:
    steps = [r for r in records if isinstance(r, StepRecord)]
    epochs = [r for r in records if isinstance(r, EpochRecord)]
    outcomes = [r for r in records if isinstance(r, Outcome)]
    return steps, epochs, outcomes


def reference_step(trainer: Trainer, X: Tensor, Y: Tensor) -> tuple[dict[str, Tensor], float]:
    """Gradients of the first step from a copy of the model, and their global L2 norm."""
    ref = copy.deepcopy(trainer.model)
    grads = fused.loss_and_grads(ref, X, Y, ref.init_state(X.shape[0])).grads
    norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads.values()))
    return grads, norm


# -- clipping and the update --------------------------------------------------------------


# float32 as trained; float64 to check the update rule to rounding. A float32 weight of ~0.3
# moves in steps of 3e-8, so the float32 comparison allows that much per entry.
DTYPE_TOL = {
    torch.float32: {"rtol": 1e-3, "atol": 1e-7},
    torch.float64: {"rtol": 1e-9, "atol": 1e-15},
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_clipping_tiny_threshold_rescales_the_global_norm(
    small_corpus: Corpus, dtype: torch.dtype
) -> None:
    theta, lr = 1e-3, 2.0
    trainer = make_trainer(small_corpus, dtype, clip_threshold=theta, lr=lr)
    X, Y = first_batch(trainer)
    grads, g_norm = reference_step(trainer, X, Y)
    before = params_of(trainer)
    result = one_step(trainer, X, Y, trainer.model.init_state(X.shape[0]))
    assert not isinstance(result, Outcome)
    record, _ = result
    assert record.clipped is True
    assert record.clip_threshold == theta and record.lr == lr
    assert record.grad_norm == pytest.approx(g_norm, rel=1e-5)
    assert record.grad_norm_clipped == pytest.approx(theta, rel=1e-6)
    after = params_of(trainer)
    scale = lr * theta / g_norm  # d2l: g <- g * theta / ||g||, then W <- W - lr * g
    update_sq = 0.0
    for name, g in grads.items():
        delta = (before[name] - after[name]).double()
        torch.testing.assert_close(delta, scale * g.double(), **DTYPE_TOL[dtype])
        update_sq += float((delta**2).sum())
    # The rule is global: the whole update has norm lr * theta, not each parameter's.
    assert math.sqrt(update_sq) == pytest.approx(lr * theta, rel=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("theta", [1e6, None])
def test_no_clipping_when_threshold_huge_or_off(
    small_corpus: Corpus, theta: float | None, dtype: torch.dtype
) -> None:
    lr = 0.5
    trainer = make_trainer(small_corpus, dtype, clip_threshold=theta, lr=lr)
    X, Y = first_batch(trainer)
    grads, g_norm = reference_step(trainer, X, Y)
    before = params_of(trainer)
    result = one_step(trainer, X, Y, trainer.model.init_state(X.shape[0]))
    assert not isinstance(result, Outcome)
    record, _ = result
    assert record.clipped is False
    assert record.clip_threshold == theta
    assert record.grad_norm_clipped == record.grad_norm
    assert record.grad_norm == pytest.approx(g_norm, rel=1e-5)
    after = params_of(trainer)
    for name, g in grads.items():
        delta = (before[name] - after[name]).double()
        torch.testing.assert_close(delta, lr * g.double(), **DTYPE_TOL[dtype])


def test_threshold_just_around_the_norm(small_corpus: Corpus) -> None:
    probe = make_trainer(small_corpus)
    X, Y = first_batch(probe)
    _, g_norm = reference_step(probe, X, Y)
    below = make_trainer(small_corpus, clip_threshold=0.9 * g_norm)
    above = make_trainer(small_corpus, clip_threshold=1.1 * g_norm)
    rec_below = one_step(below, X, Y, below.model.init_state(X.shape[0]))
    rec_above = one_step(above, X, Y, above.model.init_state(X.shape[0]))
    assert not isinstance(rec_below, Outcome) and not isinstance(rec_above, Outcome)
    assert rec_below[0].clipped and not rec_above[0].clipped
    assert rec_below[0].grad_norm_clipped == pytest.approx(0.9 * g_norm, rel=1e-5)


# -- live knobs ---------------------------------------------------------------------------


def test_live_knobs_apply_to_the_next_step(small_corpus: Corpus) -> None:
    trainer = make_trainer(small_corpus, clip_threshold=1.0, lr=1.0)
    X, Y = first_batch(trainer)
    state = trainer.model.init_state(X.shape[0])
    trainer.set_config(trainer.config.replace(clip_threshold=1e-4, lr=0.25))
    result = one_step(trainer, X, Y, state)
    assert not isinstance(result, Outcome)
    rec = result[0]
    assert (rec.clip_threshold, rec.lr, rec.clipped) == (1e-4, 0.25, True)
    assert rec.grad_norm_clipped == pytest.approx(1e-4, rel=1e-6)
    assert rec.update_ratio > 0

    trainer.set_config(trainer.config.replace(clip_threshold=None))
    result = one_step(trainer, X, Y, state)
    assert not isinstance(result, Outcome)
    assert result[0].clip_threshold is None and result[0].clipped is False

    for bad_lr in (0.0, -1.0, math.nan, math.inf, 1e9, "0.1", True):
        with pytest.raises(ValueError, match="lr"):
            trainer.set_config(trainer.config.replace(lr=bad_lr))  # type: ignore[arg-type]
    for bad_theta in (0.0, -1.0, math.nan, math.inf, 1e9, "1"):
        with pytest.raises(ValueError, match="clip_threshold"):
            trainer.set_config(trainer.config.replace(clip_threshold=bad_theta))  # type: ignore[arg-type]
    # A rejected value leaves the knobs as they were.
    assert trainer.config.lr == 0.25 and trainer.config.clip_threshold is None
    result = one_step(trainer, X, Y, state)
    assert not isinstance(result, Outcome)
    assert (result[0].lr, result[0].clip_threshold) == (0.25, None)


def test_knob_set_during_run_reaches_the_next_launched_step(small_corpus: Corpus) -> None:
    """Records come one step late: when record 2 is read, step 3 is already on its way with
    the old knobs, so a change made then applies from step 4 (and its record says so)."""
    trainer = make_trainer(small_corpus, num_epochs=1, lr=1.0, clip_threshold=1.0)
    seen: list[StepRecord] = []
    for record in trainer.run():
        if isinstance(record, StepRecord):
            seen.append(record)
            if record.step == 2:
                trainer.set_config(trainer.config.replace(lr=0.5))
                trainer.set_config(trainer.config.replace(clip_threshold=0.01))
                assert trainer.step == 3 and trainer.pending
            if record.step == 5:
                break
    assert [(r.lr, r.clip_threshold) for r in seen] == [(1.0, 1.0)] * 3 + [(0.5, 0.01)] * 2
    assert trainer.config.lr == 0.5 and trainer.config.clip_threshold == 0.01


def test_knob_set_without_lookahead_reaches_the_next_step(small_corpus: Corpus) -> None:
    trainer = make_trainer(small_corpus, num_epochs=1, lr=1.0, clip_threshold=1.0)
    first = trainer.advance(lookahead=False)
    assert [r.step for r in first if isinstance(r, StepRecord)] == [1] and not trainer.pending
    trainer.set_config(trainer.config.replace(lr=0.5))
    (record,) = trainer.advance(lookahead=False)
    assert isinstance(record, StepRecord) and (record.step, record.lr) == (2, 0.5)


# -- divergence and out of memory ---------------------------------------------------------


def test_divergence_from_config_ends_with_outcome(small_corpus: Corpus) -> None:
    trainer = Trainer(TrainConfig(**CHAOTIC), small_corpus, device="cpu")
    initial = params_of(trainer)
    records = list(trainer.run())  # no exception escapes
    steps, epochs, outcomes = split(records)
    assert len(outcomes) == 1 and records[-1] is outcomes[0]
    outcome = outcomes[0]
    assert outcome.status == "diverged"
    assert outcome.step == 1 and not steps and not epochs
    assert "step 1" in outcome.message
    assert "gradient norm" in outcome.message or "loss" in outcome.message
    assert outcome.last_finite_loss is None and outcome.last_finite_grad_norm is None
    # The update is not applied: the model keeps its (last finite) initial weights.
    for name, p in params_of(trainer).items():
        assert torch.equal(p, initial[name]), name


def test_divergence_mid_run_keeps_earlier_records_and_weights(small_corpus: Corpus) -> None:
    """Record 3 is read while step 4 is already done (records come one step late); then the
    weights are swapped for chaotic ones (as a blow-up would leave them): step 5 diverges,
    steps 1-4 remain, and the update of step 5 is not applied."""
    config = TrainConfig(**{**CHAOTIC, "init_std": 0.1, "lr": 0.5, "clip_threshold": 1.0})
    trainer = Trainer(config, small_corpus, device="cpu")
    torch.manual_seed(123)
    chaotic = GRUScratch(len(trainer.vocab), 64, init_std=3.0)
    records: list[Record] = []
    for record in trainer.run():
        records.append(record)
        if isinstance(record, StepRecord) and record.step == 3:
            trainer.model.load_state_dict(chaotic.state_dict())
    steps, _, outcomes = split(records)
    assert [r.step for r in steps] == [1, 2, 3, 4]
    assert all(math.isfinite(r.loss) and math.isfinite(r.grad_norm) for r in steps)
    assert len(outcomes) == 1 and records[-1] is outcomes[0]
    outcome = outcomes[0]
    assert (outcome.status, outcome.step) == ("diverged", 5)
    assert "step 5" in outcome.message
    assert outcome.last_finite_loss == steps[-1].loss
    assert outcome.last_finite_grad_norm == steps[-1].grad_norm
    for name, p in trainer.model.state_dict().items():
        assert torch.equal(p, chaotic.state_dict()[name]), name


def test_out_of_memory_ends_with_outcome(
    small_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = step_mod.loss_and_grads

    def flaky(*args: object, **kwargs: object) -> step_bptt.Grads:
        calls["n"] += 1
        if calls["n"] == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(step_mod, "loss_and_grads", flaky)
    trainer = make_trainer(small_corpus)
    records = list(trainer.run())  # no exception escapes
    steps, _, outcomes = split(records)
    assert [r.step for r in steps] == [1, 2]
    assert len(outcomes) == 1 and records[-1] is outcomes[0]
    outcome = outcomes[0]
    assert outcome.status == "out_of_memory"
    assert outcome.step == 3
    assert "out of memory" in outcome.message.lower()
    assert outcome.last_finite_loss == steps[-1].loss


# -- learning -----------------------------------------------------------------------------


def test_tiny_model_overfits_a_short_text(small_corpus: Corpus) -> None:
    text = small_corpus.vocab.decode(small_corpus.tokens[:1200])
    corpus = corpus_from_text(text, "short.txt")
    config = TrainConfig(
        hidden_size=32,
        init_std=0.1,
        lr=4.0,
        clip_threshold=1.0,
        num_steps=16,
        batch_size=4,
        max_tokens=1200,
        val_tokens=0,
        num_epochs=8,
    )
    records = list(Trainer(config, corpus, device="cpu").run())
    _, epochs, outcomes = split(records)
    assert outcomes[-1].status == "done"
    first, last = epochs[0].train_perplexity, epochs[-1].train_perplexity
    assert last < 0.25 * first, (first, last)
    assert last < 3.0, last


def test_tiny_model_overfits_one_batch(small_corpus: Corpus) -> None:
    """llm.c's habit: repeated steps on one batch drive its loss far down."""
    trainer = make_trainer(small_corpus, hidden_size=32, lr=2.0, clip_threshold=1.0)
    X, Y = first_batch(trainer)
    losses = []
    for _ in range(150):
        result = one_step(trainer, X, Y, trainer.model.init_state(X.shape[0]))
        assert not isinstance(result, Outcome)
        losses.append(result[0].loss)
    assert losses[-1] < 0.25 * losses[0], (losses[0], losses[-1])


# -- records ------------------------------------------------------------------------------


def test_records_fields(small_corpus: Corpus) -> None:
    flow_every = 3
    trainer = make_trainer(small_corpus, flow_every=flow_every, num_epochs=2, lr=1.0)
    names = {n for n, _ in trainer.model.named_parameters()}
    records = list(trainer.run())
    steps, epochs, outcomes = split(records)
    T, B = SMALL["num_steps"], SMALL["batch_size"]

    assert [r.step for r in steps] == list(range(1, len(steps) + 1))
    assert len(steps) > flow_every * 2
    for rec in steps:
        assert rec.tokens == T * B
        assert rec.perplexity == pytest.approx(math.exp(rec.loss), rel=1e-9)
        assert set(rec.param_grad_norms) == names
        total = math.sqrt(sum(v**2 for v in rec.param_grad_norms.values()))
        assert total == pytest.approx(rec.grad_norm, rel=1e-5)
        assert rec.grad_norm_clipped <= rec.grad_norm * (1 + 1e-9)
        assert rec.clipped == (rec.grad_norm > 1.0)
        assert set(rec.gates) == {"Z", "R", "H_tilde"}
        for name, stats in rec.gates.items():
            assert isinstance(stats, GateStats)
            lo = -1.0 if name == "H_tilde" else 0.0
            pct = stats.percentiles
            assert len(pct) == len(PERCENTILES) == 5
            assert list(pct) == sorted(pct), (name, pct)
            assert lo <= pct[0] and pct[-1] <= 1.0, (name, pct)
            assert lo <= stats.mean <= 1.0
            assert 0.0 <= stats.saturated <= 1.0
        if (rec.step - 1) % flow_every == 0:
            assert rec.grad_flow is not None and len(rec.grad_flow) == T, rec.step
            assert all(math.isfinite(v) and v >= 0 for v in rec.grad_flow)
        else:
            assert rec.grad_flow is None, rec.step

    assert [e.epoch for e in epochs] == [1, 2]
    for epoch in epochs:
        in_epoch = [r for r in steps if r.epoch == epoch.epoch]
        assert epoch.step == in_epoch[-1].step
        mean_loss = sum(r.loss * r.tokens for r in in_epoch) / sum(r.tokens for r in in_epoch)
        assert epoch.train_perplexity == pytest.approx(math.exp(mean_loss), rel=1e-6)
        assert epoch.val_perplexity is not None and math.isfinite(epoch.val_perplexity)
        assert 1.0 < epoch.val_perplexity < 1000.0
        assert epoch.tokens_per_sec > 0 and epoch.elapsed > 0
        for text in (epoch.greedy_text, epoch.sampled_text):
            # Generated text starts from the corpus's own first words (an upload's, here).
            prefix = small_corpus.prefix
            assert prefix == "the quick brown fox" and text.startswith(prefix)
            assert len(text) == len(prefix) + NUM_PREDS, text
    assert epochs[1].elapsed >= epochs[0].elapsed
    assert len(outcomes) == 1 and records[-1] is outcomes[0]
    assert outcomes[0].status == "done" and outcomes[0].step == len(steps)


def test_no_validation_slice_gives_none(small_corpus: Corpus) -> None:
    trainer = make_trainer(small_corpus, val_tokens=0, num_epochs=1)
    _, epochs, _ = split(list(trainer.run()))
    assert len(epochs) == 1 and epochs[0].val_perplexity is None


def test_eval_every_evaluates_every_kth_and_the_last_epoch(small_corpus: Corpus) -> None:
    config = TrainConfig(**{**SMALL, "num_epochs": 7})
    every_epoch = split(list(Trainer(config, small_corpus, device="cpu").run()))[1]
    sparse = split(list(Trainer(config, small_corpus, "cpu", eval_every=3).run()))[1]
    assert [e.epoch for e in sparse if e.val_perplexity is not None] == [3, 6, 7]
    for full, thin in zip(every_epoch, sparse, strict=True):
        assert thin.train_perplexity == pytest.approx(full.train_perplexity)  # same training
        if thin.epoch in (3, 6, 7):
            assert thin.val_perplexity == pytest.approx(full.val_perplexity)
            assert thin.greedy_text == full.greedy_text
            assert thin.sampled_text.startswith(small_corpus.prefix)
        else:
            assert (thin.val_perplexity, thin.greedy_text, thin.sampled_text) == (None, "", "")
    with pytest.raises(ValueError, match="eval_every"):
        Trainer(config, small_corpus, "cpu", eval_every=0)


def gate_stats(gates: dict[str, torch.Tensor]) -> dict[str, GateStats]:
    """Each gate's (T, B, H) values through the step's own statistics (``GateTable``: every
    k-th sequence, at most 36,000 values per gate; percentiles from a 1000-bin histogram)."""
    if not gates:
        return {}
    names = tuple(gates)
    table = GateTable(names, "cpu", torch.float64)
    values = table.stats({n: g[:, None] for n, g in gates.items()}, torch.float64)[0].tolist()
    width = len(GATE_SUFFIXES)
    out = {}
    for i, name in enumerate(names):
        stats = values[i * width : (i + 1) * width]
        out[name] = GateStats(stats[0], tuple(stats[1:-1]), stats[-1])
    return out


def test_gate_stats_match_numpy_percentile() -> None:
    T, B, H = 10, 8, 50
    n = T * B * H
    g = torch.Generator().manual_seed(0)
    gates = {
        "Z": torch.linspace(0.0, 1.0, n).reshape(T, B, H),
        "R": torch.sigmoid(2.0 * torch.randn(T, B, H, generator=g)),
        "H_tilde": torch.tanh(torch.randn(T, B, H, generator=g)),
        "C_tilde": torch.linspace(-1.0, 1.0, n).reshape(T, B, H),
    }
    stats = gate_stats(gates)
    assert set(stats) == set(gates)
    for name, values in gates.items():
        arr = values.numpy().astype(np.float64).ravel()
        expected = np.percentile(arr, PERCENTILES)
        np.testing.assert_allclose(stats[name].percentiles, expected, atol=0.002, err_msg=name)
        assert stats[name].mean == pytest.approx(arr.mean(), abs=1e-6)
        if name in ("Z", "R"):
            sat = np.mean((arr < 0.05) | (arr > 0.95))
        else:
            sat = np.mean(np.abs(arr) > 0.95)
        assert stats[name].saturated == pytest.approx(sat, abs=0.003), name
    # Known values: a uniform Z on [0, 1] has its percentiles at p/100 and 10% saturated.
    np.testing.assert_allclose(stats["Z"].percentiles, [0.05, 0.25, 0.5, 0.75, 0.95], atol=2e-3)
    assert stats["Z"].saturated == pytest.approx(0.10, abs=2e-3)
    assert stats["C_tilde"].saturated == pytest.approx(0.05, abs=2e-3)
    assert gate_stats({}) == {}


def test_gate_stats_subsampled_for_large_gates() -> None:
    g = torch.Generator().manual_seed(1)
    big = torch.rand(35, 32, 256, generator=g)  # d2l-sized: 286,720 values
    stats = gate_stats({"Z": big})["Z"]
    np.testing.assert_allclose(stats.percentiles, [0.05, 0.25, 0.5, 0.75, 0.95], atol=0.01)
    assert stats.mean == pytest.approx(0.5, abs=0.01)


def test_greedy_prediction_is_d2l_predict_ch8(small_corpus: Corpus) -> None:
    """Warm up on the prefix, then feed back the argmax, one character at a time."""
    trainer = make_trainer(small_corpus, init_std=0.5)
    model, vocab = trainer.model, trainer.vocab
    outputs = [vocab.token_to_idx[PREFIX[0]]]
    state = model.init_state(1)
    with torch.no_grad():
        for ch in PREFIX[1:]:
            state = model(torch.tensor([[outputs[-1]]]), state).state
            outputs.append(vocab.token_to_idx[ch])
        for _ in range(12):
            out = model(torch.tensor([[outputs[-1]]]), state)
            state = out.state
            outputs.append(int(out.logits.reshape(-1).argmax()))
    assert trainer.predict(PREFIX, 12) == vocab.decode(outputs)


# -- determinism and d2l's data ----------------------------------------------------------


def _first_losses(corpus: Corpus, seed: int, n: int = 5) -> list[float]:
    out = []
    for record in make_trainer(corpus, seed=seed).run():
        if isinstance(record, StepRecord):
            out.append(record.loss)
            if len(out) == n:
                break
    return out


def test_same_seed_same_losses_different_seed_differs(small_corpus: Corpus) -> None:
    a, b = _first_losses(small_corpus, 0), _first_losses(small_corpus, 0)
    c = _first_losses(small_corpus, 1)
    assert len(a) == 5 and a == b
    assert a != c


@pytest.mark.parametrize("sampling", ["sequential", "random"])
def test_d2l_epoch_has_eight_minibatches(time_machine: Corpus, sampling: str) -> None:
    """d2l: 10,000 tokens, batch 32, 35 steps -> 8 minibatches per epoch."""
    config = TrainConfig(hidden_size=16, num_epochs=1, sampling=sampling)
    assert (config.batch_size, config.num_steps, config.max_tokens) == (32, 35, 10_000)
    records = list(Trainer(config, time_machine, device="cpu").run())
    steps, epochs, outcomes = split(records)
    assert len(steps) == 8
    assert all(r.tokens == 32 * 35 for r in steps)
    assert len(epochs) == 1 and epochs[0].step == 8
    assert outcomes[-1].status == "done"
