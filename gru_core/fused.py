r"""The fast training path: loss and gradients by a hand-written backprop through time.

Same maths as ``model.py`` (tests hold it to autograd on the same parameters), fewer and
bigger operations, and the gradient flow through time ``||dL/dH_t||`` for free.

What is fused, and why (a CPU step of d2l's GRU is bound by per-op overhead, not FLOPs):

- **Input projection once for all steps.** ``X_t W_x*`` is a row gather of the concatenated
  ``[W_xz | W_xr | W_xh]`` for all T steps at once, with the input-side biases added in the
  same pass.
- **Fused gate matrices.** The GRU's two sigmoid gates share one ``H_{t-1} [W_hz | W_hr]``
  matmul (the cudnn variant also folds in ``W_hh``), so a step is ~6 ops instead of ~20.
- **The update as one op.** ``H_t = Z * H_{t-1} + (1 - Z) * H_tilde`` is
  ``lerp(H_tilde, H_{t-1}, Z)``.
- **Output layer once**, after the loop, on all (T*B) states.
- **Hand-written backward.** Every local derivative that does not depend on the recursion
  (``Z(1-Z)(H_{t-1} - H_tilde)``, ``(1-Z)(1-H_tilde^2)``, ...) is computed for all t in one
  vectorised pass; the reverse loop then only carries ``dL/dH_t`` (~7 ops a step). Weight
  gradients are one matmul each over all T*B rows after the loop. The reverse loop's running
  ``dL/dH_t`` is exactly the gradient flow the dashboard plots.
- No autograd graph, no one-hot matrices; buffers are written with ``out=`` and kept per
  model between calls (``_scratch``), so a step maps no fresh memory for its intermediates.

The LSTM has no hand-written backward: ``loss_and_grads`` falls back to autograd for it and
gets ``dL/dH_t`` by adding a zero probe to each H_t.

Backward derivation (GRU, d2l variant), with ``dH`` = dL/dH_t (output path + next step)::

    dA_z = dH * Z(1-Z) * (H_{t-1} - H_tilde)         A_z = pre-activation of Z
    dA_h = dH * (1-Z) * (1 - H_tilde^2)               A_h = pre-activation of H_tilde
    dRH  = dA_h W_hh^T;   dA_r = dRH * R(1-R) * H_{t-1}
    dL/dH_{t-1} = dH * Z + dRH * R + [dA_z | dA_r] [W_hz | W_hr]^T

cudnn variant (G_h = H_{t-1} W_hh + b_hh)::

    dA_r = dA_h * G_h * R(1-R);   dG_h = dA_h * R
    dL/dH_{t-1} = dH * Z + [dA_z | dA_r | dG_h] [W_hz | W_hr | W_hh]^T
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .model import GRUScratch, RecurrentLM, RNNScratch, State


class LossAndGrads(NamedTuple):
    loss: Tensor  # scalar: mean cross-entropy over the B*T targets
    state: State  # final state, detached
    grads: dict[str, Tensor]  # parameter name -> dL/dparam
    gates: dict[str, Tensor]  # gate name -> (T, B, H); views of reused buffers (see _scratch)
    grad_flow: Tensor | None  # (T,) ||dL/dH_t||, when asked


Workspace = dict[tuple, Tensor]  # (name, shape, dtype, device) -> tensor kept between calls
_WORKSPACES: weakref.WeakKeyDictionary[RecurrentLM, Workspace] = weakref.WeakKeyDictionary()


def _scratch(model: RecurrentLM, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """A buffer for ``model`` kept between calls, so a step does not map fresh memory for its
    big intermediates: each freshly mapped page costs a page fault when first written, which
    was ~25% of a CPU step at d2l's size. The gates returned by ``loss_and_grads`` are views
    of these buffers: read them before the next call on the same model."""
    ws = _WORKSPACES.setdefault(model, {})
    key = (name, tuple(shape), like.dtype, like.device)  # training and validation shapes differ
    buf = ws.get(key)
    if buf is None:
        buf = ws[key] = like.new_empty(shape)
    return buf


def has_fused_path(model: RecurrentLM) -> bool:
    return isinstance(model, GRUScratch | RNNScratch)


def loss_and_grads(
    model: RecurrentLM, X: Tensor, Y: Tensor, state: State, want_flow: bool = False
) -> LossAndGrads:
    """Mean cross-entropy of predicting Y (B, T) from X (B, T) and its gradients."""
    if not has_fused_path(model):
        return autograd_loss_and_grads(model, X, Y, state, want_flow)
    with torch.no_grad():
        steps = X.T.contiguous()  # (T, B)
        targets = Y.T.reshape(-1)  # time-major, like d2l's Y.T.reshape(-1)
        if isinstance(model, GRUScratch):
            cache = _gru_forward(model, steps, state[0])
        else:
            cache = _rnn_forward(model, steps, state[0])
        H_out = cache["Hs"][1:]  # (T, B, H): H_1..H_T
        T, B, Hn = H_out.shape
        H_flat = H_out.reshape(T * B, Hn)
        logits = torch.addmm(model.b_q, H_flat, model.W_hq)  # O = H W_hq + b_q
        loss, dlogits = _cross_entropy_and_grad(logits, targets)
        grads = {"W_hq": H_flat.T @ dlogits, "b_q": dlogits.sum(0)}
        dH = torch.mm(dlogits, model.W_hq.T, out=_scratch(model, "dH", (T * B, Hn), H_flat))
        dH = dH.view(T, B, Hn)  # dL/dH_t from the output layer
        if isinstance(model, GRUScratch):
            grads |= _gru_backward(model, steps, cache, dH)
            gates = {"Z": cache["Z"], "R": cache["R"], "H_tilde": cache["Ht"]}
        else:
            grads |= _rnn_backward(model, steps, cache, dH)
            gates = {}  # a plain RNN has no gates
        # After the backward loop dH[t] holds the total dL/dH_t.
        flow = dH.flatten(1).norm(dim=1) if want_flow else None
        return LossAndGrads(loss, (H_out[-1].clone(),), grads, gates, flow)


def forward_logits(model: RecurrentLM, X: Tensor, state: State) -> tuple[Tensor, State]:
    """Logits (T, B, V) and final state without gradients, on the fast path when there is one."""
    with torch.no_grad():
        if not has_fused_path(model):
            out = model(X, state)
            return out.logits, out.state
        steps = X.T.contiguous()
        fwd = _gru_forward if isinstance(model, GRUScratch) else _rnn_forward
        H_out = fwd(model, steps, state[0])["Hs"][1:]
        return H_out @ model.W_hq + model.b_q, (H_out[-1].clone(),)


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


def _cross_entropy_and_grad(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy and its gradient wrt the logits: (softmax - onehot) / N."""
    N = logits.shape[0]
    log_p = torch.log_softmax(logits, dim=1)
    loss = -log_p.gather(1, targets[:, None]).mean()
    dlogits = log_p.exp_()
    dlogits.scatter_add_(1, targets[:, None], torch.full_like(dlogits[:, :1], -1.0))
    return loss, dlogits.mul_(1.0 / N)


