r"""The hand-written backward through time, and the one-position probes it carries on flow
steps. The maths and conventions are in ``step/bptt.py``'s docstring; this module is its
reverse loop (``backward``) over the forward's cache and local derivatives.

**One position's loss flowing back through time.**

``||dL/dH_t||`` (the main backward's running gradient) includes position t's own loss, so it
never shows vanishing. Two more gradients through time show it, of

    l_T    = batch-mean loss at position T                    ->  ||d l_T / dH_t||
    l_late = mean of l_s over the last LATE positions         ->  ||d l_late / dH_t||

Since the mean loss is ``L = (1/T) sum_s l_s``, their output-path gradients are
``T * dL/dH_T`` (at t = T only) and ``(T / LATE) * dL/dH_s`` (at the last LATE positions s).
Both follow the main backward's recursion (step/bptt.py's docstring), e.g. for the d2l GRU
``d_{t-1} = d_t * Z + (d_t gH W_hh^T) * R + [d_t gZ | (d_t gH W_hh^T) gR] [W_hz | W_hr]^T``,
with the same local derivatives and no weight gradients. So on a flow step the backward
carries them as two more row blocks of its running gradient, (T, K, 3, B, H): every op of
its loop serves all three (one matmul of 3B rows instead of three of B), and after the loop
one norm over (B, H) gives the three flows at every t.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gru_core.step.forward import ForwardCache, Workspace, loop_matrix, member_rows, rec_h, tmm

LATE = 5  # positions averaged in l_late


def local_derivatives(c: ForwardCache, ws: Workspace) -> tuple[Tensor, ...]:
    """The GRU's gZ, gH, gR (None for a gate a half GRU lacks) or the RNN's 1 - H_t^2, for
    all t at once."""
    return _gru_local(c, ws) if c.H_tilde is not None else _rnn_local(c, ws)


def backward(
    P: dict[str, Tensor],
    steps: Tensor,
    c: ForwardCache,
    local: tuple[Tensor, ...],
    D: Tensor,
    Hp: Tensor,
    ws: Workspace,
) -> dict[str, Tensor]:
    """The reverse loop of the GRU (either variant) or the RNN; see ``_gru_backward``."""
    gru = c.H_tilde is not None
    return (_gru_backward if gru else _rnn_backward)(P, steps, c, local, D, Hp, ws)


def input_gradients(P: dict[str, Tensor], c: ForwardCache, D: Tensor, ws: Workspace) -> Tensor:
    """The gradient with respect to the input rows, ``d/de_s`` at every position s, of a loss
    whose output-path gradient is ``D`` (T, K, B, H), where e_s is the row that x_s selects,
    ``X_s [W_xz | W_xr | W_xh]`` (RNN: ``X_s W_xh``; a half GRU drops its missing gate's block):
    (T, K, B, G*H), G = 3, 2 or 1, in that order, i.e. ``[dA_z | dA_r | dA_h]`` (RNN: ``dA``).
    It is the derivative the training step scatters into the rows of ``W_x*`` (``backward``),
    computed by the same reverse loop; the memory view's connectivity is its norm. ``D`` is
    overwritten with the total dL/dH_t."""
    local = local_derivatives(c, ws)
    if c.H_tilde is None:
        return _rnn_reverse(P, local, D[:, :, None], ws)[:, :, 0]
    dA, dAh = _gru_reverse(P, c, local, D[:, :, None], ws)
    return _input_rows(dA[:, :, 0], dAh[:, :, 0], c.G_h is not None)


def _input_rows(dA: Tensor, dAh: Tensor, split: bool) -> Tensor:
    """[dA_z | dA_r | dA_h] from the reverse loop's [dA_z | dA_r | dG_h or dA_h] and dA_h
    (last axis): the GRU's gradient with respect to its input rows e_s. ``split``: the
    last block is dG_h (cudnn with R), not dA_h."""
    if not split:
        return dA  # the last block already is dA_h
    Hn = dAh.shape[-1]
    return torch.cat([dA[..., :-Hn], dAh], dim=-1)


def with_probes(dH_out: Tensor, ws: Workspace) -> Tensor:
    """The running gradient of a flow step, (T, K, 3, B, H): block 0 the output layer's
    dL/dH_t (``dH_out``, (T, K, B, H)), blocks 1 and 2 the output-path gradients of l_T and
    l_late (zero before their positions)."""
    T, K, B, Hn = dH_out.shape
    n = min(LATE, T)
    D = ws.get("D_probes", (T, K, 3, B, Hn), dH_out)
    D[:, :, 0].copy_(dH_out)
    D[:, :, 1:].zero_()
    torch.mul(dH_out[-1], T, out=D[-1, :, 1])  # d l_T / dO_T = T * dL/dO_T
    torch.mul(dH_out[T - n :], T / n, out=D[T - n :, :, 2])  # d l_late / dO_s = (T/n) dL/dO_s
    return D


def _gru_local(c: ForwardCache, ws: Workspace) -> tuple[Tensor | None, Tensor, Tensor | None]:
    """Local derivatives for all t at once: gZ, gH, gR (see the module docstring); gZ is
    None without Z (Z = 0: gH = 1 - H_tilde^2), gR None without R."""
    Z, R, H_tilde, H_prev = c.Z, c.R, c.H_tilde, c.Hs[:-1]
    assert H_tilde is not None
    shape = tuple(H_tilde.shape)
    gZ = gR = None
    gH = torch.mul(H_tilde, H_tilde, out=ws.get("gH", shape, H_tilde)).neg_().add_(1)
    if Z is not None:
        gZ = torch.sub(H_prev, H_tilde, out=ws.get("gZ", shape, H_tilde)).mul_(Z)
        gZ.addcmul_(gZ, Z, value=-1)  # dA_z = dH * gZ, gZ = Z(1-Z)(H_{t-1} - H_tilde)
        gH.addcmul_(gH, Z, value=-1)  # dA_h = dH * gH, gH = (1-Z)(1 - H_tilde^2)
    if R is not None:
        gate_in = c.G_h if c.G_h is not None else H_prev
        gR = torch.mul(R, gate_in, out=ws.get("gR", shape, H_tilde))
        gR.addcmul_(gR, R, value=-1)  # gR = R(1-R) * (G_h or H_{t-1})
    return gZ, gH, gR


def _rnn_local(c: ForwardCache, ws: Workspace) -> tuple[Tensor]:
    H = c.Hs[1:]
    gA = torch.mul(H, H, out=ws.get("gA", tuple(H.shape), H)).neg_().add_(1)  # 1 - H_t^2
    return (gA,)


class _Loop:
    """Per-step views of the backward's (T, K, Q, B, n) tensors, made once before the loop
    (indexing inside it costs a dispatch each): ``shaped`` (Q, B, n) when K = 1, else
    (K, Q, B, n), for elementwise ops; ``rows`` (Q*B, n) or (K, Q*B, n) for the matmuls;
    ``local`` turns a (T, K, B, n) local derivative into views that broadcast over Q.

    ``outputs`` gives where step t's dA goes: the (T, K, 1, B, n) buffer the weight gradients
    read when Q = 1; on flow steps one (K, Q, B, n) scratch for every t (an expanded view),
    whose block 0 ``keep`` then copies into that buffer: the probes' dA is never stored."""

    def __init__(self, K: int, Q: int, ws: Workspace) -> None:
        self.K, self.Q, self.ws = K, Q, ws

    def shaped(self, x: Tensor) -> tuple[Tensor, ...]:
        return (x[:, 0] if self.K == 1 else x).unbind(0)

    def rows(self, x: Tensor) -> tuple[Tensor, ...]:
        T, K, Q, B, n = x.shape
        return (x.view(T, Q * B, n) if K == 1 else x.view(T, K, Q * B, n)).unbind(0)

    def local(self, x: Tensor) -> tuple[Tensor, ...]:
        return (x[:, 0, None] if self.K == 1 else x[:, :, None]).unbind(0)

    def outputs(self, name: str, stored: Tensor) -> Tensor:
        if self.Q == 1:
            return stored
        T, K, _, B, n = stored.shape
        return self.ws.get(name, (1, K, self.Q, B, n), stored).expand(T, -1, -1, -1, -1)

    def keep(self, stored: Tensor, out: Tensor, t: int) -> None:
        """Block 0 of step t's scratch into the stored buffer (flow steps only)."""
        if self.Q > 1:
            stored[t, :, 0].copy_(out[t, :, 0])


def _gru_backward(
    P: dict[str, Tensor],
    steps: Tensor,
    c: ForwardCache,
    local: tuple[Tensor | None, ...],
    D: Tensor,
    Hp: Tensor,
    ws: Workspace,
) -> dict[str, Tensor]:
    """Parameter gradients (from block 0 of D only) after ``_gru_reverse``, for the GRU and
    its halves. ``Hp``: H_0..H_{T-1} as member-major rows (K, T*B, H)."""
    Hn = D.shape[-1]
    split, fused = c.G_h is not None, rec_h(c)
    gates = [g for g in "zr" if f"W_h{g}" in P]
    nH = len(gates) * Hn  # the gate blocks' width
    dA_kept, dAh_kept = _gru_reverse(P, c, local, D, ws)
    dA2 = member_rows(dA_kept[:, :, 0], ws, "dA_rows")  # (K, T*B, nH+H): the loss's own
    dAh2 = member_rows(dAh_kept[:, :, 0], ws, "dAh_rows") if split else dA2[..., nH:]
    gW_x = _scatter_rows(P["W_xh"], steps, _input_rows(dA2, dAh2, split))  # (K, V, nH+H)
    gW_h = tmm(Hp, dA2 if fused else dA2[..., :nH])  # (K, H, nH+H or nH): one matmul
    grads: dict[str, Tensor] = {}
    for i, g in enumerate(gates):
        block = slice(i * Hn, (i + 1) * Hn)
        grads[f"W_x{g}"] = gW_x[..., block].contiguous()
        grads[f"W_h{g}"] = gW_h[..., block]
        grads[f"b_{g}"] = dA2[..., block].sum(1)
    grads["W_xh"] = gW_x[..., nH:].contiguous()
    if fused:
        grads["W_hh"] = gW_h[..., nH:]
    else:
        assert c.RH is not None
        grads["W_hh"] = tmm(member_rows(c.RH, ws, "RH_rows"), dAh2)
    if "b_hh" in P:  # cudnn: dG_h (= dA_h * R, or dA_h without R) and dA_h
        return grads | {"b_hh": dA2[..., nH:].sum(1), "b_xh": dAh2.sum(1)}
    return grads | {"b_h": dAh2.sum(1)}


def _gru_reverse(
    P: dict[str, Tensor],
    c: ForwardCache,
    local: tuple[Tensor | None, ...],
    D: Tensor,
    ws: Workspace,
) -> tuple[Tensor, Tensor]:
    """Reverse loop over the running gradient D (T, K, Q, B, H); row block q = 0 is dL/dH_t
    (the others, on flow steps, are the one-position probes of ``with_probes``, which share
    every op). On return D[t] holds the total. Returns block 0's [dA_z | dA_r | dG_h (cudnn)
    or dA_h (d2l)] (T, K, 1, B, 3H; a half GRU lacks one gate block) and dA_h (T, K, 1, B, H)
    at every t. Without Z (Z = 0) the terms in Z vanish; without R (R = 1) dG_h = dA_h and
    the candidate's W_hh is fused into W_rec, as in the cudnn variant."""
    T, K, Q, B, Hn = D.shape
    Z, R = c.Z, c.R
    assert c.W_rec is not None
    nH = ((Z is not None) + (R is not None)) * Hn  # the gate blocks' width
    split, fused = c.G_h is not None, rec_h(c)
    v = _Loop(K, Q, ws)
    # [dA_z | dA_r | dG_h (split) or dA_h] of block 0 at every t; then where t writes
    dA_kept = ws.get("dA", (T, K, 1, B, nH + Hn), D)
    dAh_kept = ws.get("dAh", (T, K, 1, B, Hn), D) if split else dA_kept[..., nH:]
    dA = v.outputs("dA_probes", dA_kept)
    dAh = v.outputs("dAh_probes", dAh_kept) if split else dA[..., nH:]
    # Transposed weights made contiguous once: a strided W.T in every step's matmul is slower.
    W_rec_T = loop_matrix(c.W_rec.transpose(1, 2).contiguous())
    mm0, mm_ = (torch.mm, torch.Tensor.addmm_) if K == 1 else (torch.bmm, torch.Tensor.baddbmm_)
    D_t, D_r = v.shaped(D), v.rows(D)
    Z_t, R_t, gZ_t, gH_t, gR_t = (v.local(x) if x is not None else () for x in (Z, R, *local))
    r0 = Hn if Z is not None else 0  # where dA_r starts
    dAz_t, dAr_t = v.shaped(dA[..., :Hn]), v.shaped(dA[..., r0 : r0 + Hn])
    dG_t, dAh_t, dAh_r = v.shaped(dA[..., nH:]), v.shaped(dAh), v.rows(dAh)
    dA_r, dAg_r = v.rows(dA), v.rows(dA[..., :nH])
    if not fused:  # d2l with R: dRH = dA_h W_hh^T, then R and W_hr
        W_hh_T = loop_matrix(P["W_hh"].transpose(1, 2).contiguous())
        dRH = ws.get("dRH", (K, Q, B, Hn), D)
        dRH_t = dRH[0] if K == 1 else dRH
        dRH_r = dRH.view(-1, Hn) if K == 1 else dRH.view(K, -1, Hn)
    for t in range(T - 1, -1, -1):
        d = D_t[t]  # dL/dH_t: the output path, plus step t+1's part (added below)
        if Z is not None:
            torch.mul(d, gZ_t[t], out=dAz_t[t])
        torch.mul(d, gH_t[t], out=dAh_t[t])
        if split:
            torch.mul(dAh_t[t], gR_t[t], out=dAr_t[t])
            torch.mul(dAh_t[t], R_t[t], out=dG_t[t])  # dG_h = dA_h * R
            v.keep(dAh_kept, dAh, t)
        elif not fused:
            mm0(dAh_r[t], W_hh_T, out=dRH_r)  # dRH = dA_h W_hh^T
            torch.mul(dRH_t, gR_t[t], out=dAr_t[t])
        v.keep(dA_kept, dA, t)
        if t == 0:
            break  # dL/dH_0 is not needed
        if Z is not None:
            D_t[t - 1].addcmul_(d, Z_t[t])  # dL/dH_{t-1} += dH * Z + ...
        if not fused:
            D_t[t - 1].addcmul_(dRH_t, R_t[t])
        mm_(D_r[t - 1], dA_r[t] if fused else dAg_r[t], W_rec_T)
    return dA_kept, dAh_kept


def _rnn_backward(
    P: dict[str, Tensor],
    steps: Tensor,
    c: ForwardCache,
    local: tuple[Tensor, ...],
    D: Tensor,
    Hp: Tensor,
    ws: Workspace,
) -> dict[str, Tensor]:
    dA2 = member_rows(_rnn_reverse(P, local, D, ws)[:, :, 0], ws, "dA_rows")
    gW_xh = _scatter_rows(P["W_xh"], steps, dA2)
    return {"W_xh": gW_xh, "W_hh": tmm(Hp, dA2), "b_h": dA2.sum(1)}


def _rnn_reverse(
    P: dict[str, Tensor], local: tuple[Tensor, ...], D: Tensor, ws: Workspace
) -> Tensor:
    """The RNN's reverse loop over D (T, K, Q, B, H) (see ``_gru_reverse``); returns block
    0's dA (T, K, 1, B, H) at every t."""
    T, K, Q, B, Hn = D.shape
    v = _Loop(K, Q, ws)
    dA_kept = ws.get("dA", (T, K, 1, B, Hn), D)
    dA = v.outputs("dA_probes", dA_kept)
    W_hh_T = loop_matrix(P["W_hh"].transpose(1, 2).contiguous())
    mm_ = torch.Tensor.addmm_ if K == 1 else torch.Tensor.baddbmm_
    D_t, D_r, dA_t, dA_r = v.shaped(D), v.rows(D), v.shaped(dA), v.rows(dA)
    (gA_t,) = (v.local(local[0]),)
    for t in range(T - 1, -1, -1):
        torch.mul(D_t[t], gA_t[t], out=dA_t[t])  # dA = dH * (1 - H_t^2)
        v.keep(dA_kept, dA, t)
        if t > 0:
            mm_(D_r[t - 1], dA_r[t], W_hh_T)  # dL/dH_{t-1} += dA W_hh^T
    return dA_kept


def _scatter_rows(W_x: Tensor, steps: Tensor, rows: Tensor) -> Tensor:
    """The gather's backward: add member-major row gradients (K, T*B, n) (``member_rows``'s
    layout) back into (K, V, n) input-weight rows."""
    K, V, _ = W_x.shape
    n = rows.shape[-1]
    offsets = torch.arange(K, device=steps.device) * V
    index = (steps[None] + offsets[:, None, None]).reshape(-1)  # (K, T, B): rows' order
    out = torch.zeros(K * V, n, dtype=rows.dtype, device=rows.device)
    out.index_add_(0, index, rows.reshape(-1, n))
    return out.view(K, V, n)
