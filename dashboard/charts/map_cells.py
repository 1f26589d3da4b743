"""What one cell of a trainability map says (``charts/map.py`` draws them): its category
(a number on the colour scale, or a named category outside it), the word or number written in
it, and its hover (every number of every seed, the theory's λ, a text sparkline of the
perplexity curve). Pure: results in, strings out.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

from dashboard.charts.palette import MAP_CATEGORIES, SPARE_CATEGORIES
from gru_core.i18n import N_, _, ngettext
from gru_core.sweep.results import VERDICT_WORDS, CellResult, CellSummary
from gru_core.sweep.spec import axis_label

NUMBERED = frozenset({"learned", "did not learn"})  # verdicts coloured by their perplexity
# The categories drawn apart, in this order: code, legend label (worded where drawn:
# ``styles``), white text (their colour and legend marker: ``palette.MAP_CATEGORIES``; a
# verdict not listed gets a spare style).
CATEGORIES = (
    ("diverged", N_("diverged (NaN/inf)"), True),
    ("blew up", N_("blew up / error"), True),
    ("memorised", N_("memorised (worse on new text)"), False),
    ("pending", N_("not finished"), False),
    ("other", N_("stopped / no number"), False),
)
SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 24  # characters of a hover sparkline


def sparkline_text(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """A curve as block characters on a log scale ('▇▅▃▂▁'); '' without finite values."""
    v = np.log(np.asarray([x for x in values if math.isfinite(x) and x > 0], dtype=np.float64))
    if v.size == 0:
        return ""
    if v.size > width:  # bucket means
        v = np.array([chunk.mean() for chunk in np.array_split(v, width)])
    lo, span = float(v.min()), float(np.ptp(v))
    idx = np.zeros(v.size, dtype=int) if span == 0 else ((v - lo) / span * 7).round().astype(int)
    return "".join(SPARK[i] for i in idx)


def shown_value(value: float | None) -> str:
    """An axis value as the page shows it: '0.01', '10', or 'off' (clipping off) in the
    reader's language (``axis_label`` is the identifier the URL and the CSV keep)."""
    return _("off") if value is None else axis_label(value)


def verdict_word(kind: str | None) -> str:
    """A verdict or run state (an English identifier in the results) in the reader's words."""
    if kind is None:
        return ""
    return _(VERDICT_WORDS[kind]) if kind in VERDICT_WORDS else kind


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def run_lines(r: CellResult) -> list[str]:
    state = verdict_word(r.verdict or r.status)
    if r.diverged_step is not None:
        state = _("diverged at step {step}").format(step=r.diverged_step)
    clipped = "—" if r.clipped_share is None else f"{r.clipped_share:.0%}"
    lines = [
        _("<b>seed {seed}</b>: {state} after {steps} steps, {epochs} epochs").format(
            seed=r.seed, state=state, steps=r.steps, epochs=r.epochs
        ),
        "  "
        + _("val perplexity {final} (best {best})").format(
            final=_num(r.final_val_perplexity), best=_num(r.best_val_perplexity)
        ),
        "  "
        + _("train perplexity {final} (best {best})").format(
            final=_num(r.final_train_perplexity), best=_num(r.best_train_perplexity)
        ),
        "  "
        + _("max grad norm {norm}, clipped {share} of steps").format(
            norm=_num(r.max_grad_norm), share=clipped
        ),
        "  " + _("steps to target {steps}").format(steps=_num(r.steps_to_target, "d")),
    ]
    spark = sparkline_text(r.curve_perplexity)
    if spark:
        lines.append("  " + _("perplexity {sparkline}").format(sparkline=spark))
    if r.status == "error" and r.headline:
        lines.append(f"  {html.escape(r.headline[:120])}")
    return lines


def lambda_line(lam: float | None) -> str:
    """A cell's λ in words: 'λ = -0.52 per step (theory, at initialisation: signals shrink)'."""
    if lam is None or not math.isfinite(lam):
        return ""
    if lam < 0:
        text = _("λ = {lam} per step (theory, at initialisation: signals shrink)")
    elif lam > 0:
        text = _("λ = {lam} per step (theory, at initialisation: signals grow)")
    else:
        text = _("λ = {lam} per step (theory, at initialisation: at the edge)")
    return text.format(lam=f"{lam:+.3g}")


def hover(cell: CellSummary, x_name: str, y_name: str, lam: float | None) -> str:
    where = f"<b>{cell.model}</b> · {x_name} {shown_value(cell.x)} · {y_name} {shown_value(cell.y)}"
    state = verdict_word(cell.verdict) if cell.verdict else _("training…")
    seeds = ngettext(
        "{state}; {finished}/{n} seed finished", "{state}; {finished}/{n} seeds finished",
        len(cell.runs),
    ).format(state=state, finished=cell.finished, n=len(cell.runs))  # fmt: skip
    head = f"{where}<br>{seeds}"
    theory = lambda_line(lam)
    head += f"<br>{theory}" if theory else ""
    return head + "".join("<br>" + line for r in cell.runs for line in run_lines(r))


def category(cell: CellSummary) -> str:
    """'value' for a cell coloured by its number, else its category's code (see above)."""
    if cell.diverged_runs or cell.verdict == "diverged":
        return "diverged"
    if cell.verdict in ("blew up", "error"):
        return "blew up"
    if cell.verdict is None:
        return "pending"
    if cell.verdict in NUMBERED:
        return "value" if cell.perplexity is not None else "other"
    if cell.verdict == "stopped":
        return "other"
    return cell.verdict  # memorised, or a verdict this module does not know yet


def cell_label(cell: CellSummary, kind: str) -> str:
    if kind == "diverged":
        text = _("diverged @ step {step}").format(step=cell.diverged_step)
        if cell.diverged_runs == len(cell.runs):
            return text
        share = ngettext("{diverged}/{n} seed", "{diverged}/{n} seeds", len(cell.runs))
        return text + "<br>" + share.format(diverged=cell.diverged_runs, n=len(cell.runs))
    if kind == "value":
        return f"{cell.perplexity:.3g}"
    if kind == "pending":
        return "…"
    number = (
        f"<br>{cell.perplexity:.3g}" if kind not in ("blew up", "other") and cell.perplexity else ""
    )
    return verdict_word(cell.verdict) + number


def styles(codes: set[str]) -> list[tuple[str, str, str, bool, str]]:
    """The categories present as (code, colour, label, white text, legend marker symbol),
    known ones first in CATEGORIES' order, then the others; each label in the reader's
    language."""
    known = [
        (code, MAP_CATEGORIES[code].colour, _(label), white, MAP_CATEGORIES[code].symbol)
        for code, label, white in CATEGORIES
        if code in codes
    ]
    extra = sorted(codes - {c[0] for c in CATEGORIES})
    spare = [SPARE_CATEGORIES[i % len(SPARE_CATEGORIES)] for i in range(len(extra))]
    return known + [
        (c, s.colour, verdict_word(c), False, s.symbol) for c, s in zip(extra, spare, strict=True)
    ]