def _gather_inputs(
    model: RecurrentLM, weights: list[Tensor], biases: list[Tensor], steps: Tensor
) -> Tensor:
    """X_t [W_x1 | W_x2 | ...] + [b_1 | b_2 | ...] for all t as one row gather: (T, B, k*H)."""
    W_x = torch.cat(weights, dim=1)
    T, B = steps.shape
    out = _scratch(model, "XP", (T * B, W_x.shape[1]), W_x)
    torch.index_select(W_x, 0, steps.reshape(-1), out=out)
    return out.view(T, B, -1).add_(torch.cat(biases))


def _gru_forward(model: GRUScratch, steps: Tensor, H0: Tensor) -> dict[str, Tensor]:
    T, B = steps.shape
    Hn = model.hidden_size
    cudnn = model.variant == "cudnn"
    b_h = model.b_xh if cudnn else model.b_h
    XP = _gather_inputs(
        model, [model.W_xz, model.W_xr, model.W_xh], [model.b_z, model.b_r, b_h], steps
    )

    def new(name: str, *shape: int) -> Tensor:
        return _scratch(model, name, shape, H0)

    Hs, ZR, Ht = new("Hs", T + 1, B, Hn), new("ZR", T, B, 2 * Hn), new("Ht", T, B, Hn)
    Hs[0] = H0
    if cudnn:
        W_h = torch.cat([model.W_hz, model.W_hr, model.W_hh], dim=1)  # (H, 3H)
        b_hcat = torch.cat([torch.zeros_like(model.b_hh).repeat(2), model.b_hh])
        G = new("G", T, B, 3 * Hn)  # H_{t-1} [W_hz | W_hr | W_hh] + [0 | 0 | b_hh]
        for t in range(T):
            H, g, zr = Hs[t], G[t], ZR[t]
            torch.addmm(b_hcat, H, W_h, out=g)
            torch.add(XP[t, :, : 2 * Hn], g[:, : 2 * Hn], out=zr).sigmoid_()  # [Z | R]
            # H_tilde = tanh(X W_xh + b_xh + R * (H W_hh + b_hh))
            torch.addcmul(XP[t, :, 2 * Hn :], zr[:, Hn:], g[:, 2 * Hn :], out=Ht[t]).tanh_()
            torch.lerp(Ht[t], H, zr[:, :Hn], out=Hs[t + 1])  # Z * H + (1 - Z) * H_tilde
        extra = {"G_h": G[..., 2 * Hn :], "W_h": W_h}
    else:
        W_hzr = torch.cat([model.W_hz, model.W_hr], dim=1)  # (H, 2H)
        RH = new("RH", T, B, Hn)  # R * H_{t-1}, kept for dW_hh
        for t in range(T):
            H, zr = Hs[t], ZR[t]
            torch.addmm(XP[t, :, : 2 * Hn], H, W_hzr, out=zr).sigmoid_()  # [Z | R]
            torch.mul(zr[:, Hn:], H, out=RH[t])
            # H_tilde = tanh(X W_xh + (R * H) W_hh + b_h)
            torch.addmm(XP[t, :, 2 * Hn :], RH[t], model.W_hh, out=Ht[t]).tanh_()
            torch.lerp(Ht[t], H, zr[:, :Hn], out=Hs[t + 1])  # Z * H + (1 - Z) * H_tilde
        extra = {"RH": RH, "W_hzr": W_hzr}
    return {"Hs": Hs, "Z": ZR[..., :Hn], "R": ZR[..., Hn:], "Ht": Ht, **extra}


