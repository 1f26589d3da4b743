"""Teaching text: the equations of the chosen cell (LaTeX), the charts' captions and the
divergence advice. (Lesson texts live with their settings in ``lessons.py``; what each gate
means, in the gate registry ``gru_core.model.gates``.)

The symbols match the charts: Z and R are the gates plotted in the gate views, H_tilde the
candidate state, ||dL/dH_t|| the gradient through time, θ the clip threshold.
"""

from __future__ import annotations

from gru_core.config import MODEL_TITLES, TrainConfig
from gru_core.model.gates import GATES
from gru_core.run.records import Outcome
from gru_core.run.verdict import Verdict

_Z = r"\mathbf{Z}_t &= \sigma(\mathbf{X}_t \mathbf{W}_{xz} + \mathbf{H}_{t-1}\mathbf{W}_{hz} + \mathbf{b}_z)\\"
_R = r"\mathbf{R}_t &= \sigma(\mathbf{X}_t \mathbf{W}_{xr} + \mathbf{H}_{t-1}\mathbf{W}_{hr} + \mathbf{b}_r)\\"
_CANDIDATE = {
    "d2l": r"\tilde{\mathbf{H}}_t &= \tanh(\mathbf{X}_t \mathbf{W}_{xh} + "
    r"(\mathbf{R}_t \odot \mathbf{H}_{t-1})\mathbf{W}_{hh} + \mathbf{b}_h)"
    r"\\",
    "cudnn": r"\tilde{\mathbf{H}}_t &= \tanh(\mathbf{X}_t \mathbf{W}_{xh} + \mathbf{b}_{xh} + "
    r"\mathbf{R}_t \odot (\mathbf{H}_{t-1}\mathbf{W}_{hh} + \mathbf{b}_{hh}))"
    r"\\",
}
# R_t = 1 (the update-only GRU): nothing is reset
_CANDIDATE_NO_RESET = {
    "d2l": r"\tilde{\mathbf{H}}_t &= \tanh(\mathbf{X}_t \mathbf{W}_{xh} + "
    r"\mathbf{H}_{t-1}\mathbf{W}_{hh} + \mathbf{b}_h)\\",
    "cudnn": r"\tilde{\mathbf{H}}_t &= \tanh(\mathbf{X}_t \mathbf{W}_{xh} + \mathbf{b}_{xh} + "
    r"\mathbf{H}_{t-1}\mathbf{W}_{hh} + \mathbf{b}_{hh})\\",
}
_H = r"\mathbf{H}_t &= \mathbf{Z}_t \odot \mathbf{H}_{t-1} + (1 - \mathbf{Z}_t) \odot \tilde{\mathbf{H}}_t\\"
_OUT = r"\mathbf{O}_t &= \mathbf{H}_t \mathbf{W}_{hq} + \mathbf{b}_q"
# What a half GRU fixes (d2l's exercise 4), in place of its missing gate's line
_NO_Z = r"\mathbf{Z}_t &= \mathbf{0} \quad\text{(no update gate)}\\"
_H_IS_CANDIDATE = r"\mathbf{H}_t &= \tilde{\mathbf{H}}_t\\"
_NO_R = r"\mathbf{R}_t &= \mathbf{1} \quad\text{(no reset gate)}\\"
_RNN = r"""
\begin{aligned}
\mathbf{H}_t &= \tanh(\mathbf{X}_t \mathbf{W}_{xh} + \mathbf{H}_{t-1}\mathbf{W}_{hh} + \mathbf{b}_h)\\
\mathbf{O}_t &= \mathbf{H}_t \mathbf{W}_{hq} + \mathbf{b}_q
\end{aligned}
"""
_LSTM = r"""
\begin{aligned}
\mathbf{I}_t, \mathbf{F}_t, \mathbf{O}_t &= \sigma(\mathbf{X}_t \mathbf{W}_{x\cdot} +
  \mathbf{H}_{t-1}\mathbf{W}_{h\cdot} + \mathbf{b}_{\cdot})\\
\tilde{\mathbf{C}}_t &= \tanh(\mathbf{X}_t \mathbf{W}_{xc} + \mathbf{H}_{t-1}\mathbf{W}_{hc} + \mathbf{b}_c)\\
\mathbf{C}_t &= \mathbf{F}_t \odot \mathbf{C}_{t-1} + \mathbf{I}_t \odot \tilde{\mathbf{C}}_t,
  \quad \mathbf{H}_t = \mathbf{O}_t \odot \tanh(\mathbf{C}_t)
\end{aligned}
"""
CAPTIONS = {
    "perplexity": (
        "**Perplexity** (log scale) is exp(mean cross-entropy): how many characters the model "
        "is still choosing between. The faint line is each minibatch; the bold ones are d2l's "
        "training perplexity and the held-out validation perplexity per epoch. Both should fall "
        "towards 1; validation staying well above training means memorising, and a jump up "
        "means the step was too large."
    ),
    "grad_norm": (
        "**Global gradient norm per step** (log scale), before and after clipping, with the "
        "clip threshold θ as a line. Clipping rescales the whole gradient to length θ "
        "whenever it is longer, so 'after' never rises above the line. Spikes of 'before' "
        "that tower over θ are exploding gradients that clipping caught; dotted verticals "
        "mark live changes of θ or the learning rate."
    ),
    "groups": (
        "**Gradient norm per parameter group** (log scale): input weights W_x·, recurrent "
        "weights W_h·, biases and the output layer. The recurrent weights' gradient sums "
        "products of Jacobians over time steps, so an explosion through time shows there "
        "first. Run a GRU and an RNN "
        "with the same settings and overlay them under Compare runs to see whether the GRU's "
        "~3x parameters call for a higher threshold."
    ),
    "bands": (
        "**Distribution of a gate over training**: the light band holds the middle 90% of all "
        "gate values in each minibatch, the dark band the middle 50%, the line the median. "
        f"The dotted right-hand axis is the fraction saturated ({GATES['Z'].saturation_rule}): "
        "saturated gates pass almost no gradient."
    ),
    "heatmap": (
        "**Gate values on the probe text** 'time traveller ...', read from a zero state by the "
        "current model, refreshed live: one column per character, one row per hidden unit. "
        "Bright Z cells are units keeping their memory through that character; dark cells "
        "overwrite it with the candidate state."
    ),
    "no_gates": (
        "A plain RNN has no gates: every step overwrites its whole state, "
        "H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h). Switch Model to GRU or LSTM to see gates; "
        "the Memory view shows what the RNN's hidden units respond to."
    ),
    "probe": (
        "Each character of the probe coloured by its **mean Z** over hidden units: darker "
        "means the model keeps more of its old state while reading that character."
    ),
    "flow_reach": (
        "**How far back one loss reaches**: the size of ∂ℓ_T/∂H_t, the gradient of the last "
        "character's loss alone flowing back to every earlier state, divided by its value at "
        "t = T (dashed: the same for the mean loss of the last 5 characters). A line that "
        "falls by orders of magnitude towards t = 1 is the vanishing gradient: early "
        "characters barely shape what the model learns at the end. One that holds near 1 "
        "still carries the signal back; one that rises is exploding."
    ),
    "flow_heat": (
        "**The same over training** (log10 colour, 0 = as strong as at t = T): one row per "
        "recorded step, one column per time step t. A dark left side means the model cannot "
        "learn dependencies that long. Compare a GRU and an RNN at sequence length 200."
    ),
    "flow_line": (
        "**The total gradient** ||∂L/∂H_t||, summed over every position's loss: each H_t gets "
        "gradient from its own output as well as from later steps, so this line stays flat "
        "even where one loss's reach vanishes. It shows explosions (a rise towards t = 1), "
        "not vanishing."
    ),
    "map_theory": (
        "**Edge of chaos (theory, at initialisation)**, the dashed line: where the untrained "
        "network's largest Lyapunov exponent λ crosses 0. Left of it (λ < 0) a signal and its "
        "gradient shrink about e^λ per step back (vanishing); right of it they grow "
        "(exploding). Each cell's λ is in its hover."
    ),
    "compare_reach": (
        "**Run by run: how far back one loss reaches**: each run's last recorded "
        "‖∂ℓ_T/∂H_t‖, divided by its value at t = T, on one pair of axes (t = 1..T; what "
        "underflows is drawn at 1e-30, marked 'below 1e-30'). The **reach** is how many steps "
        "back it stays at least 1e-3 of its size at T: past that, early characters barely "
        "shape what the model learns."
    ),
    "compare_empty": (
        "Finished and stopped runs are kept here (up to {n} per session; pin one to keep it). "
        "Run the GRU, then the RNN, or init std 0.01 against 0.1, and overlay them."
    ),
    "compare": (
        "Does a GRU need a higher clip threshold than an RNN? Overlay a GRU and an RNN run "
        "with the same settings and compare their gradient norms before clipping and the share "
        "of steps clipped."
    ),
    # Shown only once a GRU and an RNN run are overlaid: an explanation to test against
    # their numbers, never an answer before the class has data.
    "compare_explain": (
        "The study note's explanation, to check against these numbers: ~3x the parameters do "
        "not by themselves make gradients explode; what matters is how the gradient is carried "
        "through time, and the GRU's update adds (Z keeps the old state) where the RNN "
        "multiplies by W_hh at every step."
    ),
    "memory_empty": (
        "The Memory view reads a model's weights: start a run (its weights are read about once "
        "a second while it trains), or finish one (saved runs keep their final weights until "
        "the page is reloaded)."
    ),
    "memory_unit": (
        "Each character is coloured by the chosen hidden unit's value after reading it: red "
        "positive, blue negative, white near 0. Hover a character for the value and the "
        "model's five likeliest next characters."
    ),
    "connectivity": (
        "**Connectivity** of position {t}, predicting '{next}' (p = {p:.2f}): the size of "
        "∂ log p / ∂(input of character s) for every earlier character s, log scale. Tall "
        "bars far to the left mean the prediction still depends on characters long past; "
        "90% of the total lies within the last {n} characters."
    ),
    "unit_finder": (
        "Units ranked by how closely their activation follows the pattern (|Pearson r| over "
        "the passage's characters). A unit with r near ±1 switches with the pattern; most "
        "units mix many features, so r of 0.3-0.5 is already a clear preference."
    ),
    "memory_compare_empty": (
        "Finish two runs (say a GRU and an RNN with the same settings) to compare how far "
        "back each one's predictions reach."
    ),
    "connectivity_compare": (
        "The same position's connectivity for each model, normalised so each sums to 1, "
        "against how many characters back the input lies. A curve that falls steeply forgets "
        "quickly; a flatter one still uses characters far back."
    ),
    "map": (
        "Every cell is a whole training run with its own settings; all of them train at once, "
        "on the same minibatches, and the map fills in as they finish. The study note's "
        "questions are about this landscape: why an init std of 0.01 and not 0.1 or 1? does "
        "a GRU need a higher clip threshold than an RNN? where does a learning rate stop "
        "being safe? Click a cell to open that run in the lab."
    ),
    "map_read": (
        "Colour: the final validation perplexity (log scale; lower is better, 28 is guessing), "
        "on one scale for every map side by side: the same colour is the same number. Cells "
        "outside the scale say what they are in words, with the legend's colours: diverged "
        "(the step is written in them), blew up (finite but exploded), memorised (it knows "
        "the training text but does worse on new text), not finished (…). Hover a cell for "
        "every number and its perplexity curve."
    ),
}

