"""What the student's data says, once they have answered in their own words.

``finding(key, evidence, scale)`` returns a ``Finding``: sentences computed from their own maps
and runs (never a canned answer: with other data it says other things), and the theory's line
where it applies (the edge of chaos, λ = 0, that the map computed for each model and size,
``gru_core/sweep/edge.py``). Pure functions: no ``st.*``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dashboard.investigate import checks as ck
from dashboard.investigate.catalogue import Scale
from dashboard.investigate.evidence import Evidence, MapFact
from gru_core.i18n import _

CLIP_AXES = ("clip_threshold", "init_std")


@dataclass(frozen=True)
class Finding:
    data: tuple[str, ...]  # what the student's own runs and maps show
    theory: str = ""  # the theory's line, where it applies


def _values(values: list[object]) -> str:
    order = sorted(set(values), key=lambda v: float("inf") if v is None else float(str(v)))
    return ", ".join(ck.axis_label(v) for v in order) or _("none of them")


def _edges(fact: MapFact | None, models: tuple[str, ...]) -> str:
    """'λ = 0 at init std 0.14 for the GRU and 0.073 for the RNN (hidden 256)'."""
    if fact is None:
        return ""
    parts = [
        _("{std} for the {model}").format(std=f"{fact.edge(m):.2g}", model=ck.title(m))
        for m in models
        if fact.edge(m) is not None
    ]
    if not parts:
        return ""
    return _("Theory: the edge of chaos (λ = 0 at initialisation) lies at init std {parts} "
             "(hidden {h}). Below it a signal fades through time; above it, it grows, and so "
             "do the gradients.").format(parts="; ".join(parts), h=fact.hidden)  # fmt: skip


def _clip(ev: Evidence, s: Scale) -> Finding:
    fact = ck.find_map(ev, "rnn", CLIP_AXES, s.hidden, (2, 1))
    data = []
    for std in (0.1, 0.01):
        if fact is None:
            break
        sets = {
            m: ck.trained_values(fact, m, "clip_threshold", init_std=std) for m in ("gru", "rnn")
        }
        data.append(
            _(
                "Your map, init std {std}: the GRU trained at θ = {gru}; the RNN at θ = {rnn}."
            ).format(std=f"{std:g}", gru=_values(sets["gru"]), rnn=_values(sets["rnn"]))
        )
        if std == 0.1 and fact.of("gru"):
            g, r = set(sets["gru"]), set(sets["rnn"])
            if g > r:
                data.append(
                    _(
                        "The GRU trained everywhere the RNN did and more: it needs clipping "
                        "less, not a higher threshold."
                    )
                )
            elif g == r:
                data.append(
                    _("Both trained at the same θ values: the GRU needs no higher threshold.")
                )
            else:
                data.append(
                    _(
                        "Here the RNN trained at θ = {extra} where the GRU did not: look "
                        "at those cells."
                    ).format(extra=_values(list(r - g)))
                )
    for model in ("rnn", "gru"):
        runs = ck.runs_of(ev, model, init_std=0.1, hidden=s.hidden)
        if runs:
            data.append(
                ck.title(model)
                + ", "
                + _("your runs at init std 0.1: ")
                + "; ".join(ck.describe_run(r) for r in runs)
                + "."
            )
    return Finding(tuple(data), _edges(fact, ("gru", "rnn")))  # fmt: skip


def _best_std(fact: MapFact, model: str) -> str:
    best = ck.best_cell(fact.of(model))
    return "-" if best is None else ck.axis_label(fact.value(best, "init_std"))


def _init(ev: Evidence, s: Scale) -> Finding:
    data, theory, edges = [], [], {}
    for hidden in (s.hidden, s.small_hidden):
        for model in ("gru", "rnn"):
            fact = ck.find_map(ev, model, ("init_std", "clip_threshold"), hidden, (2, 1))
            if fact is None:
                continue
            trained = ck.trained_values(fact, model, "init_std")
            data.append(_("Hidden {h}, {model}: trained at init std {stds}; best at {std}.").format(
                h=hidden, model=ck.title(model), stds=_values(trained),
                std=_best_std(fact, model)))  # fmt: skip
            if fact.edge(model) is not None:
                edges[(model, hidden)] = fact.edge(model)
            line = _edges(fact, ("gru", "rnn"))
            if line and line not in theory:
                theory.append(line)
    a, b = edges.get(("gru", s.hidden)), edges.get(("gru", s.small_hidden))
    if a is not None and b is not None:
        data.append(_("The GRU's edge of chaos moved from init std {b:.2g} at hidden {small} to "
                      "{a:.2g} at hidden {h}, {r:.1f}× lower (√({h}/{small}) = {s:.1f}): the "
                      "book's 0.01 sits {k:.0f}× below it at hidden {h}.")
                    .format(a=a, b=b, small=s.small_hidden, h=s.hidden, k=a / 0.01, r=b / a,
                            s=(s.hidden / s.small_hidden) ** 0.5))  # fmt: skip
    return Finding(tuple(data), " ".join(theory))


def _bptt(ev: Evidence, s: Scale) -> Finding:
    data = []
    for model, steps in (("gru", 35), ("gru", 280), ("rnn", 280)):
        runs = ck.runs_of(ev, model, steps=steps)
        if runs and runs[-1].flow_last:
            data.append(ck.describe_reach(runs[-1]) + ".")
    gru = ck.runs_of(ev, "gru", steps=280)
    reach = ck.practical_reach(gru[-1]) if gru else None
    if reach is not None:
        data.append(_("In your GRU run the last loss's gradient kept more than float32's "
                      "resolution for {n} steps back: that, not a fixed 100, is the practical "
                      "window. It depends on the weights (init std, training) and on the gates, "
                      "and truncating at T also caps it.").format(n=reach))  # fmt: skip
    return Finding(tuple(data))


def _half(ev: Evidence, s: Scale) -> Finding:
    data = []
    models = ("gru", "gru_reset_only", "gru_update_only", "rnn")
    for model in models:
        fact = ck.find_map(ev, model, ("init_std", "clip_threshold"), s.hidden)
        if fact is not None:
            data.append(ck.describe_map(fact, model) + ".")
    lab = ck.runs_exist(ev, ("gru_update_only", "gru_reset_only"), hidden=s.hidden)
    if lab.done:
        data.append(_("Your lab runs: {runs}").format(runs=lab.message))
    gates = _("The equations: with the reset gate only (Z = 0), H_t = H̃_t replaces the state "
              "at every step, as an RNN does; with the update gate only (R = 1), "
              "H_t = Z_t ⊙ H_{t-1} + (1 − Z_t) ⊙ H̃_t can keep its state, the path that carries "
              "gradients far back.")  # fmt: skip
    fact = ck.find_map(ev, "gru", ("init_std", "clip_threshold"), s.hidden)
    return Finding(tuple(data), " ".join(p for p in (gates, _edges(fact, models)) if p))


FINDINGS: dict[str, Callable[[Evidence, Scale], Finding]] = {
    "clip": _clip, "init": _init, "bptt": _bptt, "half": _half,
}  # fmt: skip


def finding(key: str, ev: Evidence, scale: Scale) -> Finding:
    return FINDINGS[key](ev, scale)