def _gru_backward(
    model: GRUScratch, steps: Tensor, c: dict[str, Tensor], dH: Tensor
) -> dict[str, Tensor]:
    """Reverse loop; on return dH[t] holds the total dL/dH_t. Returns parameter gradients."""
    T, B, Hn = dH.shape
    Z, R, Ht, H_prev = c["Z"], c["R"], c["Ht"], c["Hs"][:-1]
    cudnn = model.variant == "cudnn"

    def new(name: str, *shape: int) -> Tensor:
        return _scratch(model, name, shape, dH)

    # Local derivatives that do not depend on the recursion, for all t at once.
    gZ = torch.sub(H_prev, Ht, out=new("gZ", T, B, Hn)).mul_(Z)
    gZ.addcmul_(gZ, Z, value=-1)  # dA_z = dH * gZ, gZ = Z(1-Z)(H_{t-1} - H_tilde)
    gH = torch.mul(Ht, Ht, out=new("gH", T, B, Hn)).neg_().add_(1)
    gH.addcmul_(gH, Z, value=-1)  # dA_h = dH * gH, gH = (1-Z)(1 - H_tilde^2)
    gR = torch.mul(R, c["G_h"] if cudnn else H_prev, out=new("gR", T, B, Hn))
    gR.addcmul_(gR, R, value=-1)  # gR = R(1-R) * (G_h or H_{t-1})
    dA = new("dA", T, B, 3 * Hn)  # [dA_z | dA_r | dG_h (cudnn) or dA_h (d2l)]
    dAh = new("dAh", T, B, Hn) if cudnn else dA[..., 2 * Hn :]
    # Transposed weights made contiguous once: a strided W.T in every step's matmul is slower.
    W_hh_T = model.W_hh.T.contiguous()
    W_rec_T = (c["W_h"] if cudnn else c["W_hzr"]).T.contiguous()
    dH_next = torch.zeros_like(dH[0])
    for t in range(T - 1, -1, -1):
        d = dH[t].add_(dH_next)  # dL/dH_t: output path + from step t+1
        torch.mul(d, gZ[t], out=dA[t, :, :Hn])
        torch.mul(d, gH[t], out=dAh[t])
        if cudnn:
            torch.mul(dAh[t], gR[t], out=dA[t, :, Hn : 2 * Hn])
            torch.mul(dAh[t], R[t], out=dA[t, :, 2 * Hn :])  # dG_h = dA_h * R
            dH_next = (d * Z[t]).addmm_(dA[t], W_rec_T)
        else:
            dRH = dAh[t] @ W_hh_T
            torch.mul(dRH, gR[t], out=dA[t, :, Hn : 2 * Hn])
            dH_next = (d * Z[t]).addcmul_(dRH, R[t]).addmm_(dA[t, :, : 2 * Hn], W_rec_T)
    rows = T * B
    dA2, Hp = dA.view(rows, 3 * Hn), H_prev.reshape(rows, Hn)
    dAh2 = dAh.reshape(rows, Hn)
    dX = torch.cat([dA2[:, : 2 * Hn], dAh2], dim=1) if cudnn else dA2
    gW_x = torch.zeros(model.vocab_size, 3 * Hn, dtype=dH.dtype, device=dH.device)
    gW_x.index_add_(0, steps.reshape(-1), dX)  # scatter back to the gathered rows
    grads = {
        "W_xz": gW_x[:, :Hn].contiguous(),
        "W_xr": gW_x[:, Hn : 2 * Hn].contiguous(),
        "W_xh": gW_x[:, 2 * Hn :].contiguous(),
        "W_hz": Hp.T @ dA2[:, :Hn],
        "W_hr": Hp.T @ dA2[:, Hn : 2 * Hn],
        "b_z": dA2[:, :Hn].sum(0),
        "b_r": dA2[:, Hn : 2 * Hn].sum(0),
    }
    if cudnn:
        grads |= {
            "W_hh": Hp.T @ dA2[:, 2 * Hn :],
            "b_hh": dA2[:, 2 * Hn :].sum(0),
            "b_xh": dAh2.sum(0),
        }
    else:
        grads |= {"W_hh": c["RH"].reshape(rows, Hn).T @ dAh2, "b_h": dAh2.sum(0)}
    return grads