CLIPPING = (
    r"\mathbf{g} \leftarrow \min\left(1, \frac{\theta}{\|\mathbf{g}\|}\right)\mathbf{g},"
    r"\quad \|\mathbf{g}\|^2 = \textstyle\sum_{W} \|\partial L / \partial W\|^2"
)


def model_name(config: TrainConfig) -> str:
    """How the page names the cell: 'GRU (d2l variant)', 'GRU (reset gate only, cudnn
    variant)', 'RNN', 'LSTM'."""
    name = MODEL_TITLES[config.model]
    if not config.model.startswith("gru"):
        return name
    variant = f"{config.gru_variant} variant"
    return f"{name[:-1]}, {variant})" if name.endswith(")") else f"{name} ({variant})"


def equation_legend(config: TrainConfig) -> str:
    """What the symbols of ``equations(config)`` are, in a line under them."""
    if config.model == "rnn":
        return "H_t: hidden state, overwritten at every step · W_hh: recurrent weights"
    if config.model == "lstm":
        return "I, F, O: input, forget and output gates · C: the cell · ⊙: elementwise product"
    where = "before W_hh (d2l)" if config.gru_variant == "d2l" else "after W_hh (cuDNN, nn.GRU)"
    z = "Z: update gate (Z near 1 keeps the old state)"
    r = f"R: reset gate, applied {where}"
    if config.model == "gru_reset_only":
        z = "Z fixed at 0: no update gate, the candidate overwrites the state at every step"
    if config.model == "gru_update_only":
        r = "R fixed at 1: no reset gate, the whole old state feeds the candidate"
    return f"{z} · {r} · H̃: candidate state · σ: sigmoid · ⊙: elementwise product"


