"""The worksheet as one self-contained HTML file: readable offline, printable, nothing fetched.

``worksheet_html(sheet)`` writes a complete document: plotly.js inline once, in the head
(plotly's own bundle, ``plotly.offline.get_plotlyjs()``), then a ``Plotly.newPlot`` call per
chart with the figure's JSON (numpy arrays as base64 typed arrays). No address outside the
file appears in anything this module writes: no CDN, no web fonts (a system font stack that
includes CJK fonts, so a Chinese worksheet shows its characters), no MathJax (equations are
text). plotly.js itself names addresses in its source (SVG namespaces, map tile servers a
map trace would fetch); no trace here fetches anything.

The stylesheet prints: one investigation per page, charts never split across pages, each
chart as wide as an A4 page while printing (``PRINT_SCRIPT``).
"""

from __future__ import annotations

import html
import re
from functools import cache

import plotly.offline
from plotly.io.json import to_json_plotly

from dashboard.worksheet.model import (
    Chart,
    Investigation,
    Setting,
    Table,
    Worksheet,
    WorksheetMap,
    WorksheetRun,
)
from dashboard.worksheet.words import run_numbers, sheet_meta, value_text
from gru_core.i18n import _, language_scope

# System fonts only (nothing is fetched): Latin first, then the common CJK faces of each system.
FONT_STACK = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
    '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", '
    '"Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif'
)
PLOT_CONFIG = {"responsive": True, "displaylogo": False}
PRINT_WIDTH_PX = 680  # an A4 page less 15 mm margins (180 mm at 96 px per inch)
# Charts follow the window, which printing does not resize: fix their width to the page's while
# printing, and let them follow the window again after.
PRINT_SCRIPT = """
(function () {
  function each(update) {
    document.querySelectorAll(".plotly-graph-div").forEach(function (div) { update(div); });
  }
  window.addEventListener("beforeprint", function () {
    each(function (div) { Plotly.relayout(div, {width: WIDTH}); });
  });
  window.addEventListener("afterprint", function () {
    each(function (div) { Plotly.relayout(div, {width: null, autosize: true}); });
  });
})();
""".replace("WIDTH", str(PRINT_WIDTH_PX))
HTML_LANG = {"en": "en", "zh_CN": "zh-Hans"}

CSS = """
:root { --ink: #222; --muted: #5a5a5a; --line: #d0d0d0; --done: #1a7f37; --todo: #9a6700; }
body { font-family: FONTS; color: var(--ink); max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; }
h1 { font-size: 1.8rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.4rem; border-bottom: 2px solid var(--line); padding-bottom: 0.2rem; }
h3 { font-size: 1.1rem; margin-top: 1.4rem; }
h4 { font-size: 1rem; margin: 1rem 0 0.4rem; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.1rem 1rem; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
.status { font-size: 0.9rem; font-weight: 600; padding: 0.05rem 0.5rem; border-radius: 0.8rem;
          border: 1px solid currentColor; margin-left: 0.5rem; white-space: nowrap; }
.done { color: var(--done); }
.todo { color: var(--todo); }
ol.steps li { margin-bottom: 0.4rem; }
ol.steps .result { color: var(--muted); display: block; }
blockquote.answer { border-left: 4px solid var(--line); margin: 0; padding: 0.2rem 1rem; }
p.theory { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace, FONTS; }
table { border-collapse: collapse; margin: 0.4rem 0 0.8rem; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.2rem; }
th, td { border: 1px solid var(--line); padding: 0.15rem 0.5rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
article.run, article.map { border-top: 1px dashed var(--line); margin-top: 1rem; }
figure.chart { margin: 0.5rem 0; }
.plotly-graph-div { width: 100%; }
@page { margin: 15mm; }
@media print {
  body { max-width: none; margin: 0; font-size: 10.5pt; }
  section.investigation { break-before: page; }
  figure.chart, table, article.run > h4 { break-inside: avoid; }
  .modebar-container { display: none !important; }
}
""".replace("FONTS", FONT_STACK)


@cache
def plotly_js() -> str:
    """plotly's own bundled plotly.min.js (read once per process)."""
    return plotly.offline.get_plotlyjs()


def _text(value: str) -> str:
    """Escaped text with its line breaks kept."""
    return html.escape(value).replace("\n", "<br>\n")


def _script_json(obj: object) -> str:
    """JSON (plotly's encoder: numpy arrays as typed arrays) that is safe inside a <script>
    element: no '</' to close it early."""
    return to_json_plotly(obj).replace("</", "<\\/")


