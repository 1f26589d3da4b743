"""What a sweep asks of the step core beyond a run: validation of many members at once.

**Validation, K members per pass.** ``validation_losses`` computes, for members of one
``StepCore`` together, what ``fused.validation_loss`` computes for one: the held-out slice
read in ``perplexity.validation_layout`` (B parallel streams of L tokens, in windows of T
with the state carried), and ::

    L_k = sum over windows of CE_k(window) * tokens(window) / (B * L)

where CE_k is member k's token-mean cross-entropy of ``O = H W_hq + b_q``; member k's
perplexity is ``perplexity.perplexity(L_k)``, read on the host by the caller. The forward is
``step/forward.py``'s (``gru_forward`` / ``rnn_forward``) over the members' parameter views;
the LSTM, which has none, is validated one member at a time by the core. Members go
``VAL_MEMBERS`` at a time, so the extra memory is bounded (``val_bytes``; the sweep's plan
counts it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gru_core.config import TrainConfig
from gru_core.limits import BYTES, FWD_PER_UNIT
from gru_core.perplexity import validation_layout, validation_streams
from gru_core.step.core import StepCore
from gru_core.step.forward import Workspace, gru_forward, rnn_forward

VAL_MEMBERS = 16  # members validated together in one forward pass


def val_bytes(config: TrainConfig, val_tokens: int, members: int) -> int:
    """Extra memory of validating ``members`` at once beyond the one member that
    ``limits.estimate_bytes`` counts: their forward buffers and logits."""
    extra = min(members, VAL_MEMBERS) - 1
    if extra <= 0 or val_tokens < 2:
        return 0
    T, H = config.num_steps, config.hidden_size
    B, _ = validation_layout(val_tokens, T)
    return extra * (FWD_PER_UNIT[config.model] * H + 64) * T * B * BYTES  # + logits (V < 64)


@torch.no_grad()
def validation_losses(
    core: StepCore, members: list[int], tokens: Tensor, ws: Workspace
) -> Tensor | None:
    """The members' token-mean cross-entropies on held-out ``tokens`` (module docstring), a
    (len(members),) device tensor in the core's accumulation dtype; None without any
    (input, target) pair or without members."""
    if len(tokens) < 2 or not members:
        return None
    if core.kind == "lstm":
        losses = [core.validation_loss(k, tokens) for k in members]
        return torch.stack([v for v in losses if v is not None])
    parts = [
        _losses(core, members[start : start + VAL_MEMBERS], tokens, ws)
        for start in range(0, len(members), VAL_MEMBERS)
    ]
    return torch.cat(parts)


def _losses(core: StepCore, members: list[int], tokens: Tensor, ws: Workspace) -> Tensor:
    cfg = core.configs[members[0]]
    T, Hn = cfg.num_steps, cfg.hidden_size
    X, Y = validation_streams(tokens, T)
    B, L = X.shape
    index = torch.tensor(members, device=core.device)
    P = {name: W.index_select(0, index) for name, W in core.params.items()}
    forward = rnn_forward if core.kind == "rnn" else gru_forward
    K = len(members)
    H = torch.zeros(K, B, Hn, dtype=core.dtype, device=core.device)
    total = torch.zeros(K, dtype=core.acc, device=core.device)
    for t0 in range(0, L, T):
        x, y = X[:, t0 : t0 + T], Y[:, t0 : t0 + T]
        H_out = forward(P, x.T.contiguous(), H, ws).Hs[1:]  # (t, K, B, H)
        t = H_out.shape[0]
        rows = H_out.transpose(0, 1).reshape(K, t * B, Hn)  # time-major rows, as y.T
        logits = torch.baddbmm(P["b_q"][:, None], rows, P["W_hq"])  # O = H W_hq + b_q
        log_p = torch.log_softmax(logits, dim=2)
        target = y.T.reshape(1, -1, 1).expand(K, -1, 1)
        loss = -log_p.gather(2, target).mean(dim=(1, 2))  # (K,) token-mean cross-entropy
        total += loss.to(core.acc) * y.numel()
        H = H_out[-1].clone()
    return total / (B * L)
