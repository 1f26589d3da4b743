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

from .step_bptt import LATE, ForwardCache, Workspace, _w


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
    """The two one-position backward passes at once (as a batch of 2B): (T, K, 2) norms.
    Every intermediate lives in a workspace buffer; the running gradient alternates between
    two of them (the recurrent matmul accumulates in place into the other)."""
    T, K, _, B, Hn = c.Hs.shape[0] - 1, *inj.shape[1:]
    n = inj.shape[0]
    norms = ws.get("probe_norms", (T, K, 2), inj)
    width = {"rnn": 1, "gru-d2l": 2, "gru-cudnn": 3}[kind]
    d, keep, dAh, dRH = (ws.get(f"probe_{i}", (K, 2, B, Hn), inj) for i in "dkhr")
    dA = ws.get("probe_dA", (K, 2, B, width * Hn), inj)
    d.zero_()
    if K == 1:  # plain matmuls on (2B, n) rows
        mm, mm_, rows = torch.mm, torch.Tensor.addmm_, (lambda x: x.view(2 * B, -1))
    else:
        mm, mm_, rows = torch.bmm, torch.Tensor.baddbmm_, (lambda x: x.view(K, 2 * B, -1))
    W_hh_T = _w(P["W_hh"].transpose(1, 2).contiguous())
    W_rec_T = _w(c.W_rec.transpose(1, 2).contiguous()) if c.W_rec is not None else None
    # per-step views made once, (K, 1, B, H): broadcast over the two probes
    loc = [x[:, :, None].unbind(0) for x in local]
    Z_t, R_t = (x[:, :, None].unbind(0) if x is not None else () for x in (c.Z, c.R))
    inj_t, norms_t = inj.unbind(0), norms.unbind(0)
    for t in range(T - 1, -1, -1):
        if t >= T - n:
            d.add_(inj_t[t - (T - n)])
        torch.linalg.vector_norm(d.flatten(2), dim=2, out=norms_t[t])
        if t == 0:
            break
        if kind == "rnn":
            torch.mul(d, loc[0][t], out=dA)  # dA = d * (1 - H_t^2)
            mm(rows(dA), W_hh_T, out=rows(keep))
        else:
            gZ, gH, gR = (g[t] for g in loc)
            torch.mul(d, gZ, out=dA[..., :Hn])  # dA_z
            torch.mul(d, gH, out=dAh)  # dA_h
            torch.mul(d, Z_t[t], out=keep)  # d * Z
            if kind == "gru-cudnn":
                torch.mul(dAh, gR, out=dA[..., Hn : 2 * Hn])  # dA_r
                torch.mul(dAh, R_t[t], out=dA[..., 2 * Hn :])  # dG_h
            else:
                mm(rows(dAh), W_hh_T, out=rows(dRH))  # dRH = dA_h W_hh^T
                keep.addcmul_(dRH, R_t[t])
                torch.mul(dRH, gR, out=dA[..., Hn:])  # dA_r
            mm_(rows(keep), rows(dA), W_rec_T)
        d, keep = keep, d
    return norms
