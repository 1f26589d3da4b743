"""The worksheet to take home: one HTML file that parses, embeds every chart, holds plotly.js
once and names no address outside itself; a Markdown copy with every investigation, answer and
run; under 10 MB for a realistic worksheet; Chinese kept whole."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dashboard.worksheet import (
    Investigation,
    Table,
    Worksheet,
    file_name,
    worksheet_html,
    worksheet_map,
    worksheet_markdown,
    worksheet_run,
)
from dashboard.worksheet.html import FONT_STACK, plotly_js
from gru_core.config import TrainConfig
from gru_core.i18n import language_scope
from gru_core.sweep.spec import SweepSpec
from tests.worksheet_sample import STEPS, map_results, realistic_sheet, saved_run

MAX_BYTES = 10 * 1024 * 1024
VOID = {"meta", "br", "link", "img", "input", "hr", "area", "base", "col", "source", "wbr"}
EXTERNAL = re.compile(r"https?://|//cdn|@import|url\(", re.IGNORECASE)


class Document(HTMLParser):
    """Reads a page: tags balanced, attributes that could fetch, text, scripts."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.errors: list[str] = []
        self.fetching: list[str] = []  # src=, and href= other than '#...'
        self.classes: list[str] = []
        self.ids: list[str] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "src" or (name == "href" and not (value or "").startswith("#")):
                self.fetching.append(f"{tag} {name}={value}")
            if name == "class":
                self.classes.extend((value or "").split())
            if name == "id":
                self.ids.append(value or "")
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] == "script":
            self.scripts.append(data)
        else:
            self.text.append(data)


def external_addresses(page: str) -> list[str]:
    """Addresses outside the file in what the worksheet writes (plotly's own bundle aside:
    it names SVG namespaces and tile servers in its source; nothing here asks for them)."""
    return EXTERNAL.findall(page.replace(plotly_js(), ""))


def plots(doc: Document) -> list[tuple[str, list, dict]]:
    """(div id, data, layout) of every Plotly.newPlot call in the page's scripts."""
    decoder = json.JSONDecoder()
    found = []
    for script in doc.scripts:
        for match in re.finditer(r'Plotly\.newPlot\("([^"]+)", ', script):
            data, end = decoder.raw_decode(script, match.end())
            layout, _ = decoder.raw_decode(script, end + 2)
            found.append((match.group(1), data, layout))
    return found


@pytest.fixture(scope="module")
def sheet() -> Worksheet:
    return realistic_sheet()


@pytest.fixture(scope="module")
def page(sheet: Worksheet) -> str:
    return worksheet_html(sheet)


def test_the_scanners_find_what_they_look_for() -> None:
    doc = Document('<p><a href="#x">a</a><img src="x.png"><a href="https://a.b">b</a></p><i>')
    assert doc.fetching == ["img src=x.png", "a href=https://a.b"]
    assert Document("<p><b>x</p>").errors == ["</p> closes ['b']"]
    assert len(external_addresses('<script src="//cdn.x/p.js"></script> http://a https://b')) == 3
    assert external_addresses("<style>@import 'f.css'; a { background: url(x) }</style>")


def test_the_html_parses_and_embeds_every_chart_once(sheet: Worksheet, page: str) -> None:
    doc = Document(page)
    assert doc.errors == [] and doc.open == []
    charts = sheet.charts()
    assert len(charts) == 14  # 6 runs x 2 charts, 2 maps
    drawn = plots(doc)
    assert len(drawn) == page.count("Plotly.newPlot(") == len(charts)
    assert doc.classes.count("plotly-graph-div") == len(charts)
    assert [div for div, _, _ in drawn] == [i for i in doc.ids if i.startswith("chart-")]
    for chart, (_, data, layout) in zip(charts, drawn, strict=True):
        assert len(data) == len(chart.figure.data)
        assert layout["title"]["text"] == chart.figure.layout.title.text
        assert layout["font"]["family"] == FONT_STACK
        assert chart.figure.layout.font.family != FONT_STACK  # the sheet's figures untouched


def test_plotly_js_is_inline_once_and_nothing_is_fetched(page: str) -> None:
    assert page.count(plotly_js()) == 1
    assert page.count("* plotly.js v") == 1
    doc = Document(page)
    assert doc.fetching == []  # no src=, no link that leaves the page
    assert external_addresses(page) == []
    assert "mathjax" not in page.replace(plotly_js(), "").lower()


def test_a_realistic_worksheet_is_under_10_mb(page: str) -> None:
    size = len(page.encode("utf-8"))
    assert size < MAX_BYTES, f"worksheet of 3 investigations, 6 runs, 2 maps: {size:,} bytes"
    figures = size - len(plotly_js().encode("utf-8"))
    print(f"worksheet {size / 1e6:.2f} MB, of which figures and text {figures / 1e6:.2f} MB")


