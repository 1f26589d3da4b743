"""Teaching text: the equations of the chosen cell (LaTeX), the charts' captions and the
divergence advice. (Lesson texts live with their settings in ``lessons.py``; what each gate
means, in the gate registry ``gru_core.model.gates``.)

The symbols match the charts: Z and R are the gates plotted in the gate views, H_tilde the
candidate state, ||dL/dH_t|| the gradient through time, θ the clip threshold.

Every word goes through the catalogue (``gru_core.i18n``): the charts' captions are
``captions.CAPTIONS`` (re-exported here), and the advice is worded when asked for. The
equations stay LaTeX; only the words in their ``\text{...}`` are translated.
"""

from __future__ import annotations

from dashboard.views.captions import CAPTIONS
from gru_core.config import MODEL_TITLES, TrainConfig
from gru_core.i18n import N_, _, worded
from gru_core.model.gates import GATES
from gru_core.run.records import Outcome
from gru_core.run.verdict import Verdict

__all__ = [
    "CAPTIONS",
    "CLIPPING",
    "bands_caption",
    "equation_legend",
    "equations",
    "model_name",
    "outcome_advice",
]


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
_NO_Z = r"\mathbf{Z}_t &= \mathbf{0} \quad\text{({no_gate})}\\"
_H_IS_CANDIDATE = r"\mathbf{H}_t &= \tilde{\mathbf{H}}_t\\"
_NO_R = r"\mathbf{R}_t &= \mathbf{1} \quad\text{({no_gate})}\\"
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
CLIPPING = (
    r"\mathbf{g} \leftarrow \min\left(1, \frac{\theta}{\|\mathbf{g}\|}\right)\mathbf{g},"
    r"\quad \|\mathbf{g}\|^2 = \textstyle\sum_{W} \|\partial L / \partial W\|^2"
)


# A GRU's name with its variant, by model (the variant is 'd2l' or 'cudnn', a name).
_GRU_NAMES = {
    "gru": N_("GRU ({variant} variant)"),
    "gru_reset_only": N_("GRU (reset gate only, {variant} variant)"),
    "gru_update_only": N_("GRU (update gate only, {variant} variant)"),
}


def model_name(config: TrainConfig) -> str:
    """How the page names the cell: 'GRU (d2l variant)', 'GRU (reset gate only, cudnn
    variant)', 'RNN', 'LSTM'."""
    if config.model in _GRU_NAMES:
        return _(_GRU_NAMES[config.model]).format(variant=config.gru_variant)
    return _(MODEL_TITLES[config.model])


def equation_legend(config: TrainConfig) -> str:
    """What the symbols of ``equations(config)`` are, in a line under them."""
    if config.model == "rnn":
        return _("H_t: hidden state, overwritten at every step · W_hh: recurrent weights")
    if config.model == "lstm":
        return _("I, F, O: input, forget and output gates · C: the cell · ⊙: elementwise product")
    z = _("Z: update gate (Z near 1 keeps the old state)")
    if config.gru_variant == "d2l":
        r = _("R: reset gate, applied before W_hh (d2l)")
    else:
        r = _("R: reset gate, applied after W_hh (cuDNN, nn.GRU)")
    if config.model == "gru_reset_only":
        z = _("Z fixed at 0: no update gate, the candidate overwrites the state at every step")
    if config.model == "gru_update_only":
        r = _("R fixed at 1: no reset gate, the whole old state feeds the candidate")
    rest = _("H̃: candidate state · σ: sigmoid · ⊙: elementwise product")
    return f"{z} · {r} · {rest}"


def equations(config: TrainConfig) -> str:
    """LaTeX for the cell the config trains; a half GRU shows what it fixes (Z_t = 0 or
    R_t = 1) in place of the missing gate's line (its words translated inside \\text)."""
    if config.model == "rnn":
        return _RNN
    if config.model == "lstm":
        return _LSTM
    v = config.gru_variant
    if config.model == "gru_reset_only":
        lines = [
            _NO_Z.replace("{no_gate}", _("no update gate")),
            _R,
            _CANDIDATE[v],
            _H_IS_CANDIDATE,
        ]
    elif config.model == "gru_update_only":
        lines = [_Z, _NO_R.replace("{no_gate}", _("no reset gate")), _CANDIDATE_NO_RESET[v], _H]
    else:
        lines = [_Z, _R, _CANDIDATE[v], _H]
    return "\n\\begin{aligned}\n" + "\n".join([*lines, _OUT]) + "\n\\end{aligned}\n"


def bands_caption(gates: list[str]) -> str:
    """The gate bands' caption, then what each of ``gates`` means (the gate registry's words)."""
    words = [CAPTIONS["bands"].format(rule=GATES["Z"].saturation_rule)]
    return " ".join(words + [_(GATES[g].caption) for g in gates])


