"""The hand-written BPTT of fused.py against autograd on model.forward (the reference)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from gru_core.model.cells import GRUScratch, RecurrentLM, RNNScratch, State
from gru_core.step import fused

from helpers import KINDS, reference_model

V, HN, T, B = 9, 6, 5, 3


def make_case(
    kind: str, dtype: torch.dtype = torch.float64, seed: int = 0
) -> tuple[RecurrentLM, Tensor, Tensor, State]:
    """A model with non-trivial weights and random biases, inputs, targets, non-zero state."""
    model = reference_model(kind, V, HN, 0.5, seed, dtype)
    X = torch.randint(0, V, (B, T))
    Y = torch.randint(0, V, (B, T))
    state = tuple(torch.randn(B, HN, dtype=dtype) * 0.5 for _ in range(model.state_size))
    return model, X, Y, state


def assert_same(a: fused.LossAndGrads, b: fused.LossAndGrads, atol: float, rtol: float) -> None:
    tol = {"atol": atol, "rtol": rtol}
    torch.testing.assert_close(a.loss, b.loss, **tol)
    assert set(a.grads) == set(b.grads)
    for name in a.grads:
        torch.testing.assert_close(a.grads[name], b.grads[name], **tol, msg=name)
    assert len(a.state) == len(b.state)
    for s, r in zip(a.state, b.state, strict=True):
        torch.testing.assert_close(s, r, **tol)
    assert a.grad_flow is not None and b.grad_flow is not None
    torch.testing.assert_close(a.grad_flow, b.grad_flow, **tol)
    assert set(a.gates) == set(b.gates)
    for name in a.gates:
        torch.testing.assert_close(a.gates[name], b.gates[name], **tol, msg=name)


def test_fused_path_is_used_for_gru_and_rnn_only() -> None:
    assert fused.has_fused_path(make_case("gru-d2l")[0])
    assert fused.has_fused_path(make_case("gru-cudnn")[0])
    assert fused.has_fused_path(make_case("rnn")[0])
    assert not fused.has_fused_path(make_case("lstm")[0])  # autograd fallback


@pytest.mark.parametrize("kind", KINDS)
def test_fused_matches_autograd_float64(kind: str) -> None:
    model, X, Y, state = make_case(kind)
    state_before = tuple(s.clone() for s in state)
    got = fused.loss_and_grads(model, X, Y, state, want_flow=True)
    ref = fused.autograd_loss_and_grads(model, X, Y, state, want_flow=True)
    assert_same(got, ref, atol=1e-10, rtol=1e-10)
    assert set(got.grads) == {n for n, _ in model.named_parameters()}
    assert got.grad_flow is not None and got.grad_flow.shape == (T,)
    assert got.loss.ndim == 0 and got.loss.dtype == torch.float64
    # The caller's state is an input, not a buffer: it must come back untouched.
    for s, s0 in zip(state, state_before, strict=True):
        assert torch.equal(s, s0)


@pytest.mark.parametrize("kind", KINDS)
def test_fused_matches_autograd_float32(kind: str) -> None:
    model, X, Y, state = make_case(kind, dtype=torch.float32, seed=1)
    got = fused.loss_and_grads(model, X, Y, state, want_flow=True)
    ref = fused.autograd_loss_and_grads(model, X, Y, state, want_flow=True)
    assert got.loss.dtype == torch.float32
    assert_same(got, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_grad_flow_only_when_asked(kind: str) -> None:
    model, X, Y, state = make_case(kind)
    got = fused.loss_and_grads(model, X, Y, state, want_flow=False)
    ref = fused.autograd_loss_and_grads(model, X, Y, state, want_flow=False)
    assert got.grad_flow is None and ref.grad_flow is None
    with_flow = fused.loss_and_grads(model, X, Y, state, want_flow=True)
    for name in got.grads:
        torch.testing.assert_close(got.grads[name], with_flow.grads[name], rtol=0, atol=1e-12)


def _ce_sum(logits: Tensor, targets: Tensor) -> Tensor:
    """Summed cross-entropy of (T', B, V) logits against (B, T') targets, time-major."""
    return F.cross_entropy(logits.reshape(-1, V), targets.T.reshape(-1), reduction="sum")


def independent_flow(model: RecurrentLM, X: Tensor, Y: Tensor, state: State) -> Tensor:
    """||dL/dH_t|| for each t without probes: make H_t a leaf and rebuild the loss from it.

    L = (1/(T*B)) * [CE(steps <= t) + CE(steps > t)]; only the output at t and the
    continuation from (H_t, ...) depend on H_t.
    """
    norms = []
    with torch.no_grad():
        prefix_states = [model(X[:, : t + 1], state).state for t in range(T)]
    for t in range(T):
        H_t = prefix_states[t][0].clone().requires_grad_(True)
        rest = prefix_states[t][1:]
        part = _ce_sum((H_t @ model.W_hq + model.b_q)[None], Y[:, t : t + 1])
        if t + 1 < T:
            cont = model(X[:, t + 1 :], (H_t, *rest))
            part = part + _ce_sum(cont.logits, Y[:, t + 1 :])
        (g,) = torch.autograd.grad(part / (T * B), H_t)
        norms.append(g.norm())
    return torch.stack(norms)


@pytest.mark.parametrize("kind", KINDS)
def test_grad_flow_is_norm_of_dL_dH_t(kind: str) -> None:
    model, X, Y, state = make_case(kind, seed=2)
    expected = independent_flow(model, X, Y, state)
    got = fused.loss_and_grads(model, X, Y, state, want_flow=True)
    assert got.grad_flow is not None
    torch.testing.assert_close(got.grad_flow, expected.detach(), rtol=1e-10, atol=1e-12)

    # The output layer's share alone, dL/dO_t W_hq^T, for every t.
    with torch.no_grad():
        dO = torch.softmax(model(X, state).logits, dim=2)  # (T, B, V)
        dO[torch.arange(T)[:, None], torch.arange(B)[None, :], Y.T] -= 1.0
        own = ((dO / (T * B)) @ model.W_hq.T).flatten(1).norm(dim=1)  # (T,)
    # The last step: nothing flows back from t+1, so the flow is the output share alone.
    torch.testing.assert_close(got.grad_flow[-1], own[-1], rtol=1e-10, atol=1e-12)
    # Earlier steps also receive gradient through time, so they differ from it.
    assert ((got.grad_flow[:-1] - own[:-1]).abs() > 1e-6).all()


@pytest.mark.parametrize("kind", KINDS)
def test_forward_logits_matches_model(kind: str) -> None:
    model, X, _, state = make_case(kind, seed=3)
    logits, final = fused.forward_logits(model, X, state)
    with torch.no_grad():
        ref = model(X, state)
    assert logits.shape == (T, B, V)
    torch.testing.assert_close(logits, ref.logits, rtol=1e-12, atol=1e-12)
    assert len(final) == len(ref.state)
    for s, r in zip(final, ref.state, strict=True):
        torch.testing.assert_close(s, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_loss_is_d2l_mean_cross_entropy(kind: str) -> None:
    """Targets are matched time-major (d2l's Y.T.reshape(-1)), not batch-major."""
    model, X, Y, state = make_case(kind, seed=4)
    got = fused.loss_and_grads(model, X, Y, state)
    with torch.no_grad():
        logits = model(X, state).logits  # (T, B, V)
    expected = F.cross_entropy(logits.reshape(T * B, V), Y.T.reshape(-1))
    torch.testing.assert_close(got.loss, expected, rtol=1e-12, atol=1e-12)
    wrong = F.cross_entropy(logits.reshape(T * B, V), Y.reshape(-1))
    assert abs(got.loss.item() - wrong.item()) > 1e-6


@pytest.mark.parametrize(
    ("vocab", "hidden", "steps", "batch"), [(3, 1, 1, 1), (5, 2, 1, 3), (2, 4, 6, 1)]
)
@pytest.mark.parametrize("kind", ["gru-d2l", "gru-cudnn", "rnn"])
def test_fused_matches_autograd_edge_shapes(
    kind: str, vocab: int, hidden: int, steps: int, batch: int
) -> None:
    """One step, one sequence, one unit, and a 2-token vocabulary (every row gathered often)."""
    torch.manual_seed(5)
    model: RecurrentLM
    if kind == "rnn":
        model = RNNScratch(vocab, hidden, 0.5)
    else:
        model = GRUScratch(vocab, hidden, 0.5, variant=kind.split("-")[1])
    model = model.double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("b_"):
                p.normal_(0.0, 0.5)
    X = torch.randint(0, vocab, (batch, steps))
    Y = torch.randint(0, vocab, (batch, steps))
    state = (torch.randn(batch, hidden, dtype=torch.float64),)
    got = fused.loss_and_grads(model, X, Y, state, want_flow=True)
    ref = fused.autograd_loss_and_grads(model, X, Y, state, want_flow=True)
    assert_same(got, ref, atol=1e-12, rtol=1e-10)
