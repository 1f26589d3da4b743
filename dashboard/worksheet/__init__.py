"""A student's worksheet to take home: one self-contained HTML file and a Markdown copy.

Entry points::

    from dashboard.worksheet import worksheet_html, worksheet_markdown
    html_text = worksheet_html(sheet)        # str: one offline HTML file, plotly.js inline
    markdown_text = worksheet_markdown(sheet)  # str: the same content, charts as tables

The data model (``model.py``), frozen dataclasses, plain data::

    Worksheet(investigations, language="en", date=today, student=None, bench=None)
      Investigation(title, done, steps, answer, data_says, theory, runs, maps)
        WorksheetStep(title, done, result)        result quotes the student's own numbers
        WorksheetRun(name, model, settings, final_train_perplexity, final_val_perplexity,
                     verdict, headline, steps, epochs, charts)
        WorksheetMap(title, models, settings, charts)
          Chart(figure, tables)   a plotly Figure and the Tables of its key numbers
            Table(caption, header, rows)   cells already formatted as text

Every text is what the reader sees, in the sheet's ``language`` (the writers word their own
headings in it too). ``settings`` maps a label to a value (None reads 'off').

A download button's file name: ``file_name(sheet, "html")``
('gru-lab-worksheet-Ada-2026-12-05.html').

Building from what the lab saved (``build.py``, through the existing chart builders):
``worksheet_run(saved_run)`` and ``worksheet_map(results, spec, edges)``.
Plain Python: nothing here imports Streamlit.
"""

from dashboard.worksheet.build import worksheet_map, worksheet_run
from dashboard.worksheet.html import worksheet_html
from dashboard.worksheet.markdown import worksheet_markdown
from dashboard.worksheet.model import (
    Chart,
    Investigation,
    Table,
    Worksheet,
    WorksheetMap,
    WorksheetRun,
    WorksheetStep,
)
from dashboard.worksheet.words import file_name

__all__ = [
    "Chart",
    "Investigation",
    "Table",
    "Worksheet",
    "WorksheetMap",
    "WorksheetRun",
    "WorksheetStep",
    "file_name",
    "worksheet_html",
    "worksheet_map",
    "worksheet_markdown",
    "worksheet_run",
]
