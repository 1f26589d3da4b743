r"""The fused forward of K configurations at once, and the buffers a step works in.

``gru_forward`` and ``rnn_forward`` run the equations of ``model/cells.py`` over parameter
tensors with a leading configuration axis K (``W_xz`` (K, V, H), ...), time-major with the
members next, ``(T, K, B, n)``; what is fused and why is in ``step/bptt.py``'s docstring. They
return a ``ForwardCache``: what ``step/backward.py`` needs. Buffers come from a ``Workspace``
the caller owns. Device work only: no host reads, no syncs, no branch on a value.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Workspace:
    """Buffers kept between calls, keyed by (name, shape, dtype, device): a step does not map
    fresh memory for its intermediates (each fresh page costs a fault on first write, ~25% of
    a CPU step at d2l's size). Owned by whoever runs the steps; gates returned by a step are
    views of these buffers, valid until the next call with the same workspace."""

    def __init__(self) -> None:
        self._buffers: dict[tuple, Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        key = (name, tuple(shape), like.dtype, like.device)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = like.new_empty(shape)
        return buf


class ForwardCache(NamedTuple):
    """What the forward keeps for the backward. (T, K, B, .) tensors; None where the model
    has no such quantity (the RNN has no gates; a half GRU lacks Z or R)."""

    Hs: Tensor  # (T+1, K, B, H): H_0..H_T
    Z: Tensor | None  # update gate (None: Z = 0, the reset-only GRU)
    R: Tensor | None  # reset gate (None: R = 1, the update-only GRU)
    H_tilde: Tensor | None  # candidate state (None: the RNN)
    G_h: Tensor | None  # cudnn with R: H_{t-1} W_hh + b_hh
    RH: Tensor | None  # d2l with R: R * H_{t-1}, for dW_hh
    W_rec: Tensor | None  # (K, H, nH): the recurrent matrices side by side (gates, then
    # W_hh where it is fused: the cudnn variant, or no R); ``rec_h`` says which


def rec_h(c: ForwardCache) -> bool:
    """Whether ``c.W_rec`` ends with W_hh (one fused matmul through the candidate too): the
    cudnn variant, and every GRU without a reset gate; else the d2l GRU with R."""
    return c.RH is None


def per_step(x: Tensor) -> tuple[Tensor, ...]:
    """Per-step views of a (T, K, B, n) tensor, made once before a loop: (B, n) each when
    K = 1 (for plain mm), else (K, B, n). Indexing inside the loop costs a dispatch each."""
    return (x[:, 0] if x.shape[1] == 1 else x).unbind(0)


def loop_matrix(W: Tensor) -> Tensor:
    """A (K, m, n) matrix as the loops' matmuls take it: (m, n) when K = 1."""
    return W[0] if W.shape[0] == 1 else W


def tmm(A: Tensor, B: Tensor) -> Tensor:
    """A^T B per member, (K, N, m), (K, N, n) -> (K, m, n); one mm when K = 1."""
    if A.shape[0] == 1:
        return (A[0].T @ B[0])[None]
    return A.transpose(1, 2) @ B


def member_rows(x: Tensor, ws: Workspace | None = None, name: str = "") -> Tensor:
    """(T, K, B, n) -> (K, T*B, n), rows time-major: a view when K = 1 and ``x`` is
    contiguous, else a copy (into the workspace buffer ``name`` when given: no fresh memory)."""
    T, K, B, n = x.shape
    if ws is None or (K == 1 and x.is_contiguous()):
        return x.transpose(0, 1).reshape(K, T * B, n)
    out = ws.get(name, (K, T, B, n), x)
    return out.copy_(x.transpose(0, 1)).view(K, T * B, n)


def _gather_inputs(
    ws: Workspace, weights: list[Tensor], biases: list[Tensor], steps: Tensor
) -> tuple[Tensor, Tensor]:
    """X_t [W_x1 | ...] + [b_1 | ...] for all t and members as one row gather: (T, K, B, n).
    Also returns the flat row index (T*K*B,) into the (K*V, n) stacked input weights."""
    W_x = torch.cat(weights, dim=2)  # (K, V, n)
    K, V, n = W_x.shape
    T, B = steps.shape
    offsets = torch.arange(K, device=steps.device) * V
    index = (steps[:, None, :] + offsets[None, :, None]).reshape(-1)  # (T*K*B,)
    out = ws.get("XP", (T * K * B, n), W_x)
    torch.index_select(W_x.reshape(K * V, n), 0, index, out=out)
    return out.view(T, K, B, n).add_(torch.cat(biases, dim=1)[None, :, None]), index


def gru_forward(P: dict[str, Tensor], steps: Tensor, H0: Tensor, ws: Workspace) -> ForwardCache:
    """GRU (or half of one) over ``steps`` (T, B) from H0 (K, B, H); the variant and the
    gates it has from the parameter names. Gate blocks are [Z | R], either one absent."""
    T, B = steps.shape
    K, _, Hn = H0.shape
    gates = [g for g in "zr" if f"W_h{g}" in P]
    nG = len(gates)
    has_z, has_r, cudnn = "z" in gates, "r" in gates, "b_hh" in P
    b_h = P["b_xh"] if cudnn else P["b_h"]
    W_x = [P[f"W_x{g}"] for g in gates] + [P["W_xh"]]
    XP, _ = _gather_inputs(ws, W_x, [P[f"b_{g}"] for g in gates] + [b_h], steps)
    Hs = ws.get("Hs", (T + 1, K, B, Hn), H0)
    ZR = ws.get("ZR", (T, K, B, nG * Hn), H0)
    # Without Z the candidate is the state (H_t = H_tilde_t): written straight into Hs.
    H_tilde = ws.get("H_tilde", (T, K, B, Hn), H0) if has_z else Hs[1:]
    Z = ZR[..., :Hn] if has_z else None
    R = ZR[..., (nG - 1) * Hn :] if has_r else None
    Hs[0] = H0
    mm = torch.addmm if K == 1 else torch.baddbmm
    Hs_t, H_tilde_t, ZR_t = per_step(Hs), per_step(H_tilde), per_step(ZR)
    Z_t, R_t = (per_step(x) if x is not None else None for x in (Z, R))
    XPg_t, XPh_t = per_step(XP[..., : nG * Hn]), per_step(XP[..., nG * Hn :])
    W_g = [P[f"W_h{g}"] for g in gates]
    if cudnn or not has_r:
        W_h = torch.cat([*W_g, P["W_hh"]], dim=2)  # (K, H, (nG+1)H)
        b_hh = P["b_hh"] if cudnn else torch.zeros_like(b_h)
        b_hcat = torch.cat([torch.zeros_like(b_hh).repeat(1, nG), b_hh], dim=1)[:, None]
        G = ws.get("G", (T, K, B, (nG + 1) * Hn), H0)  # H_{t-1} [W_h* | W_hh] + [0 | b_hh]
        G_t, Gg_t = per_step(G), per_step(G[..., : nG * Hn])
        Gh_t = per_step(G[..., nG * Hn :])
        W_h_, b_hcat_ = loop_matrix(W_h), loop_matrix(b_hcat)
        for t in range(T):
            H = Hs_t[t]
            mm(b_hcat_, H, W_h_, out=G_t[t])
            torch.add(XPg_t[t], Gg_t[t], out=ZR_t[t]).sigmoid_()  # [Z | R]
            if R_t is not None:  # H_tilde = tanh(X W_xh + b_xh + R * (H W_hh + b_hh))
                torch.addcmul(XPh_t[t], R_t[t], Gh_t[t], out=H_tilde_t[t]).tanh_()
            else:  # R = 1: H_tilde = tanh(X W_xh + b + H W_hh (+ b_hh))
                torch.add(XPh_t[t], Gh_t[t], out=H_tilde_t[t]).tanh_()
            if Z_t is not None:
                torch.lerp(H_tilde_t[t], H, Z_t[t], out=Hs_t[t + 1])  # Z H + (1 - Z) H_tilde
        G_h = G[..., nG * Hn :] if has_r else None
        return ForwardCache(Hs, Z, R, H_tilde, G_h, None, W_h)
    W_hg = torch.cat(W_g, dim=2)  # (K, H, nG H): [W_hz | W_hr] or W_hr
    RH = ws.get("RH", (T, K, B, Hn), H0)  # R * H_{t-1}, kept for dW_hh
    RH_t, W_hg_, W_hh_ = per_step(RH), loop_matrix(W_hg), loop_matrix(P["W_hh"])
    minus_one = torch.tensor(-1.0, dtype=H0.dtype)  # a CPU scalar: any device takes it
    assert R_t is not None
    for t in range(T):
        H = Hs_t[t]
        mm(XPg_t[t], H, W_hg_, out=ZR_t[t]).sigmoid_()  # [Z | R]
        torch.mul(R_t[t], H, out=RH_t[t])
        # H_tilde = tanh(X W_xh + (R * H) W_hh + b_h), as 2 sigmoid(2 a) - 1 (module doc)
        mm(XPh_t[t], RH_t[t], W_hh_, beta=2, alpha=2, out=H_tilde_t[t]).sigmoid_()
        torch.add(minus_one, H_tilde_t[t], alpha=2, out=H_tilde_t[t])
        if Z_t is not None:
            torch.lerp(H_tilde_t[t], H, Z_t[t], out=Hs_t[t + 1])  # Z H + (1 - Z) H_tilde
    return ForwardCache(Hs, Z, R, H_tilde, None, RH, W_hg)


def rnn_forward(P: dict[str, Tensor], steps: Tensor, H0: Tensor, ws: Workspace) -> ForwardCache:
    T, B = steps.shape
    XP, _ = _gather_inputs(ws, [P["W_xh"]], [P["b_h"]], steps)
    Hs = ws.get("Hs", (T + 1, *H0.shape), H0)
    Hs[0] = H0
    mm = torch.addmm if H0.shape[0] == 1 else torch.baddbmm
    Hs_t, XP_t, W_hh_ = per_step(Hs), per_step(XP), loop_matrix(P["W_hh"])
    for t in range(T):
        # H_t = tanh(X_t W_xh + b_h + H_{t-1} W_hh)
        mm(XP_t[t], Hs_t[t], W_hh_, out=Hs_t[t + 1]).tanh_()
    return ForwardCache(Hs, None, None, None, None, None, None)
