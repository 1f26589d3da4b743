"""What a sweep asks of the step core beyond a run: validation of many members at once.

**Validation, K members per pass.** ``validation_perplexities`` computes, for members of one
``StepCore`` together, what ``fused.validation_perplexity`` computes for one: the held-out
slice laid out as B parallel streams (as many as fit T tokens each, at most 256) read in
windows of T with the state carried, and ::

    ppl_k = exp( sum over windows of CE_k(window) * tokens(window) / (B * L) )

where CE_k is member k's token-mean cross-entropy of ``O = H W_hq + b_q``. The forward is
``step/forward.py``'s (``gru_forward`` / ``rnn_forward``) over the members' parameter views; the
LSTM, which has none, is validated one member at a time by the core. Members go
``VAL_MEMBERS`` at a time, so the extra memory is bounded (``val_bytes``; the sweep's plan
counts it).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gru_core.config import TrainConfig
from gru_core.limits import BYTES, FWD_PER_UNIT
from gru_core.step.core import StepCore
from gru_core.step.forward import Workspace, gru_forward, rnn_forward

VAL_MEMBERS = 16  # members validated together in one forward pass


def val_streams(num_tokens: int, num_steps: int) -> int:
    """B of the validation layout, as ``fused.validation_perplexity`` chooses it."""
    return max(1, min(256, (num_tokens - 1) // num_steps))


def val_bytes(config: TrainConfig, val_tokens: int, members: int) -> int:
    """Extra memory of validating ``members`` at once beyond the one member that
    ``limits.estimate_bytes`` counts: their forward buffers and logits."""
    extra = min(members, VAL_MEMBERS) - 1
    if extra <= 0 or val_tokens < 2:
        return 0
    B, T, H = val_streams(val_tokens, config.num_steps), config.num_steps, config.hidden_size
    return extra * (FWD_PER_UNIT[config.model] * H + 64) * T * B * BYTES  # + logits (V < 64)


@torch.no_grad()
def validation_perplexities(
    core: StepCore, members: list[int], tokens: Tensor, ws: Workspace
) -> dict[int, float | None]:
    """Member -> perplexity on held-out ``tokens`` (module docstring); None without any."""
    n = len(tokens) - 1
    if n < 1 or not members:
        return {k: None for k in members}
    if core.kind == "lstm":
        return {k: core.validation_perplexity(k, tokens) for k in members}
    out: dict[int, float | None] = {}
    for start in range(0, len(members), VAL_MEMBERS):
        part = members[start : start + VAL_MEMBERS]
        out |= dict(zip(part, _perplexities(core, part, tokens, ws), strict=True))
    return out


def _perplexities(core: StepCore, members: list[int], tokens: Tensor, ws: Workspace) -> list[float]:
    cfg = core.configs[members[0]]
    T, Hn = cfg.num_steps, cfg.hidden_size
    n = len(tokens) - 1
    B = val_streams(len(tokens), T)
    L = n // B
    X, Y = tokens[: B * L].view(B, L), tokens[1 : B * L + 1].view(B, L)
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
    return [math.exp(min(v / (B * L), 700.0)) for v in total.tolist()]
