"""Generating text from a model: d2l's ``predict_ch8``, greedy or sampled at a temperature.

The model reads the prefix from a zero state (warm-up), then emits one character at a time,
feeding each back in: greedy takes the argmax; sampling draws from
``softmax(logits / temperature)`` with its own ``torch.Generator`` (never the process-wide
seed). ``<unk>`` (index 0) is never sampled. Used by the trainer's per-epoch texts and by the
dashboard's temperature slider, on a private copy of the weights.
"""

from __future__ import annotations

import math

import torch

from gru_core.data import Vocab, preprocess
from gru_core.model.cells import RecurrentLM

MIN_TEMPERATURE, MAX_TEMPERATURE = 0.1, 2.0  # the dashboard slider's range


@torch.no_grad()
def generate(
    model: RecurrentLM,
    vocab: Vocab,
    prefix: str,
    num_preds: int,
    temperature: float | None = None,
    generator: torch.Generator | None = None,
) -> str:
    """``prefix`` (as the model reads it: preprocessed) followed by ``num_preds`` characters,
    greedy when ``temperature`` is None, else sampled. ValueError for a temperature <= 0."""
    if temperature is not None and not temperature > 0:
        raise ValueError(f"temperature={temperature!r} must be > 0 (or None for greedy)")
    device = model.W_hq.device
    ids = vocab.encode(preprocess(prefix)) or [0]
    state = model.init_state(1)
    if len(ids) > 1:
        state = model(torch.tensor([ids[:-1]], device=device), state).state
    out = list(ids)
    for _ in range(num_preds):
        step = model(torch.tensor([[out[-1]]], device=device), state)
        state, logits = step.state, step.logits[0, 0].float().cpu()
        if temperature is None:
            out.append(int(logits.argmax()))
            continue
        logits[0] = -math.inf  # never sample <unk>
        probs = torch.softmax(logits / temperature, dim=0)
        if not torch.isfinite(probs).all():  # a diverged model: say so with <unk>
            out.append(0)
            continue
        out.append(int(torch.multinomial(probs, 1, generator=generator)))
    return vocab.decode(out)
