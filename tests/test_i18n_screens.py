"""The screens area in 简体中文 and English: the pages' own words, the chart builders, the map's
cells, the watch links' messages and the run store's notes come back in the language in force
(the terms of d2l-zh), English ones as they were; and every message id of the area's files has
a Chinese translation that keeps its placeholders."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from babel.messages.extract import extract_from_file

from dashboard.charts import cells, flow, memory, training
from dashboard.charts.map import EDGE_NAME, maps_figure
from dashboard.charts.map_cells import hover, lambda_line, shown_value, styles, verdict_word
from dashboard.runs.saved import SavedRuns
from dashboard.runs.store import open_run_store
from dashboard.screens.lab import training_slice_text
from dashboard.screens.map import _edge_numbers, progress_text
from dashboard.session.lab import Lab
from dashboard.session.sharing import ShareRegistry, WatchError, _clock
from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.i18n import N_, Note, _, catalogue, language_scope, worded
from gru_core.sweep.job import SweepSnapshot
from gru_core.sweep.results import CellResult, summarize
from gru_core.sweep.spec import AXIS_TITLES, SweepSpec

ROOT = Path(__file__).resolve().parents[1]
AREA = sorted(
    [
        *(ROOT / "dashboard" / "screens").glob("*.py"),
        *(ROOT / "dashboard" / "charts").glob("*.py"),
        *(ROOT / "dashboard" / "session").glob("*.py"),
        *(ROOT / "dashboard" / "runs").glob("*.py"),
        ROOT / "gru_core" / "sweep" / "results.py",
        ROOT / "gru_core" / "sweep" / "edge.py",
        ROOT / "gru_core" / "sweep" / "spec.py",
    ]
)
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
CJK = re.compile(r"[\u4e00-\u9fff]")
FIELD = re.compile(r"\{(\w*)[^{}]*\}")
SPEC = SweepSpec("init_std", (0.01, 0.1), "clip_threshold", (1.0, None))


def chinese(text: str | None) -> bool:
    return bool(text) and bool(CJK.search(str(text)))


def area_messages() -> list[tuple[str | None, str | tuple[str, str], str]]:
    """(context, id, 'file:line') of every marked message in the area's files."""
    found = []
    for path in AREA:
        for lineno, msgid, _comments, context in extract_from_file("python", path, KEYWORDS):
            found.append((context, msgid, f"{path.relative_to(ROOT)}:{lineno}"))
    return found


def steps_frame() -> pd.DataFrame:
    n = 40
    return pd.DataFrame(
        {
            "step": np.arange(1, n + 1),
            "perplexity": np.linspace(28, 5, n),
            "grad_norm": np.linspace(10, 1, n),
            "grad_norm_clipped": np.minimum(np.linspace(10, 1, n), 1.0),
            "clip_threshold": np.ones(n),
            "clipped": np.linspace(10, 1, n) > 1,
        }
    )


def cell(x: float, y: float | None, verdict: str, ppl: float | None = None) -> CellResult:
    return CellResult(
        "gru", x, y, 0, x, y, 1.0, 35, 32, status="done", verdict=verdict,
        final_val_perplexity=ppl, final_train_perplexity=ppl, steps=80, epochs=10,
        curve_perplexity=(27.0, 12.0) if ppl else (), lyapunov=-0.4,
    )  # fmt: skip


# -- the catalogue ---------------------------------------------------------------------------
def test_every_message_of_the_area_has_a_chinese_translation_with_its_placeholders():
    zh, en = catalogue("zh_CN"), catalogue("en")
    problems = []
    for context, msgid, where in area_messages():
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        message = zh.get(key, context=context)
        strings = message.string if message is not None else None
        strings = strings if isinstance(strings, tuple) else (strings,)
        if message is None or not all(strings):
            problems.append(f"{where}: no Chinese for {msgid!r}")
            continue
        wanted = set(FIELD.findall(key))
        for text in strings:
            if set(FIELD.findall(text)) != wanted:
                problems.append(f"{where}: {text!r} has fields {msgid!r} does not")
            if text.count("**") != key.count("**"):
                problems.append(f"{where}: {text!r} lost the bold marks of {msgid!r}")
        english = en.get(key, context=context)
        if english is None or not english.string:
            problems.append(f"{where}: no English for {msgid!r}")
    assert not problems, "\n".join(problems)


def test_the_area_marks_its_words_and_the_two_catalogue_files_exist():
    messages = {msgid for _c, msgid, _w in area_messages()}
    assert len(messages) > 150  # the pages, the charts, the map's cells, the store's notes
    for lang in ("en", "zh_CN"):
        for area in ("screens", "charts"):
            assert (ROOT / f"gru_core/locale/{lang}/LC_MESSAGES/{area}.po").exists()


