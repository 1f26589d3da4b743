r"""One position's loss flowing back through time, for the hand-written BPTT (flow steps).

``||dL/dH_t||`` (the main backward's running gradient) includes position t's own loss, so it
never shows vanishing. Two more backward passes reuse the forward's local derivatives
(``step_bptt._gru_local`` / ``_rnn_local``) with the output gradient injected only at the last
position(s) and no weight gradients, run together as one batch of 2B:

    l_T    = batch-mean loss at position T                    ->  ||d l_T / dH_t||
    l_late = mean of l_s over the last LATE positions         ->  ||d l_late / dH_t||

Since the mean loss is ``L = (1/T) sum_s l_s``, the injections are ``T * dL/dH_T`` (output
path only) and ``(T / LATE) * dL/dH_s`` for the last LATE positions s. The recursion is the
main one's (step_bptt's docstring), e.g. for the d2l GRU
``d_{t-1} = d_t * Z + (d_t gH W_hh^T) * R + [d_t gZ | (d_t gH W_hh^T) gR] [W_hz | W_hr]^T``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .step_bptt import LATE, ForwardCache, Workspace, _addbmm, _bmm


def probe_injection(dH_out: Tensor, ws: Workspace) -> Tensor:
    """Output gradients of l_T and l_late at the last positions, (n, K, 2, B, H), copied from
    the output layer's dL/dH_t before the main backward overwrites it."""
    T = dH_out.shape[0]
    n = min(LATE, T)
    inj = ws.get("probe_in", (n, dH_out.shape[1], 2, *dH_out.shape[2:]), dH_out)
    inj[:, :, 0].zero_()
    inj[-1, :, 0] = dH_out[-1] * T  # d l_T / dO_T = T * dL/dO_T
    torch.mul(dH_out[T - n :], T / n, out=inj[:, :, 1])  # d l_late / dO_s = (T/n) dL/dO_s
    return inj


def probe_backward(
    kind: str,
    P: dict[str, Tensor],
    c: ForwardCache,
    local: tuple[Tensor, ...],
    inj: Tensor,
    ws: Workspace,
) -> Tensor:
    """The two one-position backward passes at once (as a batch of 2B): (T, K, 2) norms."""
    T, K, _, B, Hn = c.Hs.shape[0] - 1, *inj.shape[1:]
    n = inj.shape[0]
    norms = ws.get("probe_norms", (T, K, 2), inj)
    d = inj.new_zeros(K, 2, B, Hn)
    W_hh_T = P["W_hh"].transpose(1, 2).contiguous()
    W_rec_T = c.W_rec.transpose(1, 2).contiguous() if c.W_rec is not None else None
    for t in range(T - 1, -1, -1):
        if t >= T - n:
            d = d + inj[t - (T - n)]
        torch.linalg.vector_norm(d.flatten(2), dim=2, out=norms[t])
        if t == 0:
            break
        flat = d.view(K, 2 * B, Hn)
        if kind == "rnn":
            dA = (d * local[0][t][:, None]).view(K, 2 * B, Hn)
            d = _bmm(dA, W_hh_T, torch.empty_like(flat)).view(K, 2, B, Hn)
            continue
        gZ, gH, gR = (g[t][:, None] for g in local)
        Z, R = c.Z[t][:, None], c.R[t][:, None]  # type: ignore[index]
        dA_z, dA_h = d * gZ, d * gH
        keep = d * Z
        if kind == "gru-cudnn":
            dA = torch.cat([dA_z, dA_h * gR, dA_h * R], dim=3).view(K, 2 * B, 3 * Hn)
        else:
            dRH = _bmm(dA_h.reshape(K, 2 * B, Hn), W_hh_T, torch.empty_like(flat))
            dRH = dRH.view(K, 2, B, Hn)
            keep = keep.addcmul_(dRH, R)
            dA = torch.cat([dA_z, dRH * gR], dim=3).view(K, 2 * B, 2 * Hn)
        d = _addbmm(keep.view(K, 2 * B, Hn), dA, W_rec_T, torch.empty_like(flat))
        d = d.view(K, 2, B, Hn)
    return norms
