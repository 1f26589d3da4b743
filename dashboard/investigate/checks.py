"""Completion checks: pure functions of the student's own runs, maps and opened views.

Each returns a ``Check``: done or not, and a sentence. When done, the sentence quotes the
student's own numbers (the step's result); when not, it says what is still missing. The
catalogue (``catalogue.py``) binds them to an investigation's steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dashboard.investigate.evidence import Evidence, MapCell, MapFact, RunFact, ViewMark
from gru_core.config import MODEL_TITLES
from gru_core.i18n import _
from gru_core.sweep.spec import AXIS_TITLES, axis_label

FLOAT32_FLOOR = 1e-7  # float32's relative resolution: a smaller share of the gradient is noise


@dataclass(frozen=True)
class Check:
    done: bool
    message: str

    def or_kept(self, kept: str | None) -> Check:
        """This check as a step shows it, given the result ``kept`` when the step was done
        (or None): done now, its own words (the reader's language); done before but no
        longer shown by the evidence (its runs or maps have left the store), the kept words
        (the language it was done in); never done, itself."""
        return self if self.done or kept is None else Check(True, kept)


def title(model: str) -> str:
    return _(MODEL_TITLES[model])


def fmt(x: float | None) -> str:
    """A perplexity or ratio as the page writes it: '5.21', '3e-05', '-' when missing."""
    if x is None:
        return "-"
    return f"{x:.2f}" if 0.01 <= abs(x) < 1e4 else f"{x:.0e}"


def clip_text(clip: float | None) -> str:
    return axis_label(clip)


# -- maps ------------------------------------------------------------------------------------
def find_map(
    ev: Evidence, model: str, axes: Sequence[str], hidden: int, need: Sequence[int] = (2, 2)
) -> MapFact | None:
    """The newest map with these two axes, at this hidden size, that has ``model``'s cells,
    with at least ``need`` distinct values on each axis (in the order of ``axes``)."""
    for fact in reversed(ev.maps):
        if fact.axes() != frozenset(axes) or not fact.at_hidden(hidden):
            continue
        cells = fact.of(model)
        counts = [len({fact.value(c, a) for c in cells}) for a in axes]
        if cells and all(n >= k for n, k in zip(counts, need, strict=True)):
            return fact
    return None


def best_cell(cells: Sequence[MapCell]) -> MapCell | None:
    """The trained cell with the lowest perplexity (learned or memorised), else None."""
    good = [c for c in cells if c.verdict in ("learned", "memorised") and c.perplexity]
    return min(good, key=lambda c: c.perplexity or 0.0, default=None)


def describe_map(fact: MapFact, model: str) -> str:
    """'GRU: learned in 6 of 8 cells; best perplexity 5.21 at init std 0.01, clip θ 1'."""
    cells = fact.of(model)
    trained = sum(c.verdict in ("learned", "memorised") for c in cells)
    best = best_cell(cells)
    text = _("{model}: trained in {k} of {n} cells").format(
        model=title(model), k=trained, n=len(cells)
    )
    if best is not None:
        text += _("; best perplexity {ppl} at {x_title} {x}, {y_title} {y}").format(
            ppl=fmt(best.perplexity), x_title=_(AXIS_TITLES[fact.x_axis]),
            x=axis_label(best.x), y_title=_(AXIS_TITLES[fact.y_axis]), y=axis_label(best.y),
        )  # fmt: skip
    return text


def maps_exist(
    ev: Evidence,
    models: Sequence[str],
    axes: Sequence[str],
    hidden: int,
    need: Sequence[int] = (2, 2),
) -> Check:
    """A map of ``axes`` at ``hidden`` for every model in ``models`` (one map or several),
    with at least ``need`` values on each axis."""
    found = {m: find_map(ev, m, axes, hidden, need) for m in models}
    missing = [m for m, f in found.items() if f is None]
    if missing:
        return Check(False, _("Still missing: a map of {x} × {y} at hidden {h} for {models}.")
                     .format(x=_(AXIS_TITLES[axes[0]]), y=_(AXIS_TITLES[axes[1]]), h=hidden,
                             models=", ".join(title(m) for m in missing)))  # fmt: skip
    return Check(True, "; ".join(describe_map(f, m) for m, f in found.items() if f) + ".")


def trained_values(fact: MapFact, model: str, axis: str, **fixed: object) -> list[object]:
    """The values of ``axis`` at which ``model``'s cells trained, the other axis ``fixed``."""
    out = []
    for c in fact.of(model):
        if all(fact.value(c, a) == v for a, v in fixed.items()) and c.verdict in (
            "learned",
            "memorised",
        ):
            out.append(fact.value(c, axis))
    return out


# -- runs ------------------------------------------------------------------------------------
def runs_of(ev: Evidence, model: str, **settings: object) -> list[RunFact]:
    """The saved runs of ``model`` whose settings match (RunFact attribute -> value)."""
    return [
        r
        for r in ev.runs
        if r.model == model and all(getattr(r, k) == v for k, v in settings.items())
    ]


def describe_run(r: RunFact) -> str:
    """'θ 1: learned (perplexity 5.21, validation 9.80)'."""
    return _("θ {clip}: {verdict} (perplexity {ppl}, validation {val})").format(
        clip=clip_text(r.clip), verdict=_(r.verdict), ppl=fmt(r.perplexity),
        val=fmt(r.val_perplexity),
    )  # fmt: skip


def _order(clip: float | None) -> float:
    return float("inf") if clip is None else clip


def theta_boundary(ev: Evidence, model: str, init_std: float, hidden: int) -> Check:
    """Runs of ``model`` at ``init_std`` with at least one θ that trained and one that did
    not: where clipping stops being enough is found."""
    runs = runs_of(ev, model, init_std=init_std, hidden=hidden)
    clips = sorted({r.clip for r in runs}, key=_order)
    good = sorted({r.clip for r in runs if r.trained}, key=_order)
    bad = sorted({r.clip for r in runs if not r.trained}, key=_order)
    head = _("{model} at init std {std}, hidden {h}").format(
        model=title(model), std=f"{init_std:g}", h=hidden
    )
    if not runs:
        return Check(False, _("No saved run yet of the {what}.").format(what=head))
    tried = "; ".join(describe_run(r) for r in sorted(runs, key=lambda r: _order(r.clip)))
    if not good or not bad:
        hint = (
            _("it trained at every θ you tried: try a larger θ, or clipping off")
            if good
            else _("it trained at no θ you tried: try a smaller θ")
        )
        return Check(False, f"{head}: {tried}. " + _("Not yet: {hint}.").format(hint=hint))
    return Check(
        True,
        _("{head}: {tried}. It trained at θ = {good} and not at θ = {bad} ({n} values).").format(
            head=head, tried=tried, good=", ".join(map(clip_text, good)),
            bad=", ".join(map(clip_text, bad)), n=len(clips),
        ),
    )  # fmt: skip


def clips_tried(ev: Evidence, model: str, init_std: float, hidden: int) -> Check:
    """Runs of ``model`` at ``init_std`` with two θ values or more (clipping off counts)."""
    runs = runs_of(ev, model, init_std=init_std, hidden=hidden)
    if len({r.clip for r in runs}) < 2:
        return Check(False, _("Still missing: runs at two θ values (or clipping off)."))
    runs.sort(key=lambda r: _order(r.clip))
    return Check(True, title(model) + ": " + "; ".join(describe_run(r) for r in runs) + ".")


def runs_exist(ev: Evidence, models: Sequence[str], **settings: object) -> Check:
    """A saved run of every model in ``models`` with these settings; quotes each run."""
    found = {m: runs_of(ev, m, **settings) for m in models}
    missing = [m for m, runs in found.items() if not runs]
    if missing:
        return Check(False, _("Still missing: a saved run of {models}.").format(
            models=", ".join(title(m) for m in missing)))  # fmt: skip
    parts = [
        _("{model}: {verdict}, perplexity {ppl}, validation {val}").format(
            model=title(m), verdict=_(runs[-1].verdict), ppl=fmt(runs[-1].perplexity),
            val=fmt(runs[-1].val_perplexity),
        )
        for m, runs in found.items()
    ]  # fmt: skip
    return Check(True, "; ".join(parts) + ".")


# -- views -----------------------------------------------------------------------------------
def practical_reach(run: RunFact, floor: float = FLOAT32_FLOOR) -> int | None:
    """Steps back from t = T until the last loss's gradient falls under ``floor`` of its
    size at t = T (T - 1 when it never does); None when the run recorded no flow."""
    if not run.flow_last:
        return None
    for back in range(len(run.flow_last)):
        ratio = run.reach_ratio(back)
        if ratio is None or ratio < floor:
            return back
    return len(run.flow_last) - 1


def describe_reach(run: RunFact) -> str:
    """'GRU, T = 280: 35 steps back 3e-05, 100 back 1e-14; under 1e-7 after 52 steps'."""
    parts = [
        _("{k} back {ratio}").format(k=k, ratio=fmt(run.reach_ratio(k)))
        for k in (35, 100, 200)
        if k < run.steps
    ]
    reach = practical_reach(run)
    text = _("{model}, T = {T}: ").format(model=title(run.model), T=run.steps) + ", ".join(parts)
    if reach is not None:
        text += _("; under 1e-7 of its size after {n} steps").format(n=reach)
    return text


def view_opened(ev: Evidence, view: str, model: str, steps: int) -> Check:
    """A saved run of ``model`` at T = ``steps``, and ``view`` opened on such a run."""
    runs = runs_of(ev, model, steps=steps)
    if not runs:
        return Check(False, _("Still missing: a saved {model} run at T = {T}.").format(
            model=title(model), T=steps))  # fmt: skip
    if ViewMark(view, model, steps) not in ev.views:
        return Check(False, _("Now open the “{view}” view on the T = {T} run.").format(
            view=_(view), T=steps))  # fmt: skip
    return Check(True, describe_reach(runs[-1]) + ".")