# -- the pages' own words --------------------------------------------------------------------
def test_what_the_run_reads_in_both_languages():
    config = TrainConfig()
    english = training_slice_text(170_580, config)
    assert english == (
        "trains on the first 10,000 of 170,580 characters (as in d2l), validates on the next 5,000"
    )
    with language_scope("zh_CN"):
        text = training_slice_text(170_580, config)
    assert text == "用 170,580 个字符中的前 10,000 个训练（与 d2l 相同），用接下来的 5,000 个验证"


def test_the_map_axes_progress_and_edge_in_chinese():
    with language_scope("zh_CN"):
        assert "学习率" in _(AXIS_TITLES["lr"]) and "初始化" in _(AXIS_TITLES["init_std"])
        assert shown_value(None) == "关闭" and shown_value(0.01) == "0.01"
        snap = SweepSnapshot("running", (), 3, 12, 41.2, "one chunk", "local")
        assert progress_text(snap) == "运行中 · 12 次运行中已完成 3 次 · 41 秒 · one chunk"
        edge = _edge_numbers({("gru", 32): 0.13, ("rnn", 32): None})
        assert edge.startswith("λ = 0") and "隐藏单元数 32" in edge and "初始化标准差 0.13" in edge
    assert progress_text(snap) == "running · 3 of 12 runs · 41 s · one chunk"
    assert shown_value(None) == "off"


# -- the charts ------------------------------------------------------------------------------
def figure_words(fig) -> list[str]:
    layout = fig.layout
    words = [layout.title.text, layout.xaxis.title.text, layout.yaxis.title.text]
    words += [t.name for t in fig.data if t.name and t.showlegend is not False]
    return [w for w in words if w]


def test_training_charts_in_chinese_and_english():
    steps = steps_frame()
    epochs = pd.DataFrame({"step": [20, 40], "train_perplexity": [9.0, 5.0]})
    with language_scope("zh_CN"):
        ppl = training.perplexity_figure(steps, epochs)
        norm = training.grad_norm_figure(steps)
    assert ppl.layout.title.text == "困惑度" and ppl.layout.xaxis.title.text == "训练步"
    assert all(chinese(w) for w in figure_words(ppl))
    assert "梯度范数" in norm.layout.title.text and "裁剪" in norm.layout.title.text
    assert {t.name for t in norm.data} >= {"裁剪后", "裁剪前", "裁剪阈值"}
    english = training.grad_norm_figure(steps)
    assert english.layout.title.text.startswith("Gradient norm · ")
    assert english.layout.title.text.endswith("of steps clipped")
    assert training.perplexity_figure(steps, epochs).layout.yaxis.title.text == "perplexity (log)"


def test_gradient_flow_charts_in_chinese():
    flow_row = np.array([1e-40, 1e-3, 0.1, 1.0])
    with language_scope("zh_CN"):
        line = flow.grad_flow_line_figure(flow_row, 7)
        reach = flow.reach_figure({"#1 GRU": flow_row})
        heat = flow.grad_flow_heatmap_figure(np.array([1, 2]), np.vstack([flow_row, flow_row]))
    assert line.layout.xaxis.title.text == "时间步 t" and "梯度" in line.layout.title.text
    assert line.layout.title.subtitle.text == "训练第 7 步时"
    assert any(a.text == "低于 1e-30" for a in line.layout.annotations)  # the floor, marked
    assert "传播距离" in reach.layout.title.text and reach.data[1].text[0] == "2 / 3"
    assert heat.layout.title.text == "训练过程中随时间反向传播的梯度流"
    assert heat.data[0].colorbar.ticktext[0] == "低于 1e-30"
    english = flow.grad_flow_line_figure(flow_row, 7)
    assert english.layout.title.subtitle.text == "at training step 7"
    assert any(a.text == "below 1e-30" for a in english.layout.annotations)


def test_gate_and_memory_charts_in_chinese():
    with language_scope("zh_CN"):
        heat = cells.gate_heatmap_figure(np.full((3, 2), 0.5), "abc", "Z")
        probe = cells.probe_text_html("ab", np.array([0.1, 0.9]))
        conn = memory.connectivity_figure("hello", np.array([0.1, 0.2, 0.3, 0.5]), "l", reach=2)
        ranking = memory.unit_ranking_figure([(3, 0.5)], "e")
    assert chinese(heat.layout.title.text) and heat.layout.xaxis.title.text == "时间步（字符）"
    assert "保留旧状态" in probe and "写入新状态" in probe
    assert conn.layout.title.text.startswith("预测向前看多远")
    assert conn.layout.annotations[-1].text == "90% 集中在 2 个字符以内"
    assert ranking.layout.yaxis.ticktext == ("单元 3",)
    english = memory.connectivity_figure("hello", np.array([0.1, 0.2, 0.3, 0.5]), "l", reach=1)
    assert english.layout.annotations[-1].text == "90% within 1 character"


