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

At the book's hidden size the edge's bisection is a dozen λ evaluations, about as long as
training a small map on a loaded 2-core CPU, so the job computes the theory beside the
training (its own thread) and every value is remembered for the life of the process, keyed
by the theory's function, the model, hidden size, init std and the text (``MAX_REMEMBERED``
values at most): a second map over the same settings draws its theory at once. A stopped map
stops its theory too: ``map_theory`` looks at ``stopping`` before each λ or edge and then
returns what it has (the job joins its theory thread, ``sweep.job``).
"""

from __future__ import annotations

import hashlib
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

from gru_core.sweep.spec import SweepSpec

MAX_REMEMBERED = 4096
_remembered: dict[tuple, float | None] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class MapTheory:
    """λ per (model, hidden size, init std) and the edge per (model, hidden size)."""

    lambdas: dict[tuple[str, int, float], float] = field(default_factory=dict)
    edges: dict[tuple[str, int], float | None] = field(default_factory=dict)  # None: no crossing

    def lam(self, model: str, hidden_size: int, init_std: float) -> float | None:
        return self.lambdas.get((model, hidden_size, init_std))


def map_theory(
    spec: SweepSpec,
    tokens: Tensor,
    vocab_size: int,
    stopping: Callable[[], bool] = lambda: False,
) -> MapTheory:
    """λ and the edge for every cell of ``spec``, driven by ``tokens`` (the training text's
    ids, on the CPU); once ``stopping()`` is true, the values computed so far (no λ or edge
    starts after that). The theory module is looked up when called (``importlib``), so a
    test can stand in for it."""
    theory = importlib.import_module("gru_core.theory")
    tokens = tokens.cpu()
    text = (hashlib.sha1(tokens.numpy().tobytes()).hexdigest(), vocab_size)
    lambdas: dict[tuple[str, int, float], float] = {}
    edges: dict[tuple[str, int], float | None] = {}
    for cell in spec.cells():
        if stopping():
            break
        c = cell.config
        cell_key = (c.model, c.hidden_size, c.init_std)
        variant = c.gru_variant
        if cell_key not in lambdas:
            lam = _remember(theory.lyapunov_exponent, cell_key, variant, text, tokens)
            lambdas[cell_key] = float(lam)  # type: ignore[arg-type]
        if "init_std" in (spec.x_axis, spec.y_axis) and cell_key[:2] not in edges:
            if stopping():
                break
            edges[cell_key[:2]] = _remember(
                theory.edge_of_chaos, cell_key[:2], variant, text, tokens
            )
    return MapTheory(lambdas, edges)


def _remember(
    fn: Callable[..., float | None],
    args: tuple,
    variant: str,
    text: tuple[str, int],
    tokens: Tensor,
) -> float | None:
    """``fn(*args, tokens, vocab_size, gru_variant=variant)`` once per (fn, args, variant,
    text) for the life of the process (module docstring); ``text`` is (the tokens' SHA-1,
    vocab size)."""
    key = (fn, *args, variant, *text)
    with _lock:
        if key in _remembered:
            return _remembered[key]
    value = fn(*args, tokens, text[1], gru_variant=variant)
    value = None if value is None else float(value)
    with _lock:
        if len(_remembered) >= MAX_REMEMBERED:
            _remembered.clear()
        _remembered[key] = value
    return value
