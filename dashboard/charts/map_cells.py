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
from gru_core.sweep.results import CellResult, CellSummary
from gru_core.sweep.spec import axis_label

NUMBERED = frozenset({"learned", "did not learn"})  # verdicts coloured by their perplexity
# The categories drawn apart, in this order: code, legend label, white text (their colour and
# legend marker: ``palette.MAP_CATEGORIES``; a verdict not listed gets a spare style).
CATEGORIES = (
    ("diverged", "diverged (NaN/inf)", True),
    ("blew up", "blew up / error", True),
    ("memorised", "memorised (worse on new text)", False),
    ("pending", "not finished", False),
    ("other", "stopped / no number", False),
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


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def run_lines(r: CellResult) -> list[str]:
    state = r.verdict or r.status
    if r.diverged_step is not None:
        state = f"diverged at step {r.diverged_step}"
    lines = [
        f"<b>seed {r.seed}</b>: {state} after {r.steps} steps, {r.epochs} epochs",
        f"  val perplexity {_num(r.final_val_perplexity)} (best {_num(r.best_val_perplexity)})",
        f"  train perplexity {_num(r.final_train_perplexity)} "
        f"(best {_num(r.best_train_perplexity)})",
        f"  max grad norm {_num(r.max_grad_norm)}, clipped "
        f"{'—' if r.clipped_share is None else f'{r.clipped_share:.0%}'} of steps",
        f"  steps to target {_num(r.steps_to_target, 'd')}",
    ]
    spark = sparkline_text(r.curve_perplexity)
    if spark:
        lines.append(f"  perplexity {spark}")
    if r.status == "error" and r.headline:
        lines.append(f"  {html.escape(r.headline[:120])}")
    return lines


def lambda_line(lam: float | None) -> str:
    """A cell's λ in words: 'λ = -0.52 per step (theory, at initialisation: signals shrink)'."""
    if lam is None or not math.isfinite(lam):
        return ""
    trend = "signals shrink" if lam < 0 else "signals grow" if lam > 0 else "at the edge"
    return f"λ = {lam:+.3g} per step (theory, at initialisation: {trend})"


def hover(cell: CellSummary, x_name: str, y_name: str, lam: float | None) -> str:
    head = (
        f"<b>{cell.model}</b> · {x_name} {axis_label(cell.x)} · {y_name} {axis_label(cell.y)}"
        f"<br>{cell.verdict or 'training…'}; {cell.finished}/{len(cell.runs)} seeds finished"
    )
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
        seeds = "" if cell.diverged_runs == len(cell.runs) else f"<br>{cell.diverged_runs}/"
        return f"diverged @ step {cell.diverged_step}" + (
            f"{seeds}{len(cell.runs)} seeds" if seeds else ""
        )
    if kind == "value":
        return f"{cell.perplexity:.3g}"
    if kind == "pending":
        return "…"
    number = (
        f"<br>{cell.perplexity:.3g}" if kind not in ("blew up", "other") and cell.perplexity else ""
    )
    return (cell.verdict or "") + number


def styles(codes: set[str]) -> list[tuple[str, str, str, bool, str]]:
    """The categories present as (code, colour, label, white text, legend marker symbol),
    known ones first in CATEGORIES' order, then the others."""
    known = [
        (code, MAP_CATEGORIES[code].colour, label, white, MAP_CATEGORIES[code].symbol)
        for code, label, white in CATEGORIES
        if code in codes
    ]
    extra = sorted(codes - {c[0] for c in CATEGORIES})
    spare = [SPARE_CATEGORIES[i % len(SPARE_CATEGORIES)] for i in range(len(extra))]
    return known + [(c, s.colour, c, False, s.symbol) for c, s in zip(extra, spare, strict=True)]
