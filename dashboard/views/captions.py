"""The charts' captions, in the language in force when read (``CAPTIONS["bands"]``).

Each caption is English marked with ``N_`` for the catalogue (``gru_core.i18n``);
``Worded`` looks it up in the reader's language on every read, so a module-level table still
speaks the language of the page that draws it. A ``{field}`` is filled after the lookup.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from gru_core.i18n import N_, _


class Worded(Mapping[str, str]):
    """A table of texts marked with ``N_``, each read in the language in force: under
    ``zh_CN``, ``CAPTIONS["bands"]`` is Chinese; a ``{field}`` is filled after the lookup."""

    def __init__(self, texts: dict[str, str]) -> None:
        self._texts = texts

    def __getitem__(self, key: str) -> str:
        return _(self._texts[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)

    def ids(self) -> list[str]:
        """The English texts, the catalogue's ids."""
        return list(self._texts.values())


_TEXTS = {
    "perplexity": N_(
        "**Perplexity** (log scale) is exp(mean cross-entropy): how many characters the model "
        "is still choosing between. The faint line is each minibatch; the bold ones are d2l's "
        "training perplexity and the held-out validation perplexity per epoch. Both should fall "
        "towards 1; validation staying well above training means memorising, and a jump up "
        "means the step was too large."
    ),
    "grad_norm": N_(
        "**Global gradient norm per step** (log scale), before and after clipping, with the "
        "clip threshold θ as a line. Clipping rescales the whole gradient to length θ "
        "whenever it is longer, so 'after' never rises above the line. Spikes of 'before' "
        "that tower over θ are exploding gradients that clipping caught; dotted verticals "
        "mark live changes of θ or the learning rate."
    ),
    "groups": N_(
        "**Gradient norm per parameter group** (log scale): input weights W_x·, recurrent "
        "weights W_h·, biases and the output layer. The recurrent weights' gradient sums "
        "products of Jacobians over time steps, so an explosion through time shows there "
        "first. Run a GRU and an RNN "
        "with the same settings and overlay them under Compare runs to see whether the GRU's "
        "~3x parameters call for a higher threshold."
    ),
    "bands": N_(
        "**Distribution of a gate over training**: the light band holds the middle 90% of all "
        "gate values in each minibatch, the dark band the middle 50%, the line the median. "
        "The dotted right-hand axis is the fraction saturated ({rule}): "
        "saturated gates pass almost no gradient."
    ),
    "heatmap": N_(
        "**Gate values on the probe text** 'time traveller ...', read from a zero state by the "
        "current model, refreshed live: one column per character, one row per hidden unit. "
        "Bright Z cells are units keeping their memory through that character; dark cells "
        "overwrite it with the candidate state."
    ),
    "no_gates": N_(
        "A plain RNN has no gates: every step overwrites its whole state, "
        "H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h). Switch Model to GRU or LSTM to see gates; "
        "the Memory view shows what the RNN's hidden units respond to."
    ),
    "probe": N_(
        "Each character of the probe coloured by its **mean Z** over hidden units: darker "
        "means the model keeps more of its old state while reading that character."
    ),
    "flow_reach": N_(
        "**How far back one loss reaches**: the size of ∂ℓ_T/∂H_t, the gradient of the last "
        "character's loss alone flowing back to every earlier state, divided by its value at "
        "t = T (dashed: the same for the mean loss of the last 5 characters). A line that "
        "falls by orders of magnitude towards t = 1 is the vanishing gradient: early "
        "characters barely shape what the model learns at the end. One that holds near 1 "
        "still carries the signal back; one that rises is exploding."
    ),
    "flow_heat": N_(
        "**The same over training** (log10 colour, 0 = as strong as at t = T): one row per "
        "recorded step, one column per time step t. A dark left side means the model cannot "
        "learn dependencies that long. Compare a GRU and an RNN at sequence length 200."
    ),
    "flow_line": N_(
        "**The total gradient** ||∂L/∂H_t||, summed over every position's loss: each H_t gets "
        "gradient from its own output as well as from later steps, so this line stays flat "
        "even where one loss's reach vanishes. It shows explosions (a rise towards t = 1), "
        "not vanishing."
    ),
    "map_theory": N_(
        "**Edge of chaos (theory, at initialisation)**, the dashed line: where the untrained "
        "network's largest Lyapunov exponent λ crosses 0. Left of it (λ < 0) a signal and its "
        "gradient shrink about e^λ per step back (vanishing); right of it they grow "
        "(exploding). Each cell's λ is in its hover."
    ),
    "compare_reach": N_(
        "**Run by run: how far back one loss reaches**: each run's last recorded "
        "‖∂ℓ_T/∂H_t‖, divided by its value at t = T, on one pair of axes (t = 1..T; what "
        "underflows is drawn at 1e-30, marked 'below 1e-30'). The **reach** is how many steps "
        "back it stays at least 1e-3 of its size at T: past that, early characters barely "
        "shape what the model learns."
    ),
    "compare_empty": N_(
        "Finished and stopped runs are kept here (up to {n} per session; pin one to keep it). "
        "Run the GRU, then the RNN, or init std 0.01 against 0.1, and overlay them."
    ),
    "compare": N_(
        "Does a GRU need a higher clip threshold than an RNN? Overlay a GRU and an RNN run "
        "with the same settings and compare their gradient norms before clipping and the share "
        "of steps clipped."
    ),
    # Shown only once a GRU and an RNN run are overlaid: an explanation to test against
    # their numbers, never an answer before the class has data.
    "compare_explain": N_(
        "The study note's explanation, to check against these numbers: ~3x the parameters do "
        "not by themselves make gradients explode; what matters is how the gradient is carried "
        "through time, and the GRU's update adds (Z keeps the old state) where the RNN "
        "multiplies by W_hh at every step."
    ),
    "memory_empty": N_(
        "The Memory view reads a model's weights: start a run (its weights are read about once "
        "a second while it trains), or finish one (saved runs keep their final weights until "
        "the page is reloaded)."
    ),
    "memory_unit": N_(
        "Each character is coloured by the chosen hidden unit's value after reading it: red "
        "positive, blue negative, white near 0. Hover a character for the value and the "
        "model's five likeliest next characters."
    ),
    "connectivity": N_(
        "**Connectivity** of position {t}, predicting '{next}' (p = {p:.2f}): the size of "
        "∂ log p / ∂(input of character s) for every earlier character s, log scale. Tall "
        "bars far to the left mean the prediction still depends on characters long past; "
        "90% of the total lies within the last {n} characters."
    ),
    "unit_finder": N_(
        "Units ranked by how closely their activation follows the pattern (|Pearson r| over "
        "the passage's characters). A unit with r near ±1 switches with the pattern; most "
        "units mix many features, so r of 0.3-0.5 is already a clear preference."
    ),
    "memory_compare_empty": N_(
        "Finish two runs (say a GRU and an RNN with the same settings) to compare how far "
        "back each one's predictions reach."
    ),
    "connectivity_compare": N_(
        "The same position's connectivity for each model, normalised so each sums to 1, "
        "against how many characters back the input lies. A curve that falls steeply forgets "
        "quickly; a flatter one still uses characters far back."
    ),
    "map": N_(
        "Every cell is a whole training run with its own settings; all of them train at once, "
        "on the same minibatches, and the map fills in as they finish. The study note's "
        "questions are about this landscape: why an init std of 0.01 and not 0.1 or 1? does "
        "a GRU need a higher clip threshold than an RNN? where does a learning rate stop "
        "being safe? Click a cell to open that run in the lab."
    ),
    "map_read": N_(
        "Colour: the final validation perplexity (log scale; lower is better, 28 is guessing), "
        "on one scale for every map side by side: the same colour is the same number. Cells "
        "outside the scale say what they are in words, with the legend's colours: diverged "
        "(the step is written in them), blew up (finite but exploded), memorised (it knows "
        "the training text but does worse on new text), not finished (…). Hover a cell for "
        "every number and its perplexity curve."
    ),
}
CAPTIONS = Worded(_TEXTS)