def test_the_markdown_holds_every_investigation_answer_and_run(sheet: Worksheet) -> None:
    text = worksheet_markdown(sheet)
    for inv in sheet.investigations:
        assert f"{inv.title} (" in text
        for line in inv.answer.splitlines():
            assert f"> {line}" in text
        assert inv.data_says in text and inv.theory in text
        for step in inv.steps:
            assert f"- [{'x' if step.done else ' '}] {step.title}" in text
        for run in inv.runs:
            assert f"#### {run.name}" in text
            assert run.headline in text
            for table in (t for c in run.charts for t in c.tables):
                assert f"*{table.caption}*" in text
                assert "| " + " | ".join(table.rows[-1]) + " |" in text
        for m in inv.maps:
            assert f"#### {m.title}" in text
    assert text.count("\n## ") == len(sheet.investigations)
    assert "Plotly" not in text


def test_a_run_says_its_own_numbers() -> None:
    saved = saved_run(3, 2, model="rnn", clip_threshold=None, init_std=0.1)
    run = worksheet_run(saved)
    assert run.model == "RNN" and run.steps == STEPS and run.epochs == STEPS // 8
    assert run.final_train_perplexity == saved.verdict.final_perplexity
    assert run.settings["clip threshold θ"] == "off" and run.settings["init std"] == 0.1
    epochs = run.charts[0].tables[0]
    last = saved.epochs.iloc[-1]
    assert epochs.rows[-1] == ("500", "4000", f"{last.train_perplexity:.4g}",
                               f"{last.val_perplexity:.4g}")  # fmt: skip
    assert len(epochs.rows) == 12 and epochs.rows[0][0] == "1"
    grads = dict(run.charts[1].tables[0].rows)
    assert grads["share of steps clipped"] == "0%"  # clipping off
    assert grads["largest gradient norm before clipping"] == f"{saved.steps.grad_norm.max():.4g}"
    assert run.verdict == "learned" and run.headline == saved.verdict.headline


def test_a_map_table_gives_every_cell_its_word() -> None:
    spec = SweepSpec(models=("gru", "rnn"), base=TrainConfig(hidden_size=256))
    m = worksheet_map(map_results(spec), spec)
    assert m.models == ("GRU", "RNN")
    gru, rnn = m.charts[0].tables
    assert gru.header == ("clip θ \\ init std", "0.001", "0.01", "0.1", "1")
    assert [row[0] for row in gru.rows] == ["0.1", "1", "10", "off"]
    assert gru.rows[0][1:] == ("2", "2.03", "2.3", "diverged @ step 12")
    assert rnn.rows[3][1:] == ("2.5", "2.53", "diverged @ step 12", "diverged @ step 12")
    assert m.settings["hidden units"] == 256 and "init std" not in m.settings
    with language_scope("zh_CN"):  # the table is prose: 'off' is worded, not the identifier
        zh = worksheet_map(map_results(spec), spec)
    assert [row[0] for row in zh.charts[0].tables[0].rows][-1] == "关闭"
    assert zh.charts[0].tables[0].rows[0][-1] == "第 12 步发散"


def test_a_table_row_must_match_its_header() -> None:
    with pytest.raises(ValueError, match="a row has 1 cells, the header 2"):
        Table("t", ("a", "b"), (("x",),))


def test_student_text_cannot_break_the_page() -> None:
    evil = '</script><script>alert("x")</script> & <b>'
    inv = Investigation(title=evil, done=False, answer=evil)
    page = worksheet_html(Worksheet((inv,), student=evil))
    doc = Document(page)
    assert doc.errors == [] and "alert" not in "".join(doc.scripts)
    assert evil in "".join(doc.text)
    assert "(no answer yet)" not in page
    assert "(no answer yet)" in worksheet_html(Worksheet((Investigation("q", False),)))


def test_chinese_round_trips_through_both_files(tmp_path: Path) -> None:
    answer = "门控循环单元在 θ = 1 时也能学会；\n循环神经网络更常被裁剪。"
    sheet = realistic_sheet("zh_CN", answer=answer)
    path = tmp_path / "worksheet.html"
    path.write_text(worksheet_html(sheet), encoding="utf-8")
    page = path.read_text(encoding="utf-8")
    doc = Document(page)
    assert doc.errors == []
    text = "".join(doc.text)
    assert answer.replace("\n", "") in text.replace("\n", "")
    assert '<html lang="zh-Hans">' in page and "Noto Sans CJK SC" in page
    for heading in ("GRU 实验室作业单", "你的回答", "数据怎么说", "每个迭代周期的困惑度"):
        assert heading in text
    markdown = worksheet_markdown(sheet)
    assert (
        "> 门控循环单元在 θ = 1 时也能学会；" in markdown
        and "> 循环神经网络更常被裁剪。" in markdown
    )
    assert "### 你的回答" in markdown and "| 隐藏单元数 | 256 |" in markdown


def test_the_file_name_says_whose_and_when() -> None:
    sheet = realistic_sheet()
    assert file_name(sheet, "html") == "gru-lab-worksheet-Ada-2026-12-05.html"
    named = Worksheet((), date=sheet.date, student=" 李 雷/../x ")
    assert file_name(named, ".md") == "gru-lab-worksheet-李-雷----x-2026-12-05.md"
    assert file_name(Worksheet((), date=sheet.date), "md") == "gru-lab-worksheet-2026-12-05.md"
