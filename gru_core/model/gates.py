"""The gate registry: one place for what each gate is, its range, when it counts as saturated,
and how the dashboard names and explains it.

Read by the models (which gates a cell has), the trainer's gate statistics, the figures, the
captions and the tests. A plain tanh RNN has no gates: its hidden state is shown by the
memory views, not here.

Saturation: a sigmoid gate (values in (0, 1)) is saturated below ``SAT_LOW`` or above
``SAT_HIGH``; a tanh-valued one (in (-1, 1)) when ``|v| > SAT_HIGH``. Either way its local
derivative is under about 0.05 (sigmoid) or 0.1 (tanh), so it passes little gradient.

Words: ``title`` and ``meaning`` are the registry's English (marked for the catalogue);
``label``, ``caption`` and ``saturation_rule`` read them in the language in force
(``gru_core.i18n``), so a page words a gate when it draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gru_core.i18n import N_, _

SAT_LOW, SAT_HIGH = 0.05, 0.95


@dataclass(frozen=True)
class Gate:
    name: str  # key in ForwardOutput.gates and in the telemetry columns ('Z', 'H_tilde')
    symbol: str  # as the equations write it ('Z', 'H̃')
    title: str  # for titles and legends ('update gate Z'), English; shown as ``label``
    activation: str  # 'sigmoid' (values in (0, 1)) or 'tanh' (values in (-1, 1))
    meaning: str  # one sentence: what a value near either end means; shown as ``caption``

    @property
    def label(self) -> str:
        """The title in the language in force ('update gate Z', '更新门 Z')."""
        return _(self.title)

    @property
    def caption(self) -> str:
        """The meaning in the language in force."""
        return _(self.meaning)

    @property
    def range(self) -> tuple[float, float]:
        return (0.0, 1.0) if self.activation == "sigmoid" else (-1.0, 1.0)

    def saturated(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the saturated entries of ``values`` (see the module docstring)."""
        v = np.asarray(values)
        if self.activation == "sigmoid":
            return (v < SAT_LOW) | (v > SAT_HIGH)
        return np.abs(v) > SAT_HIGH

    @property
    def saturation_rule(self) -> str:
        """When a value counts as saturated, in words (the language in force)."""
        if self.activation == "sigmoid":
            return _("below {low} or above {high}").format(low=f"{SAT_LOW:g}", high=f"{SAT_HIGH:g}")
        return _("|value| above {high}").format(high=f"{SAT_HIGH:g}")


GATES: dict[str, Gate] = {
    g.name: g
    for g in (
        Gate(
            "Z",
            "Z",
            N_("update gate Z"),
            "sigmoid",
            N_("Z near 1 keeps the old state H_{t-1}; near 0 writes the candidate H̃ in its place."),
        ),
        Gate(
            "R",
            "R",
            N_("reset gate R"),
            "sigmoid",
            N_("R near 0 hides the old state from the candidate; near 1 lets it through."),
        ),
        Gate(
            "H_tilde",
            "H̃",
            N_("candidate state H̃"),
            "tanh",
            N_("The new content the cell proposes; ±1 means its tanh is saturated."),
        ),
        Gate(
            "I",
            "I",
            N_("input gate I"),
            "sigmoid",
            N_("I near 1 writes the candidate C̃ into the cell; near 0 ignores it."),
        ),
        Gate(
            "F",
            "F",
            N_("forget gate F"),
            "sigmoid",
            N_("F near 1 keeps the old cell C_{t-1}; near 0 forgets it."),
        ),
        Gate(
            "O",
            "O",
            N_("output gate O"),
            "sigmoid",
            N_("O near 1 shows the cell in H_t; near 0 hides it."),
        ),
        Gate(
            "C_tilde",
            "C̃",
            N_("candidate cell C̃"),
            "tanh",
            N_("The new content for the cell; ±1 means its tanh is saturated."),
        ),
    )
}

# The gates each model has, in the order its forward returns them; the first two are plotted.
MODEL_GATES: dict[str, tuple[str, ...]] = {
    "gru": ("Z", "R", "H_tilde"),
    "rnn": (),
    "lstm": ("I", "F", "O", "C_tilde"),
    "gru_reset_only": ("R", "H_tilde"),  # Z = 0: H_t = H_tilde_t
    "gru_update_only": ("Z", "H_tilde"),  # R = 1: nothing is reset
}


def gate(name: str) -> Gate:
    """The registry entry of ``name``; ValueError for a name no model has."""
    try:
        return GATES[name]
    except KeyError:
        raise ValueError(f"unknown gate {name!r}: expected one of {', '.join(GATES)}") from None


def label(name: str) -> str:
    """A gate's label (the language in force), or the name itself for something that is not a
    registered gate."""
    entry = GATES.get(name)
    return entry.label if entry else name
