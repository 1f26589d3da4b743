"""The fast path against the textbook: same seed, data and initial weights -> same numbers.

``gru_core.model.textbook`` is d2l's GRU as the book writes it (one-hot inputs, a matmul per gate,
autograd, d2l's clipping and SGD); ``one_step`` (tests/helpers.py) runs the hand-written BPTT of
``fused.py``. Started from copied weights on the same minibatches, the two must give the same
losses step after step and the same gradients.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import pytest
import torch

from gru_core.config import TrainConfig
from gru_core.data import Corpus, batch_iterator
from gru_core.model import textbook
from gru_core.model.textbook import TextbookGRU
from gru_core.run.records import EpochRecord, Outcome, StepRecord
from gru_core.run.trainer import Trainer
from gru_core.step.fused import loss_and_grads

from helpers import one_step

SMALL = {"hidden_size": 32, "batch_size": 4, "num_steps": 10}


def _pair(corpus: Corpus, **fields: object) -> tuple[Trainer, TextbookGRU]:
    """A float32 CPU Trainer and a textbook model holding the Trainer's initial weights."""
    config = TrainConfig(device="cpu", val_tokens=0, **fields)
    trainer = Trainer(config, corpus, device="cpu")
    net = TextbookGRU(len(corpus.vocab), config.hidden_size, "cpu").load_from(trainer.model)
    return trainer, net