def _explosion_tips(config: TrainConfig) -> list[str]:
    tips = []
    if config.clip_threshold is None:
        tips.append(_("turn **clipping on** (θ = 1 is d2l's choice)"))
    elif config.clip_threshold > 10:
        tips.append(
            _("use a **smaller clip threshold** than θ = {clip}").format(
                clip=f"{config.clip_threshold:g}"
            )
        )
    if config.init_std > 0.1:
        tips.append(
            _("**lower the init std** (d2l uses 0.01; you have {std})").format(
                std=f"{config.init_std:g}"
            )
        )
    if config.lr > 1:
        tips.append(
            _("**lower the learning rate** (d2l uses 1; you have {lr})").format(lr=f"{config.lr:g}")
        )
    return tips or [_("lower the learning rate or the init std, or clip harder")]


def _stall_tips(config: TrainConfig) -> list[str]:
    tips = []
    if config.lr < 0.5:
        tips.append(
            _("**raise the learning rate** (d2l uses 1; you have {lr})").format(lr=f"{config.lr:g}")
        )
    if config.clip_threshold is not None and config.clip_threshold < 0.1:
        tips.append(
            _("**raise the clip threshold** (θ = {clip} makes every step tiny)").format(
                clip=f"{config.clip_threshold:g}"
            )
        )
    if config.init_std > 0.1:
        # An RNN has no gates: what saturates is its tanh hidden units.
        if config.model == "rnn":
            tip = _("**lower the init std** (with {std} the tanh units saturate; d2l: 0.01)")
        else:
            tip = _("**lower the init std** (with {std} the gates saturate; d2l: 0.01)")
        tips.append(tip.format(std=f"{config.init_std:g}"))
    if config.init_std < 0.002:
        tips.append(
            _("**raise the init std** (d2l uses 0.01; you have {std})").format(
                std=f"{config.init_std:g}"
            )
        )
    tips.append(_("**train for more epochs**"))
    return tips


def _join(tips: list[str]) -> str:
    """Tips in one sentence: '; ' between them (the catalogue says how)."""
    return _("; ").join(tips)


def divergence_advice(outcome: Outcome, config: TrainConfig) -> str:
    """Where it diverged and what to try, in Markdown (``config``: the settings in force)."""
    where = _("**The run diverged at step {step}.**").format(step=outcome.step)
    if outcome.last_finite_loss is not None:
        where += " " + _("Last finite loss {loss}, last finite gradient norm {norm}.").format(
            loss=f"{outcome.last_finite_loss:.4g}", norm=f"{outcome.last_finite_grad_norm:.4g}"
        )
    else:
        where += " " + _("Its very first gradient was not finite, so nothing was applied.")
    return (
        where
        + " "
        + _("Remedy: {tips}. Everything recorded up to that step is kept.").format(
            tips=_join(_explosion_tips(config))
        )
    )


def memorised_advice(verdict: Verdict, config: TrainConfig) -> str:
    """Both numbers in a class's words, and what to try (``verdict.memorised``'s rule)."""
    final, best = verdict.final_val_perplexity, verdict.best_val_perplexity
    guess = verdict.vocab_size
    if final is None or best is None or guess is None:
        return f"**{verdict.headline}**"
    by_heart = _(
        "It knows the {chars} training characters by heart (training perplexity {train}); "
    ).format(chars=f"{config.max_tokens:,}", train=f"{verdict.final_perplexity or 0:.2f}")
    if final >= guess:
        on_new = _("on new text it does worse than guessing: {final} vs {guess}").format(
            final=f"{final:.0f}", guess=guess
        )
    else:
        on_new = _(
            "on new text it got worse as it trained on: {final} now, {best} at its best"
        ).format(final=f"{final:.0f}", best=f"{best:.0f}")
    tips = [
        _("**more text** (a larger training slice)"),
        _("**fewer epochs**"),
        _("**a smaller model** (hidden {hidden} is a lot for this text)").format(
            hidden=config.hidden_size
        ),
        _("keep **the best epoch**: held-out perplexity {best}").format(best=f"{best:.1f}"),
    ]
    return _("**{by_heart}{on_new}.** Try: {tips}.").format(
        by_heart=by_heart, on_new=on_new, tips=_join(tips)
    )


def outcome_advice(verdict: Verdict, outcome: Outcome, config: TrainConfig) -> str:
    """The verdict's headline and, for a failure, what to try next (Markdown)."""
    if verdict.kind == "diverged":
        return divergence_advice(outcome, config)
    if verdict.kind == "blew up":
        return _(
            "**{headline}** The weights were thrown into a regime where the loss explodes "
            "without ever becoming NaN. Remedy: {tips}."
        ).format(headline=verdict.headline, tips=_join(_explosion_tips(config)))
    if verdict.kind == "did not learn":
        return _("**{headline}** Try: {tips}.").format(
            headline=verdict.headline, tips=_join(_stall_tips(config))
        )
    if verdict.kind == "memorised":
        return memorised_advice(verdict, config)
    if verdict.kind == "out of memory":
        # The job's message: the device and the library's own first line, worded here.
        return _(
            "**It ran out of memory at step {step}** ({message}). Memory was released; try a "
            "smaller hidden size, batch or sequence length, or the CPU."
        ).format(step=outcome.step, message=worded(outcome.message))
    if verdict.kind == "error":  # the exception's own text
        return _("**The run stopped with an error:** {message}").format(
            message=worded(outcome.message)
        )
    return f"**{verdict.headline}**"