def _table(table: Table, css: str = "") -> str:
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in table.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in table.rows
    )
    cls = f' class="{css}"' if css else ""
    return (
        f"<table{cls}><caption>{html.escape(table.caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _pairs(caption: str, pairs: dict[str, Setting], css: str) -> str:
    rows = "".join(
        f'<tr><th scope="row">{html.escape(k)}</th><td class="num">{html.escape(value_text(v))}'
        "</td></tr>"
        for k, v in pairs.items()
    )
    return f'<table class="{css}"><caption>{html.escape(caption)}</caption>{rows}</table>'


class _Charts:
    """Numbers the chart divs of one document and writes each one's Plotly.newPlot call."""

    def __init__(self) -> None:
        self.count = 0

    def chart(self, chart: Chart) -> str:
        self.count += 1
        div = f"chart-{self.count}"
        spec = chart.figure.to_dict()  # a deep copy: the font below leaves the figure alone
        layout = spec.setdefault("layout", {})
        layout.setdefault("font", {})["family"] = FONT_STACK
        title = layout.get("title", {})
        text = title.get("text", "") if isinstance(title, dict) else ""
        label = re.sub(r"<[^>]*>", " ", str(text))  # the title, its <b> and <br> left out
        data, layout_json = _script_json(spec["data"]), _script_json(layout)
        tables = "".join(_table(t, "key-numbers") for t in chart.tables)
        return (
            f'<figure class="chart"><div id="{div}" class="plotly-graph-div" role="img" '
            f'aria-label="{html.escape(label.strip())}"></div>'
            f'<script>Plotly.newPlot("{div}", {data}, {layout_json}, '
            f"{_script_json(PLOT_CONFIG)});</script>{tables}</figure>"
        )


def _run(run: WorksheetRun, charts: _Charts) -> str:
    numbers = _pairs(_("Numbers"), run_numbers(run), "numbers")
    settings = _pairs(_("Settings"), run.settings, "settings")
    return (
        f'<article class="run"><h4>{html.escape(run.name)}</h4>'
        f"<p>{_text(run.headline)}</p>{numbers}{settings}"
        + "".join(charts.chart(c) for c in run.charts)
        + "</article>"
    )


def _map(m: WorksheetMap, charts: _Charts) -> str:
    settings = _pairs(_("Settings"), m.settings, "settings")
    return (
        f'<article class="map"><h4>{html.escape(m.title)}</h4>{settings}'
        + "".join(charts.chart(c) for c in m.charts)
        + "</article>"
    )


def _status(done: bool) -> str:
    word = _("done") if done else _("not done yet")
    return f'<span class="status {"done" if done else "todo"}">{html.escape(word)}</span>'


def _investigation(number: int, inv: Investigation, charts: _Charts) -> str:
    parts = [
        f'<section class="investigation" id="investigation-{number}">',
        f"<h2>{number}. {html.escape(inv.title)}{_status(inv.done)}</h2>",
    ]
    if inv.steps:
        parts.append(f'<h3>{html.escape(_("Steps"))}</h3><ol class="steps">')
        for step in inv.steps:
            mark = "✓" if step.done else "○"
            result = f'<span class="result">{_text(step.result)}</span>' if step.result else ""
            parts.append(
                f'<li class="{"done" if step.done else "todo"}"><span aria-hidden="true">'
                f"{mark}</span> {html.escape(step.title)}{result}</li>"
            )
        parts.append("</ol>")
    answer = _text(inv.answer) if inv.answer else html.escape(_("(no answer yet)"))
    parts.append(f"<h3>{html.escape(_('Your answer'))}</h3>")
    parts.append(f'<blockquote class="answer">{answer}</blockquote>')
    if inv.data_says:
        heading = html.escape(_("What the data says"))
        parts.append(f"<h3>{heading}</h3><p>{_text(inv.data_says)}</p>")
    if inv.theory:
        heading = html.escape(_("Theory"))
        parts.append(f'<h3>{heading}</h3><p class="theory">{_text(inv.theory)}</p>')
    if inv.runs:
        parts.append(f"<h3>{html.escape(_('Runs'))}</h3>")
        parts.extend(_run(r, charts) for r in inv.runs)
    if inv.maps:
        parts.append(f"<h3>{html.escape(_('Maps'))}</h3>")
        parts.extend(_map(m, charts) for m in inv.maps)
    parts.append("</section>")
    return "\n".join(parts)


def worksheet_html(sheet: Worksheet) -> str:
    """The worksheet as one HTML document (a str; encode it as UTF-8 to save it)."""
    with language_scope(sheet.language):
        title = _("GRU Lab worksheet")
        meta = "".join(
            f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in sheet_meta(sheet)
        )
        overview = "".join(
            f'<li><a href="#investigation-{i}">{html.escape(inv.title)}</a>{_status(inv.done)}</li>'
            for i, inv in enumerate(sheet.investigations, start=1)
        )
        charts = _Charts()
        body = "\n".join(
            _investigation(i, inv, charts) for i, inv in enumerate(sheet.investigations, start=1)
        )
        lang = HTML_LANG.get(sheet.language, "en")
        return (
            f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n"
            f'<script type="text/javascript">{plotly_js()}</script>\n</head>\n<body>\n'
            f'<header><h1>{html.escape(title)}</h1><dl class="meta">{meta}</dl></header>\n'
            f"<nav><h2>{html.escape(_('Investigations'))}</h2><ul>{overview}</ul></nav>\n"
            f"<main>\n{body}\n</main>\n<script>{PRINT_SCRIPT}</script>\n</body>\n</html>\n"
        )
