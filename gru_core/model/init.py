r"""The one initialisation rule of every model and every step core.

For parameters named after the maths (``model/cells.py``), drawn in the order given::

    W_* ~ N(0, init_std^2)    (every weight matrix: W_xz, W_hz, ..., W_hq)
    b_* = 0                   (every bias)

as d2l's ``get_params`` does (``torch.randn(shape) * 0.01``, ``torch.zeros``). The values are
drawn on the CPU in float32 from the ``torch.Generator`` passed in (one per run, or per member
of a sweep, seeded with its config's seed: ``run_generator``), never from the process-wide
generator, so two sessions starting at once get what each would get alone. Since a weight is
``randn(shape, generator=g) * init_std`` in parameter order, a model drawn from the
process-wide generator freshly seeded with s has the same weights as one drawn from
``run_generator(s)`` (tests hold the step core to that: the weights are what they were).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def run_generator(seed: int) -> torch.Generator:
    """The CPU generator a run (or a sweep member) with this seed draws its weights from."""
    return torch.Generator().manual_seed(seed)


def initial_parameters(
    shapes: Iterable[tuple[str, tuple[int, ...] | torch.Size]],
    init_std: float,
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """Name -> CPU float32 initial value for ``(name, shape)`` pairs in parameter order:
    ``randn(shape, generator) * init_std`` for a weight (``W_*``), zeros for a bias."""
    return {
        name: torch.randn(tuple(shape), generator=generator) * init_std
        if name.startswith("W_")
        else torch.zeros(tuple(shape))
        for name, shape in shapes
    }