def equations(config: TrainConfig) -> str:
    """LaTeX for the cell the config trains; a half GRU shows what it fixes (Z_t = 0 or
    R_t = 1) in place of the missing gate's line."""
    if config.model == "rnn":
        return _RNN
    if config.model == "lstm":
        return _LSTM
    v = config.gru_variant
    if config.model == "gru_reset_only":
        lines = [_NO_Z, _R, _CANDIDATE[v], _H_IS_CANDIDATE]
    elif config.model == "gru_update_only":
        lines = [_Z, _NO_R, _CANDIDATE_NO_RESET[v], _H]
    else:
        lines = [_Z, _R, _CANDIDATE[v], _H]
    return "\n\\begin{aligned}\n" + "\n".join([*lines, _OUT]) + "\n\\end{aligned}\n"


def _explosion_tips(config: TrainConfig) -> list[str]:
    tips = []
    if config.clip_threshold is None:
        tips.append("turn **clipping on** (θ = 1 is d2l's choice)")
    elif config.clip_threshold > 10:
        tips.append(f"use a **smaller clip threshold** than θ = {config.clip_threshold:g}")
    if config.init_std > 0.1:
        tips.append(f"**lower the init std** (d2l uses 0.01; you have {config.init_std:g})")
    if config.lr > 1:
        tips.append(f"**lower the learning rate** (d2l uses 1; you have {config.lr:g})")
    return tips or ["lower the learning rate or the init std, or clip harder"]


