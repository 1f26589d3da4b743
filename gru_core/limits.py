"""Resource limits: estimate a run's memory before it starts and refuse what won't fit.

The estimate counts, in bytes of the parameter dtype (float32):

- parameters, their gradients and the SGD temporaries: 3 x P;
- what one training step keeps for backprop. The fast path (GRU, RNN) keeps preallocated
  buffers per time step: states H_0..H_T, the gates [Z | R], H_tilde, R*H, the input
  projections, the backward's dA and dL/dH and three local-derivative tensors, about
  ``ACT_PER_UNIT[model]`` values per (t, b, hidden unit). Autograd (the LSTM) keeps more;
- the logits and their gradient, 3 x T x B x V;
- the validation pass (``perplexity.validation_layout``: up to 256 streams of T steps, no
  gradients) and the probe trace (B streams),
  which are smaller than the step and counted as one more step's forward buffers.

``configs`` K > 1 (configurations trained at once by one ``StepCore``) multiplies everything
but the validation pass, which runs for one member at a time. On CUDA a captured step keeps
its temporaries in the graph's private pool: within the "activations" share, since the
step's own buffers live in its workspace.

It is an estimate for refusing obviously-too-big settings (say hidden 1024 x 500 steps x
batch 256 on a laptop) with a message, not an exact account of the allocator.
"""

from __future__ import annotations

import math
import os

from gru_core.config import TrainConfig
from gru_core.i18n import N_, _, format_number
from gru_core.perplexity import validation_layout

BUDGET_ENV = "GRU_LAB_MEMORY_BUDGET_MB"
DEFAULT_CPU_BUDGET_MB = 4096
BYTES = 4  # float32

# values kept per (time step, sequence, hidden unit) by one training step
ACT_PER_UNIT = {"gru": 19, "rnn": 8, "lstm": 30}
# forward-only values per (time step, sequence, hidden unit): validation and the probe
FWD_PER_UNIT = {"gru": 8, "rnn": 2, "lstm": 12}
for _half in ("gru_reset_only", "gru_update_only"):  # half a GRU: at most the GRU's
    ACT_PER_UNIT[_half], FWD_PER_UNIT[_half] = ACT_PER_UNIT["gru"], FWD_PER_UNIT["gru"]


def parameter_count(config: TrainConfig, vocab_size: int) -> int:
    V, H = vocab_size, config.hidden_size
    blocks = {"gru": 3, "rnn": 1, "lstm": 4, "gru_reset_only": 2, "gru_update_only": 2}
    n = blocks[config.model]
    cudnn = config.model.startswith("gru") and config.gru_variant == "cudnn"
    biases = n * H + (H if cudnn else 0)
    return n * (V * H + H * H) + biases + H * V + V


def estimate_bytes(config: TrainConfig, vocab_size: int, configs: int = 1) -> dict[str, int]:
    """Memory a run (or ``configs`` runs of one shape stepped together) needs, by part."""
    T, B, H, V = config.num_steps, config.batch_size, config.hidden_size, vocab_size
    K = configs
    params = parameter_count(config, vocab_size)
    streams = max(B, validation_layout(config.val_tokens, T)[0])  # the probe's, validation's
    return {
        N_("parameters, gradients, update"): 3 * K * params * BYTES,
        N_("activations kept for backprop"): ACT_PER_UNIT[config.model] * K * T * B * H * BYTES,
        N_("logits"): 3 * K * T * B * V * BYTES,
        N_("validation and traced gates"): FWD_PER_UNIT[config.model] * T * streams * H * BYTES,
    }


def parse_budget_mb(text: str) -> float:
    """``GRU_LAB_MEMORY_BUDGET_MB``'s value in MB: a finite number > 0, else a ValueError that
    names the variable (``inf``, ``nan``, ``-5``, ``lots`` are all refused)."""
    try:
        mb = float(text)
    except ValueError:
        raise ValueError(
            _("{env}={text!r} must be a number of megabytes").format(env=BUDGET_ENV, text=text)
        ) from None
    if not (math.isfinite(mb) and mb > 0):
        raise ValueError(
            _("{env}={text!r} must be a finite number of megabytes > 0").format(
                env=BUDGET_ENV, text=text
            )
        )
    return mb


def budget_bytes(device: str) -> int:
    """GRU_LAB_MEMORY_BUDGET_MB if set; on CUDA 80% of the card's free memory; else 4 GiB."""
    env = os.environ.get(BUDGET_ENV)
    if env is not None and env.strip():
        return int(parse_budget_mb(env) * 2**20)
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free * 0.8)
    return DEFAULT_CPU_BUDGET_MB * 2**20


def check_memory(
    config: TrainConfig, vocab_size: int, device: str, configs: int = 1, held_bytes: int = 0
) -> int:
    """Raise ValueError with the estimate and the budget when a run would not fit;
    return the estimate in bytes otherwise. ``held_bytes``: host memory the session already
    holds for this budget (saved runs' final weights, kept for the memory views); it counts
    on the CPU, whose budget it shares, and not against a GPU's."""
    parts = estimate_bytes(config, vocab_size, configs)
    if held_bytes and not device.startswith(("cuda", "mps")):
        parts[N_("saved runs' weights (memory views)")] = int(held_bytes)
    need, budget = sum(parts.values()), budget_bytes(device)
    if need > budget:
        biggest = max(parts, key=parts.__getitem__)
        raise ValueError(
            _(
                "this run needs about {need} of memory ({part}: {part_need}), over the budget "
                "of {budget} on {device}. Lower the hidden size, batch size or sequence length "
                "(the budget is set by {env})."
            ).format(
                need=_mb(need),
                part=_(biggest),
                part_need=_mb(parts[biggest]),
                budget=_mb(budget),
                device=device,
                env=BUDGET_ENV,
            )
        )
    return need


def _mb(n: int) -> str:
    return f"{format_number(n / 2**20, 0)} MB" if n < 2**30 else f"{format_number(n / 2**30, 1)} GB"
