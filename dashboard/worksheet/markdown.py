"""The worksheet as Markdown: the same content as the HTML file, with each chart given as the
tables of its key numbers (Markdown cannot hold a plotly figure).

``worksheet_markdown(sheet)`` returns GitHub-flavoured Markdown: headings per investigation,
the steps as a task list, the student's answer as a quote, pipe tables of settings and numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboard.worksheet.model import (
    Investigation,
    Setting,
    Table,
    Worksheet,
    WorksheetMap,
    WorksheetRun,
)
from dashboard.worksheet.words import run_numbers, sheet_meta, value_text
from gru_core.i18n import _, language_scope


def _cell(text: str) -> str:
    """A table cell: pipes escaped, on one line."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip() or " "


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    out.append("|" + "|".join("---" for _h in header) + "|")
    out.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return out


def _table(table: Table) -> list[str]:
    return [f"*{table.caption}*", "", *_grid(table.header, table.rows), ""]


def _pairs(caption: str, pairs: dict[str, Setting], key: str) -> list[str]:
    rows = [(k, value_text(v)) for k, v in pairs.items()]
    return [f"*{caption}*", "", *_grid((key, _("value")), rows), ""]


def _quote(text: str) -> list[str]:
    return [f"> {line}".rstrip() for line in text.splitlines()] + [""]


def _run(run: WorksheetRun) -> list[str]:
    lines = [f"#### {run.name}", "", run.headline, ""]
    lines += _pairs(_("Numbers"), run_numbers(run), _("quantity"))
    lines += _pairs(_("Settings"), run.settings, _("setting"))
    for chart in run.charts:
        for table in chart.tables:
            lines += _table(table)
    return lines


def _map(m: WorksheetMap) -> list[str]:
    lines = [f"#### {m.title}", ""]
    lines += _pairs(_("Settings"), m.settings, _("setting"))
    for chart in m.charts:
        for table in chart.tables:
            lines += _table(table)
    return lines


def _status(done: bool) -> str:
    return _("done") if done else _("not done yet")


def _investigation(number: int, inv: Investigation) -> list[str]:
    lines = [f"## {number}. {inv.title} ({_status(inv.done)})", ""]
    if inv.steps:
        lines += [f"### {_('Steps')}", ""]
        for step in inv.steps:
            lines.append(f"- [{'x' if step.done else ' '}] {step.title}")
            if step.result:
                lines.append(f"  {step.result}".replace("\n", "\n  "))
        lines.append("")
    lines += [f"### {_('Your answer')}", ""]
    lines += _quote(inv.answer) if inv.answer.strip() else [_("(no answer yet)"), ""]
    if inv.data_says:
        lines += [f"### {_('What the data says')}", "", inv.data_says, ""]
    if inv.theory:
        lines += [f"### {_('Theory')}", "", inv.theory, ""]
    if inv.runs:
        lines += [f"### {_('Runs')}", ""]
        for run in inv.runs:
            lines += _run(run)
    if inv.maps:
        lines += [f"### {_('Maps')}", ""]
        for m in inv.maps:
            lines += _map(m)
    return lines


def worksheet_markdown(sheet: Worksheet) -> str:
    """The worksheet as one Markdown document."""
    with language_scope(sheet.language):
        lines = [f"# {_('GRU Lab worksheet')}", ""]
        lines += [f"- **{key}:** {value}" for key, value in sheet_meta(sheet)]
        lines.append("")
        for i, inv in enumerate(sheet.investigations, start=1):
            lines += _investigation(i, inv)
        return "\n".join(lines).rstrip() + "\n"
