"""What both writers (HTML and Markdown) say alike: the sheet's header lines, a run's headline
numbers, how a setting's value reads. Words in the language in force."""

from __future__ import annotations

from dashboard.worksheet.model import Setting, Worksheet, WorksheetRun
from gru_core.i18n import LANGUAGES, _


def value_text(value: Setting) -> str:
    """A setting's value as text: numbers in short form, None as 'off', booleans as yes/no."""
    if value is None:
        return _("off")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return format(value, ".4g")
    return str(value)


def run_numbers(run: WorksheetRun) -> dict[str, Setting]:
    """A run's headline numbers by label (perplexities to 4 significant digits)."""

    def ppl(x: float | None) -> str:
        return "–" if x is None else format(x, ".4g")

    return {
        _("model"): run.model,
        _("verdict"): run.verdict,
        _("final train perplexity"): ppl(run.final_train_perplexity),
        _("final validation perplexity"): ppl(run.final_val_perplexity),
        _("steps"): run.steps,
        _("epochs"): run.epochs,
    }


def sheet_meta(sheet: Worksheet) -> list[tuple[str, str]]:
    """The header lines: student, bench (when given), date, language, investigations done."""
    done = sum(inv.done for inv in sheet.investigations)
    lines = []
    if sheet.student:
        lines.append((_("Student"), sheet.student))
    if sheet.bench:
        lines.append((_("Bench"), sheet.bench))
    lines.append((_("Date"), sheet.date.isoformat()))
    lines.append((_("Language"), LANGUAGES.get(sheet.language, sheet.language)))
    lines.append(
        (
            _("Investigations done"),
            _("{done} of {total}").format(done=done, total=len(sheet.investigations)),
        )
    )
    return lines


def file_name(sheet: Worksheet, extension: str) -> str:
    """The download's file name: 'gru-lab-worksheet-Ada-2026-12-05.html' (the student's name
    in letters, digits and dashes only; none when not given)."""
    name = "".join(c if c.isalnum() else "-" for c in (sheet.student or "")).strip("-")
    parts = ["gru-lab-worksheet", name, sheet.date.isoformat()]
    return "-".join(p for p in parts if p) + "." + extension.lstrip(".")