def _batches(trainer: Trainer) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The minibatches Trainer.run would draw in its first epoch (same seed, same iterator)."""
    cfg = trainer.config
    rng = random.Random(cfg.seed)
    return batch_iterator(trainer.train_tokens, cfg.batch_size, cfg.num_steps, cfg.sampling, rng)


def _lockstep(trainer: Trainer, net: TextbookGRU, steps: int) -> tuple[list[float], list[float]]:
    """Run both for ``steps`` minibatches; return (textbook losses, trainer losses)."""
    theta, lr = trainer.config.clip_threshold, trainer.config.lr
    book, ours = [], []
    B = trainer.config.batch_size
    book_state, state = net.begin_state(B), trainer.model.init_state(B)
    for X, Y in itertools.islice(_batches(trainer), steps):
        book_state = tuple(s.detach() for s in book_state)  # as train_epoch does
        loss, _, book_state = textbook.train_step(net, X, Y, book_state, lr, theta)
        book.append(loss)
        result = one_step(trainer, X, Y, state)
        assert not isinstance(result, Outcome), result
        record, state = result
        ours.append(record.loss)
    return book, ours


def test_losses_match_for_20_steps(time_machine: Corpus) -> None:
    trainer, net = _pair(time_machine, **SMALL)
    book, ours = _lockstep(trainer, net, steps=20)
    assert len(ours) == 20
    assert ours == pytest.approx(book, abs=1e-4)
    assert book[-1] < book[0]  # it is learning, so the comparison is not of constants


def test_losses_match_at_d2l_size(time_machine: Corpus) -> None:
    trainer, net = _pair(time_machine)  # hidden 256, batch 32, num_steps 35
    book, ours = _lockstep(trainer, net, steps=3)
    assert ours == pytest.approx(book, abs=1e-4)


@pytest.mark.parametrize("fields", [SMALL, {}], ids=["small", "d2l-size"])
def test_gradients_match_at_step_1(time_machine: Corpus, fields: dict) -> None:
    trainer, net = _pair(time_machine, **fields)
    X, Y = next(_batches(trainer))
    state = trainer.model.init_state(X.shape[0])
    fast = loss_and_grads(trainer.model, X, Y, state)
    loss, _ = textbook.loss_and_backward(net, X, Y, net.begin_state(X.shape[0]))
    assert float(fast.loss) == pytest.approx(loss.item(), abs=1e-5)
    assert set(fast.grads) == set(net.params)
    for name, param in net.params.items():
        torch.testing.assert_close(fast.grads[name], param.grad, atol=1e-5, rtol=0, msg=name)
    # The record's pre-clipping norm is d2l's global norm.
    book_norm = textbook.grad_clipping(net.params, theta=1.0)
    record, _ = one_step(trainer, X, Y, state)
    assert record.grad_norm == pytest.approx(book_norm, rel=1e-5)


def test_train_epoch_matches_trainer_run(small_corpus: Corpus) -> None:
    """The whole first epoch, d2l's train_epoch_ch8 against Trainer.run's step records."""
    trainer, net = _pair(small_corpus, max_tokens=1000, **SMALL)
    cfg = trainer.config
    records = []
    for record in trainer.run():
        if isinstance(record, EpochRecord):
            break
        assert isinstance(record, StepRecord)
        records.append(record)
    result = textbook.train_epoch(net, _batches(trainer), cfg.lr, cfg.clip_threshold)
    assert len(result.losses) == len(records) >= 20
    assert [r.loss for r in records] == pytest.approx(result.losses, abs=1e-4)
    assert [r.grad_norm for r in records] == pytest.approx(result.grad_norms, rel=1e-4)
    assert result.num_tokens == sum(r.tokens for r in records)


def _with_grads(scale: float) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    params = textbook.get_params(10, 8, "cpu", generator=gen)
    for p in params.values():
        p.grad = torch.randn(p.shape, generator=gen) * scale
    return params


def _global_norm(params: dict[str, torch.Tensor]) -> float:
    return float(torch.cat([p.grad.reshape(-1) for p in params.values()]).norm())


def test_grad_clipping_caps_the_global_norm() -> None:
    params = _with_grads(scale=1.0)
    before = _global_norm(params)
    reference = {n: p.grad.clone() for n, p in params.items()}
    assert before > 1.0
    assert textbook.grad_clipping(params, theta=1.0) == pytest.approx(before, rel=1e-6)
    assert _global_norm(params) == pytest.approx(1.0, rel=1e-6)
    # Every gradient keeps its direction: one common factor theta / norm.
    for name, p in params.items():
        torch.testing.assert_close(p.grad, reference[name] / before, msg=name)
    # torch's own clip_grad_norm_ agrees.
    ref = [torch.nn.Parameter(g.clone()) for g in reference.values()]
    for p, g in zip(ref, reference.values(), strict=True):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(ref, 1.0)
    for p, mine in zip(ref, params.values(), strict=True):
        torch.testing.assert_close(p.grad, mine.grad)


def test_grad_clipping_leaves_small_gradients_alone() -> None:
    params = _with_grads(scale=1e-3)
    reference = {n: p.grad.clone() for n, p in params.items()}
    norm = textbook.grad_clipping(params, theta=1.0)
    assert norm < 1.0
    for name, p in params.items():
        torch.testing.assert_close(p.grad, reference[name], rtol=0, atol=0, msg=name)


def test_sgd_steps_against_the_gradient_and_zeros_it() -> None:
    params = _with_grads(scale=1.0)
    before = {n: (p.detach().clone(), p.grad.clone()) for n, p in params.items()}
    textbook.sgd(params, lr=0.5)
    for name, p in params.items():
        w, g = before[name]
        torch.testing.assert_close(p.detach(), w - 0.5 * g, msg=name)
        assert not p.grad.any()


def test_gru_shapes_and_get_params_seeded() -> None:
    V, Hn, T, B = 7, 5, 4, 3
    a = textbook.get_params(V, Hn, "cpu", generator=torch.Generator().manual_seed(1))
    b = textbook.get_params(V, Hn, "cpu", generator=torch.Generator().manual_seed(1))
    assert list(a) == list(textbook.PARAM_NAMES)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
        assert a[name].requires_grad
    assert not a["b_z"].any() and not a["b_q"].any()
    inputs = torch.nn.functional.one_hot(torch.randint(V, (T, B)), V).float()
    logits, (H,) = textbook.gru(inputs, textbook.init_gru_state(B, Hn, "cpu"), a)
    assert logits.shape == (T * B, V) and H.shape == (B, Hn)


def test_load_from_rejects_the_cudnn_variant() -> None:
    from gru_core.model.cells import GRUScratch

    with pytest.raises(TypeError, match="d2l"):
        TextbookGRU(7, 5).load_from(GRUScratch(7, 5, variant="cudnn"))