def test_the_map_in_chinese_words_its_categories_at_display():
    results = [cell(0.01, 1.0, "learned", 5.0), cell(0.1, None, "blew up")]
    with language_scope("zh_CN"):
        fig = maps_figure(results, SPEC, edges={("gru", SPEC.base.hidden_size): 0.05})
        legend = {t.name for t in fig.data if t.showlegend}
        one = hover(summarize(results[:1])[0], "初始化标准差", "裁剪阈值 θ", -0.4)
        assert verdict_word("blew up") == "爆炸" and lambda_line(0.2).endswith("信号增长）")
        assert [s[2] for s in styles({"diverged", "pending"})] == ["发散（NaN/inf）", "未完成"]
    assert fig.layout.title.text == "GRU：最终困惑度（横轴：初始化标准差，纵轴：裁剪阈值 θ）"
    assert "爆炸 / 出错" in legend and "混沌边缘（理论值，初始化时）" in legend
    assert fig.layout.xaxis.ticktext == ("0.01", "0.1") and fig.layout.yaxis.ticktext[1] == "关闭"
    assert "学会了" in one and "验证集困惑度 5" in one and "1/1 个种子已完成" in one
    english = maps_figure(results, SPEC, edges={("gru", SPEC.base.hidden_size): 0.05})
    assert EDGE_NAME in {t.name for t in english.data}
    assert english.layout.title.text == "GRU: final perplexity by init std and clip θ"


# -- sharing and the run store ---------------------------------------------------------------
def test_watch_link_messages_in_chinese(tmp_path: Path, small_corpus: Corpus):
    registry = ShareRegistry()
    with language_scope("zh_CN"), pytest.raises(WatchError, match="观看链接已经失效"):
        registry.watch("no-such-token-at-all", "w1")
    db = tmp_path / "runs.sqlite3"
    store = open_run_store(db)
    lab = Lab(corpus=small_corpus, runs=SavedRuns(store=store, token="a" * 32))
    token = ShareRegistry(store=store, started=time.time() - 60).share(lab, "owner")
    later = ShareRegistry(store=open_run_store(db), started=time.time() + 1)
    with language_scope("zh_CN"), pytest.raises(WatchError, match="服务器于 .* 重启"):
        later.watch(token, "w1")
    yesterday = time.time() - 86_400
    with language_scope("zh_CN"):
        assert re.fullmatch(r"\d{1,2}月\d{1,2}日 \d\d:\d\d", _clock(yesterday))
    assert re.fullmatch(r"\d{1,2} \w{3} \d\d:\d\d", _clock(yesterday))


def test_a_store_note_is_english_text_and_worded_where_shown(tmp_path: Path):
    (tmp_path / "a file").write_text("not a folder")
    store = open_run_store(tmp_path / "a file" / "runs.sqlite3")
    runs = SavedRuns(store=store, token="b" * 32)
    assert "cannot be used" in store.status_message  # the English text, as before
    with language_scope("zh_CN"):
        shown = runs.status_message
    assert shown is not None and "无法使用" in shown and "保留在内存中" in shown
    assert runs.status_message == str(store.status_message)
    note = Note(N_("saved runs are kept in memory until the server restarts"))
    assert worded(note.then(Note("{text}", text="x {y}"))).endswith("restarts x {y}")
    assert worded("plain") == "plain" and worded(None) is None


def test_a_saved_runs_title_is_worded_and_its_name_stays_the_identifier():
    from dashboard.runs.saved import run_name, run_title
    from gru_core.config import TrainConfig

    start = TrainConfig(hidden_size=128, init_std=0.1, lr=5.0, clip_threshold=1.0)
    end = TrainConfig(hidden_size=128, init_std=0.1, lr=5.0, clip_threshold=None)
    english = "#3 GRU h128 std0.1 clip 1→off lr 5 T35 (blew up)"
    assert run_name(3, start, end, "blew up") == english
    assert run_title(3, start, end, "blew up") == english  # English: the title is the name
    with language_scope("zh_CN"):
        assert run_name(3, start, end, "blew up") == english  # identifiers never change
        assert (
            run_title(3, start, end, "blew up")
            == "#3 GRU h128 标准差0.1 裁剪 1→关闭 学习率 5 T35（爆炸）"
        )
