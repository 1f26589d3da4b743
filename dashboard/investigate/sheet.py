"""The worksheet to take home, from a bench's progress: ``worksheet_from_progress``.

Each investigation becomes a ``worksheet.Investigation``: its steps with the results kept when
they were done (else what is still missing), the student's answer, what their data says and
the theory's line (``findings.py``), the saved runs behind it and its maps. A map is kept in
the progress as a ``MapFact`` (its cells' verdicts and perplexities); it is drawn again through
the map's own figure builder (``worksheet.worksheet_map``) from those cells.
Words are in the language in force: build under the sheet's language. Plain Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dashboard.investigate.catalogue import ANSWER_MIN, MAP, Investigation, Scale, investigations
from dashboard.investigate.evidence import Evidence, MapFact, RunFact, run_fact
from dashboard.investigate.findings import finding
from dashboard.investigate.progress import Progress
from dashboard.runs.saved import SavedRun
from dashboard.worksheet import Investigation as SheetInvestigation
from dashboard.worksheet import Worksheet, WorksheetMap, WorksheetStep, worksheet_map, worksheet_run
from gru_core.config import TrainConfig
from gru_core.i18n import _
from gru_core.sweep.results import CellResult
from gru_core.sweep.spec import SweepSpec


def _runs_for(key: str) -> Callable[[RunFact], bool]:
    """Which saved runs an investigation's steps read."""
    return {
        "clip": lambda r: r.model in ("gru", "rnn") and r.init_std == 0.1,
        "init": lambda r: False,
        "bptt": lambda r: r.model in ("gru", "rnn") and r.steps in (35, 280),
        "half": lambda r: r.model in ("gru_update_only", "gru_reset_only"),
    }[key]


def _maps_for(inv: Investigation, maps: Sequence[MapFact]) -> list[MapFact]:
    """The maps made with one of the investigation's map steps' axes (in order) and size."""
    out = []
    for fact in maps:
        for step in inv.steps:
            v = step.values
            if step.page != MAP or (fact.x_axis, fact.y_axis) != (v["map_x"], v["map_y"]):
                continue
            if fact.at_hidden(v["map_hidden"]) and fact not in out:
                out.append(fact)
    return out


def _order(value: object) -> float:
    return float("inf") if value is None else float(str(value))


def sheet_map(fact: MapFact) -> WorksheetMap:
    """A map from the progress, drawn again from its cells."""
    xs = tuple(sorted({c.x for c in fact.cells}, key=_order))
    ys = tuple(sorted({c.y for c in fact.cells}, key=_order))
    base = TrainConfig(hidden_size=fact.hidden, num_steps=fact.steps, num_epochs=fact.epochs)
    spec = SweepSpec(fact.x_axis, xs, fact.y_axis, ys, base, 1, fact.models)
    results = []
    for c in fact.cells:
        config = base.replace(**{fact.x_axis: c.x, fact.y_axis: c.y})
        results.append(CellResult(
            c.model, c.x, c.y, 0, config.init_std, config.clip_threshold, config.lr,
            config.num_steps, config.hidden_size, verdict=c.verdict,
            status="done" if c.diverged_step is None else "diverged",
            diverged_step=c.diverged_step, final_val_perplexity=c.perplexity,
        ))  # fmt: skip
    edges = {(m, h): s for m, h, s in fact.edges}
    return worksheet_map(results, spec, edges)


def worksheet_from_progress(
    progress: Progress,
    runs: Sequence[SavedRun],
    scale: Scale,
    language: str = "en",
    student: str | None = None,
    bench: str | None = None,
) -> Worksheet:
    """The student's worksheet: every investigation, done or not, with their runs and maps."""
    ev = Evidence.gather(runs, progress.maps, progress.views)
    out = []
    for inv in investigations(scale):
        steps = []
        for step in inv.steps:
            shown = step.check(ev).or_kept(progress.done.get(step.id))
            steps.append(WorksheetStep(_(step.title), shown.done, shown.message))
        answer = progress.answers.get(inv.key, "")
        done = all(s.done for s in steps) and len(answer.strip()) >= ANSWER_MIN
        found = finding(inv.key, ev, scale)
        wanted = _runs_for(inv.key)
        out.append(SheetInvestigation(
            _(inv.title), done, tuple(steps), answer, "\n".join(found.data),
            found.theory, tuple(worksheet_run(r) for r in runs if wanted(run_fact(r))),
            tuple(sheet_map(m) for m in _maps_for(inv, progress.maps)),
        ))  # fmt: skip
    return Worksheet(tuple(out), language=language, student=student, bench=bench)
