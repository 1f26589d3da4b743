r"""Loss and gradients of K configurations at once, by a hand-written backprop through time.

The maths of ``model/cells.py`` (tests hold it to autograd) over parameter tensors with a leading
configuration axis K: ``W_xz`` is (K, V, H), ``W_hz`` (K, H, H), ``b_z`` (K, H), and so on
(K = 1 for an ordinary run). All K members read the same minibatch; each has its own state.
Everything here is device work only: no host reads, no syncs, no branch on a value.

Layout: time-major with the members next, ``(T, K, B, n)``, so that step t of every member
is one contiguous (K, B, n) block; the recurrences are batched matmuls (``baddbmm``; plain
``addmm`` when K = 1).

What is fused, and why (a CPU step of d2l's GRU is bound by per-op overhead, not FLOPs):

- **Input projection once for all steps.** ``X_t W_x*`` is a row gather of the concatenated
  ``[W_xz | W_xr | W_xh]`` for all T steps and K members at once, biases added in one pass.
- **Fused gate matrices.** The two sigmoid gates share one ``H_{t-1} [W_hz | W_hr]`` matmul
  (the cudnn variant also folds in ``W_hh``): ~6 ops a time step instead of ~20.
- **The update as one op.** ``H_t = Z * H_{t-1} + (1 - Z) * H_tilde`` is
  ``lerp(H_tilde, H_{t-1}, Z)``. **The output layer once**, after the loop.
- **tanh as a sigmoid** (d2l variant). ``tanh(a) = 2 sigmoid(2a) - 1``: the matmul writes
  ``2a`` (its alpha and beta are 2, an exact scaling), then a sigmoid and one ``add`` (on a
  CPU, PyTorch's float32 tanh costs about three sigmoids). Within a few float32 ulps of
  ``tanh``; exact to rounding in float64.
- **Hand-written backward.** The local derivatives that do not depend on the recursion are
  computed for all t in one pass; the reverse loop only carries ``dL/dH_t``. Weight gradients
  are one matmul each after the loop. The running ``dL/dH_t`` is the gradient flow plotted.
- Buffers come from a ``Workspace`` that the caller owns and passes in, so a step maps no
  fresh memory for its intermediates (and a CUDA graph sees the same addresses every replay).

Backward (GRU, d2l variant), with ``dH`` = dL/dH_t (output path + next step)::

    dA_z = dH * Z(1-Z) * (H_{t-1} - H_tilde)         A_z = pre-activation of Z
    dA_h = dH * (1-Z) * (1 - H_tilde^2)               A_h = pre-activation of H_tilde
    dRH  = dA_h W_hh^T;   dA_r = dRH * R(1-R) * H_{t-1}
    dL/dH_{t-1} = dH * Z + dRH * R + [dA_z | dA_r] [W_hz | W_hr]^T

cudnn variant (G_h = H_{t-1} W_hh + b_hh)::

    dA_r = dA_h * G_h * R(1-R);   dG_h = dA_h * R
    dL/dH_{t-1} = dH * Z + [dA_z | dA_r | dG_h] [W_hz | W_hr | W_hh]^T

Half a GRU (d2l's exercise 4; the gates present are read from the parameter names) runs
the same loops with the missing gate's terms gone. Reset-only (Z = 0, H_t = H_tilde_t, so
the forward writes the candidate straight into H_t): ``dA_h = dH * (1 - H_tilde^2)``, no
``dA_z`` and no ``dH * Z`` term. Update-only (R = 1): ``dG_h = dA_h``, so the candidate's
``W_hh`` joins the fused recurrent matrix in both conventions (as in cudnn's)::

    dL/dH_{t-1} = dH * Z + [dA_z | dA_h] [W_hz | W_hh]^T

RNN: ``dA = dH * (1 - H_t^2)``, ``dL/dH_{t-1} = dA W_hh^T``.

The forward and the workspace are in ``step/forward.py``, the backward in
``step/backward.py`` (on flow steps it also carries one position's gradient through time,
``||d l_T/dH_t||`` and ``||d l_late/dH_t||``, as extra rows); this module joins them with the
output layer and the loss. The LSTM has no hand-written backward: ``step/lstm.py`` runs it
by autograd through the same interface.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gru_core.step.backward import backward, local_derivatives, with_probes
from gru_core.step.forward import Workspace, gru_forward, member_rows, rnn_forward, tmm


class Grads(NamedTuple):
    loss: Tensor  # (K,) mean cross-entropy over the B*T targets
    state: Tensor  # (K, B, H) final state (a view of a workspace buffer)
    grads: dict[str, Tensor]  # parameter name -> (K, ...) gradient
    gates: dict[str, Tensor]  # gate name -> (T, K, B, H)
    flow: Tensor | None  # (T, K) ||dL/dH_t||
    flow_last: Tensor | None  # (T, K) ||d l_T / dH_t||
    flow_late: Tensor | None  # (T, K) ||d l_late / dH_t||


def model_kind(model: str, gru_variant: str) -> str:
    """'gru-d2l', 'gru-cudnn', 'gru_reset_only-d2l', ..., 'rnn' or 'lstm': which code path a
    config takes (the GRU's halves take the GRU's, their gates read from the parameters)."""
    return f"{model}-{gru_variant}" if model.startswith("gru") else model


def _addbmm(bias: Tensor, A: Tensor, W: Tensor, out: Tensor) -> Tensor:
    """out = bias + A @ W per member: (K, B, n) + (K, B, m) @ (K, m, n); addmm when K = 1."""
    if A.shape[0] == 1:
        torch.addmm(bias[0], A[0], W[0], out=out[0])
    else:
        torch.baddbmm(bias, A, W, out=out)
    return out


def cross_entropy_and_grad(
    logits: Tensor, targets: Tensor, ws: Workspace | None = None
) -> tuple[Tensor, Tensor]:
    """Per-member mean cross-entropy of (K, N, V) logits against (N,) targets, and its
    gradient wrt the logits, (softmax - onehot) / N (in a workspace buffer when given)."""
    K, N, _ = logits.shape
    log_p = torch.empty_like(logits) if ws is None else ws.get("log_p", logits.shape, logits)
    torch.log_softmax(logits, dim=2, out=log_p)
    index = targets[None, :, None].expand(K, N, 1)
    loss = -log_p.gather(2, index).mean(dim=(1, 2))
    dlogits = log_p.exp_()
    dlogits.scatter_add_(2, index, torch.full_like(dlogits[..., :1], -1.0))
    return loss, dlogits.mul_(1.0 / N)


def loss_and_grads(
    kind: str,
    P: dict[str, Tensor],
    X: Tensor,
    Y: Tensor,
    H0: Tensor,
    ws: Workspace,
    want_flow: bool = False,
    probes: bool = True,
) -> Grads:
    """Mean cross-entropy of predicting Y (B, T) from X (B, T) per member, and its gradients.
    ``kind`` is 'gru-d2l', 'gru-cudnn' or 'rnn' (``lstm_loss_and_grads`` for the LSTM).
    ``want_flow``: also ||dL/dH_t||, with ``probes`` the one-position flows (step/backward.py)."""
    with torch.no_grad():
        steps = X.T.contiguous()  # (T, B)
        targets = Y.T.reshape(-1)  # time-major, like d2l's Y.T.reshape(-1)
        gru = kind.startswith("gru")
        cache = (gru_forward if gru else rnn_forward)(P, steps, H0, ws)
        H_out = cache.Hs[1:]  # (T, K, B, H): H_1..H_T
        T, K, B, Hn = H_out.shape
        V = P["b_q"].shape[1]
        # Member-major rows (K, T*B, H) of H_0..H_T: H_1..H_T and H_0..H_{T-1} are views.
        Hs_rows = member_rows(cache.Hs, ws, "Hs_rows").view(K, T + 1, B, Hn)
        H_rows, Hp_rows = (Hs_rows[:, s : s + T].reshape(K, T * B, Hn) for s in (1, 0))
        logits = _addbmm(P["b_q"][:, None], H_rows, P["W_hq"], ws.get("O", (K, T * B, V), H0))
        loss, dlogits = cross_entropy_and_grad(logits, targets, ws)  # O = H W_hq + b_q
        grads = {"W_hq": tmm(H_rows, dlogits), "b_q": dlogits.sum(1)}
        dH = ws.get("dH", (T, K, B, Hn), H0)  # dL/dH_t from the output layer, then in total
        W_hq_T = P["W_hq"].transpose(1, 2)
        if K == 1:
            torch.mm(dlogits[0], W_hq_T[0], out=dH.view(T * B, Hn))
        else:
            dH_rows = torch.bmm(dlogits, W_hq_T, out=ws.get("dH_rows", (K, T * B, Hn), H0))
            dH.copy_(dH_rows.view(K, T, B, Hn).transpose(0, 1))
        # The running gradient, (T, K, Q, B, H): Q = 1, or 3 on flow steps (the two
        # one-position probes of step/backward.py ride along as extra rows of every matmul).
        D = with_probes(dH, ws) if want_flow and probes else dH[:, :, None]
        local = local_derivatives(cache, ws)
        grads |= backward(P, steps, cache, local, D, Hp_rows, ws)
        named = {"Z": cache.Z, "R": cache.R, "H_tilde": cache.H_tilde}
        gates = {k: v for k, v in named.items() if v is not None}  # none for the RNN
        flow = flow_last = flow_late = None
        if want_flow:  # after the loop D[t] holds the total dL/dH_t (and the probes')
            norms = torch.linalg.vector_norm(D.flatten(3), dim=3)  # (T, K, Q)
            flow = norms[..., 0]
            if probes:
                flow_last, flow_late = norms[..., 1], norms[..., 2]
        return Grads(loss, H_out[-1], grads, gates, flow, flow_last, flow_late)
