r"""The fast path for one model: loss, gradients and logits of a ``RecurrentLM``.

A K = 1 view of ``step/bptt.py`` (where the fused forward, the hand-written BPTT and its
derivation live) for callers that hold a model rather than stacked parameters: tests,
benchmarks, validation and the CLI. The model's parameters are used in place (as (1, ...)
views); buffers come from a ``Workspace`` the caller may keep between calls (a fresh one per
call otherwise). The LSTM has no hand-written backward and goes through autograd.

``autograd_loss_and_grads`` is the reference: ``model.forward`` under autograd, with
``dL/dH_t`` from a zero probe added to every H_t.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from gru_core.model.cells import GRUScratch, RecurrentLM, RNNScratch, State
from gru_core.perplexity import validation_streams
from gru_core.step import bptt as step_bptt
from gru_core.step.forward import Workspace, gru_forward, rnn_forward


class LossAndGrads(NamedTuple):
    loss: Tensor  # scalar: mean cross-entropy over the B*T targets
    state: State  # final state, detached
    grads: dict[str, Tensor]  # parameter name -> dL/dparam
    gates: dict[str, Tensor]  # gate name -> (T, B, H); views of workspace buffers
    grad_flow: Tensor | None  # (T,) ||dL/dH_t||, when asked
    grad_flow_last: Tensor | None = None  # (T,) ||d l_T / dH_t|| (step/bptt.py), when asked
    grad_flow_late: Tensor | None = None  # (T,) ||d l_late / dH_t||, when asked


def has_fused_path(model: RecurrentLM) -> bool:
    return isinstance(model, GRUScratch | RNNScratch)


def _kind(model: RecurrentLM) -> str:
    return f"gru-{model.variant}" if isinstance(model, GRUScratch) else "rnn"


def _stacked(model: RecurrentLM) -> dict[str, Tensor]:
    """The model's parameters as (1, ...) views: K = 1 for step/bptt.py."""
    return {n: p.detach()[None] for n, p in model.named_parameters()}


def loss_and_grads(
    model: RecurrentLM,
    X: Tensor,
    Y: Tensor,
    state: State,
    want_flow: bool = False,
    workspace: Workspace | None = None,
) -> LossAndGrads:
    """Mean cross-entropy of predicting Y (B, T) from X (B, T) and its gradients."""
    if not has_fused_path(model):
        return autograd_loss_and_grads(model, X, Y, state, want_flow)
    ws = workspace or Workspace()
    g = step_bptt.loss_and_grads(_kind(model), _stacked(model), X, Y, state[0][None], ws, want_flow)
    flows = [f[:, 0] if f is not None else None for f in (g.flow, g.flow_last, g.flow_late)]
    return LossAndGrads(
        g.loss[0],
        (g.state[0].clone(),),
        {n: v[0] for n, v in g.grads.items()},
        {n: v[:, 0] for n, v in g.gates.items()},
        *flows,
    )


def forward_logits(
    model: RecurrentLM, X: Tensor, state: State, workspace: Workspace | None = None
) -> tuple[Tensor, State]:
    """Logits (T, B, V) and final state without gradients, on the fast path when there is one."""
    with torch.no_grad():
        if not has_fused_path(model):
            out = model(X, state)
            return out.logits, out.state
        ws = workspace or Workspace()
        forward = gru_forward if isinstance(model, GRUScratch) else rnn_forward
        H_out = forward(_stacked(model), X.T.contiguous(), state[0][None], ws).Hs[1:, 0]
        return H_out @ model.W_hq + model.b_q, (H_out[-1].clone(),)


@torch.no_grad()
def validation_loss(
    model: RecurrentLM,
    tokens: Tensor,
    num_steps: int,
    workspace: Workspace | None = None,
    acc: torch.dtype = torch.float64,
) -> Tensor | None:
    """Token-mean cross-entropy on held-out ``tokens``, a 0-d device tensor of dtype ``acc``
    (its perplexity is ``perplexity.perplexity`` of it, read by the caller); None when there
    are no (input, target) pairs.

    The slice is read in ``perplexity.validation_layout``: B parallel streams (as many as fit
    num_steps each, at most 256) in windows of num_steps with the state carried, so 5,000
    tokens take one wide forward pass instead of several d2l-sized minibatches. No host read."""
    if len(tokens) < 2:
        return None
    T = num_steps
    X, Y = validation_streams(tokens, T)
    B, L = X.shape
    state = model.init_state(B)
    total = torch.zeros((), dtype=acc, device=tokens.device)
    for start in range(0, L, T):
        x, y = X[:, start : start + T], Y[:, start : start + T]
        logits, state = forward_logits(model, x, state, workspace)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.T.reshape(-1))
        total += loss.to(acc) * y.numel()
    return total / (B * L)


def autograd_loss_and_grads(
    model: RecurrentLM, X: Tensor, Y: Tensor, state: State, want_flow: bool = False
) -> LossAndGrads:
    """The reference: model.forward under autograd. ``dL/dH_t`` comes from a zero probe
    added to every H_t, whose gradient is exactly the gradient reaching H_t."""
    T, B = X.shape[1], X.shape[0]
    p = model.W_hq
    probe = torch.zeros(T, B, model.hidden_size, device=p.device, dtype=p.dtype)
    probe.requires_grad_(want_flow)
    with torch.enable_grad():
        out = model(X, state, trace=True, h_probe=probe if want_flow else None)
        loss = F.cross_entropy(out.logits.reshape(T * B, -1), Y.T.reshape(-1))
        names, params = zip(*model.named_parameters(), strict=True)
        inputs = list(params) + ([probe] if want_flow else [])
        all_grads = torch.autograd.grad(loss, inputs)
    grads = dict(zip(names, all_grads[: len(names)], strict=True))
    flow = all_grads[-1].flatten(1).norm(dim=1) if want_flow else None
    gates = {k: v.detach() for k, v in (out.gates or {}).items()}
    state_out = tuple(s.detach() for s in out.state)
    return LossAndGrads(loss.detach(), state_out, grads, gates, flow)