def _stall_tips(config: TrainConfig) -> list[str]:
    tips = []
    if config.lr < 0.5:
        tips.append(f"**raise the learning rate** (d2l uses 1; you have {config.lr:g})")
    if config.clip_threshold is not None and config.clip_threshold < 0.1:
        tips.append(
            f"**raise the clip threshold** (θ = {config.clip_threshold:g} makes every step tiny)"
        )
    if config.init_std > 0.1:
        # An RNN has no gates: what saturates is its tanh hidden units.
        what = "the tanh units saturate" if config.model == "rnn" else "the gates saturate"
        tips.append(f"**lower the init std** (with {config.init_std:g} {what}; d2l: 0.01)")
    if config.init_std < 0.002:
        tips.append(f"**raise the init std** (d2l uses 0.01; you have {config.init_std:g})")
    tips.append("**train for more epochs**")
    return tips


def divergence_advice(outcome: Outcome, config: TrainConfig) -> str:
    """Where it diverged and what to try, in Markdown (``config``: the settings in force)."""
    where = f"**The run diverged at step {outcome.step}.**"
    if outcome.last_finite_loss is not None:
        where += (
            f" Last finite loss {outcome.last_finite_loss:.4g}, last finite gradient norm "
            f"{outcome.last_finite_grad_norm:.4g}."
        )
    else:
        where += " Its very first gradient was not finite, so nothing was applied."
    tips = _explosion_tips(config)
    return where + " Remedy: " + "; ".join(tips) + ". Everything recorded up to that step is kept."


def memorised_advice(verdict: Verdict, config: TrainConfig) -> str:
    """Both numbers in a class's words, and what to try (``verdict.memorised``'s rule)."""
    final, best = verdict.final_val_perplexity, verdict.best_val_perplexity
    guess = verdict.vocab_size
    if final is None or best is None or guess is None:
        return f"**{verdict.headline}**"
    by_heart = (
        f"It knows the {config.max_tokens:,} training characters by heart "
        f"(training perplexity {verdict.final_perplexity or 0:.2f}); "
    )
    if final >= guess:
        on_new = f"on new text it does worse than guessing: {final:.0f} vs {guess}"
    else:
        on_new = (
            f"on new text it got worse as it trained on: {final:.0f} now, {best:.0f} at its best"
        )
    tips = (
        "**more text** (a larger training slice)",
        "**fewer epochs**",
        f"**a smaller model** (hidden {config.hidden_size} is a lot for this text)",
        f"keep **the best epoch**: held-out perplexity {best:.1f}",
    )
    return f"**{by_heart}{on_new}.** Try: " + "; ".join(tips) + "."


def outcome_advice(verdict: Verdict, outcome: Outcome, config: TrainConfig) -> str:
    """The verdict's headline and, for a failure, what to try next (Markdown)."""
    if verdict.kind == "diverged":
        return divergence_advice(outcome, config)
    if verdict.kind == "blew up":
        return (
            f"**{verdict.headline}** The weights were thrown into a regime where the loss "
            "explodes without ever becoming NaN. Remedy: "
            + "; ".join(_explosion_tips(config))
            + "."
        )
    if verdict.kind == "did not learn":
        return f"**{verdict.headline}** Try: " + "; ".join(_stall_tips(config)) + "."
    if verdict.kind == "memorised":
        return memorised_advice(verdict, config)
    if verdict.kind == "out of memory":
        return (
            f"**{outcome.message}.** Memory was released; try a smaller hidden size, batch or "
            "sequence length, or the CPU."
        )
    if verdict.kind == "error":
        return f"**The run stopped with an error:** {outcome.message}"
    return f"**{verdict.headline}**"
