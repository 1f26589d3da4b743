"""The theory a trainability map draws: the largest Lyapunov exponent λ of each cell's
untrained network, and the edge of chaos (the init std where λ = 0) of each model and hidden
size, from ``gru_core.theory``.

λ depends on the model, the hidden size and the init std only (the recurrence at
initialisation, driven by the training text's own characters), so a map computes it once per
distinct (model, hidden size, init std) among its cells and the edge once per distinct
(model, hidden size), this only when init std is an axis (where the line is drawn): a few
hundred Jacobian-vector products each, cheap next to training.
The map draws the edge as "edge of chaos (theory, at initialisation)" on its init-std axis,
shows λ in each cell's hover, and writes it to the CSV (column ``lambda``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from torch import Tensor

from gru_core.sweep.spec import SweepSpec


@dataclass(frozen=True)
class MapTheory:
    """λ per (model, hidden size, init std) and the edge per (model, hidden size)."""

    lambdas: dict[tuple[str, int, float], float] = field(default_factory=dict)
    edges: dict[tuple[str, int], float | None] = field(default_factory=dict)  # None: no crossing

    def lam(self, model: str, hidden_size: int, init_std: float) -> float | None:
        return self.lambdas.get((model, hidden_size, init_std))


def map_theory(spec: SweepSpec, tokens: Tensor, vocab_size: int) -> MapTheory:
    """λ and the edge for every cell of ``spec``, driven by ``tokens`` (the training text's
    ids, on the CPU). The theory module is looked up when called (``importlib``), so a test
    can stand in for it."""
    theory = importlib.import_module("gru_core.theory")
    tokens = tokens.cpu()
    lambdas: dict[tuple[str, int, float], float] = {}
    edges: dict[tuple[str, int], float | None] = {}
    for cell in spec.cells():
        c = cell.config
        if (c.model, c.hidden_size, c.init_std) not in lambdas:
            lambdas[(c.model, c.hidden_size, c.init_std)] = float(
                theory.lyapunov_exponent(c.model, c.hidden_size, c.init_std, tokens, vocab_size)
            )
        if "init_std" in (spec.x_axis, spec.y_axis) and (c.model, c.hidden_size) not in edges:
            edge = theory.edge_of_chaos(c.model, c.hidden_size, tokens, vocab_size)
            edges[(c.model, c.hidden_size)] = None if edge is None else float(edge)
    return MapTheory(lambdas, edges)
