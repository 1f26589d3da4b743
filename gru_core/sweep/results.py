"""What a sweep reports: one ``CellResult`` per run, ``CellSummary`` per map cell over seeds,
and the CSV table (a column per axis: init std, clip θ, lr, T, hidden size; and ``lambda``,
the theory's λ of the cell's untrained network, ``sweep.edge``).

A ``CellResult`` holds plain numbers (no tensors), so it crosses threads and Ray's object
store. Perplexities are d2l's: an epoch's training perplexity is exp(mean batch loss over the
epoch); validation perplexity is exp of ``fused.validation_loss`` on the held-out slice, every
``eval_every`` epochs and at the last. The verdict is ``verdict.judge``'s, from the same
numbers the dashboard would read (the first step's perplexity, the last steps, the epochs).

A map cell with several seeds (``summarize``) shows the worst verdict among its seeds
(diverged, then blew up, did not learn, memorised, learned: a region that diverges for one
seed is not safe), the geometric mean of the seeds' final validation perplexities (training
perplexity where there is no validation slice), and the earliest divergence step.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from gru_core.i18n import N_, _, ngettext
from gru_core.run.lifecycle import ENDED
from gru_core.sweep.spec import Cell, Value, axis_label

# Run states: waiting, training, or how it ended (the lifecycle's ENDED words).
PENDING, RUNNING = "pending", "running"
FINISHED = ENDED
# Verdicts from worst to best (verdict.VERDICTS); a cell shows its seeds' worst.
SEVERITY = ("error", "diverged", "blew up", "did not learn", "memorised", "learned", "stopped")
# A cell's verdict or state as the map page words it (marked here, translated where shown:
# ``_(VERDICT_WORDS[kind])``); the results themselves keep the English kind, an identifier.
VERDICT_WORDS = {
    "error": N_("error"), "diverged": N_("diverged"), "blew up": N_("blew up"),
    "did not learn": N_("did not learn"), "memorised": N_("memorised"),
    "learned": N_("learned"), "stopped": N_("stopped"), "out of memory": N_("out of memory"),
    PENDING: N_("pending"), RUNNING: N_("running"), "done": N_("done"),
}  # fmt: skip
CSV_COLUMNS = (
    "model",
    "init_std",
    "clip_threshold",
    "lr",
    "num_steps",
    "hidden_size",
    "seed",
    "status",
    "verdict",
    "final_train_perplexity",
    "best_train_perplexity",
    "final_val_perplexity",
    "best_val_perplexity",
    "diverged_step",
    "max_grad_norm",
    "clipped_share",
    "steps_to_target",
    "steps",
    "epochs",
    "lambda",
)
ATTRIBUTES = {"lambda": "lyapunov"}  # CSV column -> CellResult attribute, where they differ


@dataclass(frozen=True)
class CellResult:
    """How one run of the sweep went (so far, while it trains)."""

    model: str
    x: Value  # x axis value
    y: Value  # y axis value
    seed: int
    init_std: float
    clip_threshold: float | None  # None = clipping off
    lr: float
    num_steps: int  # sequence length T
    hidden_size: int
    status: str = PENDING  # 'pending', 'running', 'done', 'diverged', 'stopped', 'error'
    steps: int = 0  # steps whose update was applied (a diverged step is not)
    epochs: int = 0  # epochs completed
    final_train_perplexity: float | None = None  # verdict.final_perplexity's definition
    best_train_perplexity: float | None = None  # lowest epoch training perplexity
    final_val_perplexity: float | None = None  # at the last evaluated epoch
    best_val_perplexity: float | None = None
    diverged_step: int | None = None  # the step whose loss or gradient norm was not finite
    max_grad_norm: float | None = None  # largest pre-clip global norm over finite steps
    clipped_share: float | None = None  # share of finite steps whose gradient was clipped
    steps_to_target: int | None = None  # step at the end of the first epoch <= target
    curve_steps: tuple[float, ...] = ()  # x of the perplexity curve (<= CURVE_POINTS)
    curve_perplexity: tuple[float, ...] = ()  # geometric mean of batch perplexity per bucket
    verdict: str | None = None  # verdict.judge's kind once finished
    headline: str = ""  # the error's text if it failed (a fact: verdicts are worded where shown)
    start_perplexity: float | None = None  # the first step's batch perplexity
    lyapunov: float | None = None  # λ of the untrained network (sweep.edge), once computed

    @property
    def key(self) -> tuple[str, Value, Value, int]:
        return (self.model, self.x, self.y, self.seed)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True)
class CellSummary:
    """One map cell (model, x, y) over its seeds."""

    model: str
    x: Value
    y: Value
    runs: tuple[CellResult, ...]  # one per seed
    finished: int  # runs that ended
    verdict: str | None  # the worst verdict among finished runs; None until all finished
    perplexity: float | None  # geometric mean of the seeds' final val (else train) perplexity
    diverged_step: int | None  # earliest divergence among the seeds
    diverged_runs: int  # seeds that diverged

    @property
    def done(self) -> bool:
        return self.finished == len(self.runs)


def _geomean(values: Iterable[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not finite:
        return None
    return math.exp(sum(math.log(v) for v in finite) / len(finite))


def summarize(results: Iterable[CellResult]) -> list[CellSummary]:
    """Per (model, x, y), in first-seen order: see the module docstring."""
    cells: dict[tuple[str, Value, Value], list[CellResult]] = {}
    for r in results:
        cells.setdefault((r.model, r.x, r.y), []).append(r)
    out = []
    for (model, x, y), runs in cells.items():
        ended = [r for r in runs if r.finished]
        kinds = [r.verdict or r.status for r in ended]
        verdict = (
            min(kinds, key=lambda k: SEVERITY.index(k) if k in SEVERITY else 0)
            if ended and len(ended) == len(runs)
            else None
        )
        diverged = [r.diverged_step for r in runs if r.diverged_step is not None]
        ppl = _geomean(
            r.final_val_perplexity if r.final_val_perplexity is not None
            else r.final_train_perplexity
            for r in runs
            if r.status in ("done", "stopped")
        )  # fmt: skip
        out.append(
            CellSummary(
                model, x, y, tuple(runs), len(ended), verdict, ppl,
                min(diverged) if diverged else None, len(diverged),
            )
        )  # fmt: skip
    return out


def cell_text(cell: CellSummary) -> str:
    """The cell as the printed grid shows it, in the reader's language (the language in force
    where it is shown): '5.21', 'diverged@12', 'blew up', '…' (发散@12, 爆炸). The compact
    ``@step`` form keeps the grid narrow."""
    if cell.diverged_step is not None and cell.verdict in ("diverged", None):
        text = _("diverged@{step}").format(step=cell.diverged_step)
        if cell.diverged_runs == len(cell.runs):
            return text
        share = ngettext("({diverged}/{n} seed)", "({diverged}/{n} seeds)", len(cell.runs))
        return f"{text} {share.format(diverged=cell.diverged_runs, n=len(cell.runs))}"
    if cell.verdict is None:
        return "…"
    if cell.verdict in ("blew up", "error", "stopped") or cell.perplexity is None:
        return _(VERDICT_WORDS[cell.verdict]) if cell.verdict in VERDICT_WORDS else cell.verdict
    return f"{cell.perplexity:.2f}"


def results_frame(results: Sequence[CellResult]) -> pd.DataFrame:
    """One row per run (cell and seed) with CSV_COLUMNS; clip off is written as 'off'."""
    rows = []
    for r in results:
        row = {c: getattr(r, ATTRIBUTES.get(c, c)) for c in CSV_COLUMNS}
        row["clip_threshold"] = axis_label(r.clip_threshold)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


def grid_table(
    summaries: Sequence[CellSummary],
    x_values: Sequence[Value],
    y_values: Sequence[Value],
    x_title: str,
    y_title: str,
) -> str:
    """A plain-text map of one model: rows are y values, columns x values, cells cell_text."""
    by_xy = {(s.x, s.y): cell_text(s) for s in summaries}
    head = [f"{y_title} \\ {x_title}", *(axis_label(x) for x in x_values)]
    rows = [head]
    for y in y_values:
        rows.append([axis_label(y), *(by_xy.get((x, y), "") for x in x_values)])
    widths = [max(text_width(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(_pad(v, w, right=bool(i)) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    )


def text_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a wide (CJK) character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool) -> str:
    fill = " " * max(width - text_width(text), 0)
    return fill + text if right else text + fill


def pending_result(cell: Cell, status: str = PENDING, headline: str = "") -> CellResult:
    """A run not trained yet (or not any more): ``status`` and why, no numbers."""
    c = cell.config
    return CellResult(
        cell.model, cell.x, cell.y, cell.seed, c.init_std, c.clip_threshold, c.lr,
        c.num_steps, c.hidden_size, status=status, headline=headline,
    )  # fmt: skip
