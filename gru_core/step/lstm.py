r"""The LSTM's step by autograd, K members at once, through the same interface as
``step/bptt.loss_and_grads`` (it has no hand-written backward).

``I, F, O = sigmoid(X W_x{i,f,o} + H W_h{i,f,o} + b_{i,f,o})``,
``C_tilde = tanh(X W_xc + H W_hc + b_c)``, ``C_t = F * C_{t-1} + I * C_tilde``,
``H_t = O * tanh(C_t)`` (model/cells.py), over (K, ...) parameters. The gradient flows come from
zero probes added to each H_t: their gradients are ``dL/dH_t``, ``d l_T/dH_t`` and
``d l_late/dH_t`` (step/backward.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gru_core.step.backward import LATE
from gru_core.step.bptt import Grads
from gru_core.step.forward import member_rows


def lstm_loss_and_grads(
    P: dict[str, Tensor],
    X: Tensor,
    Y: Tensor,
    state: tuple[Tensor, Tensor],
    want_flow: bool,
    probes: bool = True,
) -> tuple[Grads, Tensor]:
    """The LSTM by autograd, K members at once. Returns Grads and the final cell C_T.
    ``dL/dH_t`` comes from zero probes added to each H_t; with ``probes`` also the
    one-position flows (two more backward passes)."""
    T, B = X.shape[1], X.shape[0]
    H, C = state
    K, _, Hn = H.shape
    steps = X.T
    targets = Y.T.reshape(-1)
    probe = H.new_zeros(T, K, B, Hn).requires_grad_(want_flow)
    with torch.enable_grad():
        Q = {n: p.detach().requires_grad_() for n, p in P.items()}
        x = {g: Q[f"W_x{g}"][:, steps].transpose(0, 1) for g in "ifoc"}  # (T, K, B, H)
        traces: dict[str, list[Tensor]] = {"I": [], "F": [], "O": [], "C_tilde": []}
        hiddens = []
        for t in range(T):
            pre = {g: x[g][t] + H @ Q[f"W_h{g}"] + Q[f"b_{g}"][:, None] for g in "ifoc"}
            I, F, O = pre["i"].sigmoid(), pre["f"].sigmoid(), pre["o"].sigmoid()
            C_tilde = pre["c"].tanh()
            C = F * C + I * C_tilde  # C_t = F * C_{t-1} + I * C_tilde
            H = O * C.tanh() + probe[t]  # H_t = O * tanh(C_t)
            hiddens.append(H)
            for name, value in zip(traces, (I, F, O, C_tilde), strict=True):
                traces[name].append(value.detach())
        H_all = torch.stack(hiddens)  # (T, K, B, H)
        logits = torch.baddbmm(Q["b_q"][:, None], member_rows(H_all), Q["W_hq"])  # (K, T*B, V)
        ce = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            targets.repeat(K),
            reduction="none",
        ).view(K, T, B)
        loss = ce.mean(dim=(1, 2))
        names = list(Q)
        inputs = [Q[n] for n in names] + ([probe] if want_flow else [])
        all_grads = torch.autograd.grad(loss.sum(), inputs, retain_graph=want_flow and probes)
        flows: list[Tensor | None] = [None, None, None]
        if want_flow:
            n = min(LATE, T)
            flows[0] = all_grads[-1].flatten(2).norm(dim=2)
        if want_flow and probes:
            for i, part in ((1, ce[:, -1].mean(1)), (2, ce[:, T - n :].mean(dim=(1, 2)))):
                (g,) = torch.autograd.grad(part.sum(), probe, retain_graph=i == 1)
                flows[i] = g.flatten(2).norm(dim=2)
    grads = dict(zip(names, all_grads[: len(names)], strict=True))
    gates = {k: torch.stack(v) for k, v in traces.items()}
    out = Grads(loss.detach(), H.detach(), grads, gates, *flows)
    return out, C.detach()