def _rnn_forward(model: RNNScratch, steps: Tensor, H0: Tensor) -> dict[str, Tensor]:
    T, B = steps.shape
    XP = _gather_inputs(model, [model.W_xh], [model.b_h], steps)
    Hs = _scratch(model, "Hs", (T + 1, B, model.hidden_size), H0)
    Hs[0] = H0
    for t in range(T):
        # H_t = tanh(X_t W_xh + b_h + H_{t-1} W_hh)
        torch.addmm(XP[t], Hs[t], model.W_hh, out=Hs[t + 1]).tanh_()
    return {"Hs": Hs}


def _rnn_backward(
    model: RNNScratch, steps: Tensor, c: dict[str, Tensor], dH: Tensor
) -> dict[str, Tensor]:
    T, B, Hn = dH.shape
    gA = 1 - c["Hs"][1:] ** 2  # dA = dH * (1 - H_t^2)
    dA = _scratch(model, "dA", tuple(dH.shape), dH)
    W_hh_T = model.W_hh.T.contiguous()
    dH_next = torch.zeros_like(dH[0])
    for t in range(T - 1, -1, -1):
        d = dH[t].add_(dH_next)
        torch.mul(d, gA[t], out=dA[t])
        dH_next = dA[t] @ W_hh_T
    rows = T * B
    dA2, Hp = dA.view(rows, Hn), c["Hs"][:-1].reshape(rows, Hn)
    gW_xh = torch.zeros(model.vocab_size, Hn, dtype=dH.dtype, device=dH.device)
    gW_xh.index_add_(0, steps.reshape(-1), dA2)
    return {"W_xh": gW_xh, "W_hh": Hp.T @ dA2, "b_h": dA2.sum(0)}
