"""The worksheet's data model: what a student found, neutral of how it is written out.

A :class:`Worksheet` is plain data (frozen dataclasses, plotly figures for the charts), built
by the investigations (or by :mod:`dashboard.worksheet.build` from saved runs and maps) and
written by :func:`dashboard.worksheet.html.worksheet_html` and
:func:`dashboard.worksheet.markdown.worksheet_markdown`. Every text field holds what the
reader sees, already in the sheet's language; the writers add only their own headings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import plotly.graph_objects as go

Setting = str | int | float | bool | None  # one value of a run's or a map's settings


@dataclass(frozen=True)
class Table:
    """A small table of numbers (cells already formatted): a chart's key numbers, in Markdown
    where the chart itself cannot go."""

    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(
                    f"Table {self.caption!r}: a row has {len(row)} cells, the header "
                    f"{len(self.header)}"
                )


@dataclass(frozen=True)
class Chart:
    """A figure and the tables of its key numbers (what the Markdown copy shows instead)."""

    figure: go.Figure
    tables: tuple[Table, ...]


@dataclass(frozen=True)
class WorksheetRun:
    """A run behind an investigation: its settings and headline numbers, and its charts."""

    name: str  # the run's name as the lab shows it ('#3 GRU h256 std0.01 clip 1 T35 (learned)')
    model: str  # the model's title ('GRU', 'RNN', 'GRU (reset gate only)')
    settings: dict[str, Setting]  # every setting by its label, as the run started
    final_train_perplexity: float | None
    final_val_perplexity: float | None
    verdict: str  # the verdict's word ('learned', 'blew up', ...)
    headline: str  # the verdict's sentence, with its numbers
    steps: int  # training steps taken
    epochs: int  # epochs completed
    charts: tuple[Chart, ...] = ()


@dataclass(frozen=True)
class WorksheetMap:
    """A trainability map behind an investigation: what it swept, and its figure."""

    title: str
    models: tuple[str, ...]  # the models' titles, one map each
    settings: dict[str, Setting]  # the axes, their values and the base settings, by label
    charts: tuple[Chart, ...] = ()  # the maps' figure, with a table per model of its cells


@dataclass(frozen=True)
class WorksheetStep:
    """One step of an investigation: done or not, and its result in the student's numbers."""

    title: str
    done: bool
    result: str = ""  # 'GRU at std 0.1: validation perplexity 5.2 after 4,000 steps'


@dataclass(frozen=True)
class Investigation:
    """One investigation: its steps, the student's answer, what the data says, the theory."""

    title: str
    done: bool
    steps: tuple[WorksheetStep, ...] = ()
    answer: str = ""  # the student's answer, in their own words
    data_says: str = ""  # what the student's own runs and maps say
    theory: str = ""  # the theory line, equations written as text (λ = 0, H_t = ...)
    runs: tuple[WorksheetRun, ...] = ()
    maps: tuple[WorksheetMap, ...] = ()


@dataclass(frozen=True)
class Worksheet:
    """A student's worksheet: who, when, in which language, and the investigations."""

    investigations: tuple[Investigation, ...]
    language: str = "en"  # one of gru_core.i18n.LANGUAGES: the writers' headings follow it
    date: dt.date = field(default_factory=dt.date.today)
    student: str | None = None  # the name the student gave, if any
    bench: str | None = None  # the bench (saved runs' link token), if any

    def charts(self) -> list[Chart]:
        """Every chart of the sheet, in the order the writers place them."""
        found: list[Chart] = []
        for inv in self.investigations:
            for run in inv.runs:
                found.extend(run.charts)
            for m in inv.maps:
                found.extend(m.charts)
        return found
