"""The sidebar, the pages' titles, the model titles and the gate registry in both languages
(issue 22, area "side"): under ``language_scope("zh_CN")`` every word they show is Chinese in
the terms of d2l-zh, under "en" it is today's English, and every id they mark has a Chinese
translation that keeps its placeholders and markdown.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from streamlit.testing.v1 import AppTest

from dashboard.sidebar import controls as ctl
from dashboard.sidebar import lessons
from dashboard.sidebar.room import parse_keys
from gru_core.config import (
    FIELD_NAMES,
    LIVE_KNOBS,
    MODEL_TITLES,
    TrainConfig,
    describe_device,
    model_title,
)
from gru_core.i18n import _, catalogue, language_scope
from gru_core.model.gates import GATES
from gru_core.model.gates import label as gate_label

REPO = Path(__file__).resolve().parents[1]
AREA = (
    "dashboard/app.py",
    "dashboard/sidebar/controls.py",
    "dashboard/sidebar/lessons.py",
    "dashboard/sidebar/panel.py",
    "dashboard/sidebar/room.py",
    "gru_core/config.py",
    "gru_core/model/gates.py",
)
SIDE_PO = REPO / "gru_core" / "locale" / "zh_CN" / "LC_MESSAGES" / "side.po"
CJK = re.compile(r"[\u4e00-\u9fff]")
FIELD = re.compile(r"\{[^{}]*\}")  # a .format field ('{n}') or a subscript ('H_{t-1}')


def chinese(text: str) -> bool:
    return bool(CJK.search(text))


def zh(fn: Callable[[], object]) -> object:
    with language_scope("zh_CN"):
        return fn()


def area_ids() -> list[tuple[str, str | tuple[str, str]]]:
    """(file, id) for every ``_()``, ``N_()`` and ``ngettext()`` in the area's files."""
    return [
        (path, message)
        for path in AREA
        for _lineno, message, _comments, _context in extract_from_file("python", REPO / path)
    ]


# -- the catalogue ----------------------------------------------------------------------------
def test_the_scan_sees_the_area() -> None:
    found = {message for _path, message in area_ids()}
    assert {"Learning rate (log scale)", "update gate Z", "Trainability map"} <= found
    assert ("CPU ({n} thread)", "CPU ({n} threads)") in found
    assert len(found) > 100


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_every_id_of_the_area_is_translated(lang: str) -> None:
    book = catalogue(lang)
    missing = []
    for path, message in area_ids():
        key = message[0] if isinstance(message, tuple) else message
        entry = book.get(key)
        strings = entry.string if entry is not None else ""
        strings = strings if isinstance(strings, tuple) else (strings,)
        if not all(strings):
            missing.append(f"{path}: {key!r}")
    assert missing == []


def test_side_po_keeps_placeholders_and_markdown_and_is_chinese() -> None:
    with SIDE_PO.open("rb") as fh:
        book = [m for m in read_po(fh, locale="zh_CN") if m.id]
    assert len(book) > 100
    for message in book:
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        text = message.string[0] if isinstance(message.string, tuple) else message.string
        assert sorted(FIELD.findall(text)) == sorted(FIELD.findall(key)), key
        assert text.count("**") == key.count("**"), key
        assert text.count("`") == key.count("`"), key
        if re.search(r"[a-z]{3}", FIELD.sub("", key)):
            assert chinese(text), key  # words, not only names and symbols, become Chinese


# -- the control table ------------------------------------------------------------------------
def test_controls_read_chinese_in_the_books_terms() -> None:
    def shown() -> dict[str, tuple[str, str, str]]:
        return {
            c.key: (_(c.label), _(c.help) if c.help else "", _(c.section)) for c in ctl.CONTROLS
        }

    words = zh(shown)
    assert isinstance(words, dict)
    for key, (label, help_text, section) in words.items():
        assert chinese(label) and chinese(section), key
        assert not help_text or chinese(help_text), key
    assert "学习率" in words["lr"][0]
    assert "隐藏单元数" in words["hidden"][0]
    assert "裁剪阈值" in words["clip"][0] and "梯度裁剪" in words["clip_on"][0]
    assert "迭代周期" in words["epochs"][0]
    assert "批量大小" in words["batch"][0]
    assert "标准差" in words["init_std"][0]
    assert "小批量" in words["batch"][1]
    assert "隐状态" in words["hidden"][1]
    assert {words[k][2] for k in ("hidden", "lr", "speed")} == {"模型", "训练", "运行"}


def test_controls_read_todays_english_by_default() -> None:
    assert ctl.BY_KEY["lr"].label == "Learning rate (log scale)"
    assert _(ctl.BY_KEY["lr"].label) == "Learning rate (log scale)"
    assert _(ctl.BY_KEY["batch"].help) == "sequences per minibatch B (d2l: 32)"
    assert ctl.BY_KEY["speed"].show("max") == "max"
    assert ctl.BY_KEY["slice"].show(10_000) == "10,000 (d2l)"


def test_option_names_are_shown_translated_and_stay_identifiers() -> None:
    model, sampling = ctl.BY_KEY["model"], ctl.BY_KEY["sampling"]
    speed, device, slice_ = ctl.BY_KEY["speed"], ctl.BY_KEY["device"], ctl.BY_KEY["slice"]
    assert zh(lambda: [model.show(o) for o in model.options]) == [
        "GRU", "RNN", "LSTM", "GRU（仅重置门）", "GRU（仅更新门）",
    ]  # fmt: skip
    assert zh(lambda: [sampling.show(o) for o in sampling.options]) == ["顺序分区", "随机采样"]
    assert zh(lambda: speed.show("max")) == "最快" and zh(lambda: speed.show(5)) == "5"
    assert zh(lambda: device.show("auto")) == "自动" and zh(lambda: device.show("cpu")) == "cpu"
    assert zh(lambda: slice_.show("all")) == "全部"
    assert zh(lambda: slice_.show(10_000)) == "10,000 (d2l)"  # numbers as today
    assert ctl.BY_KEY["init_std"].show(0.01) == "0.01"  # a ladder's rung as str() shows it
    # the values the widgets hold, the URL and the config read are the same in both languages
    assert model.options == tuple(MODEL_TITLES[m] for m in ctl.MODELS.values())
    assert zh(lambda: ctl.config_from_values({"model": "GRU (reset gate only)"})) == TrainConfig(
        model="gru_reset_only"
    )


def test_url_warnings_speak_the_readers_language() -> None:
    _values, warnings = zh(lambda: ctl.from_query({"clip": "3", "hidden": "abc", "lr": "0"}))
    assert len(warnings) == 3 and all(chinese(w) for w in warnings)
    assert any("`clip=3`" in w and "最接近的是 2" in w for w in warnings)
    _keys, unknown = zh(lambda: parse_keys("clip,bogus", "hide"))
    assert unknown == ["已忽略网址中的 `hide=bogus`：没有名为 'bogus' 的控件"]
    _values, english = ctl.from_query({"clip": "3"})
    assert english == ["ignored `clip=3` in the URL: not on the slider; nearest is 2"]


def test_restart_changes_name_every_field_in_both_languages() -> None:
    running = TrainConfig()
    wanted = running.replace(hidden_size=64, num_steps=100, batch_size=8)
    assert ctl.restart_changes(running, wanted) == [
        "hidden size 256 → 64", "num steps 35 → 100", "batch size 32 → 8",
    ]  # fmt: skip
    assert zh(lambda: ctl.restart_changes(running, wanted)) == [
        "隐藏单元数 256 → 64", "时间步数 35 → 100", "批量大小 32 → 8",
    ]  # fmt: skip
    assert set(FIELD_NAMES) == set(running.to_dict())


# -- lessons ----------------------------------------------------------------------------------
def test_lessons_are_translated_in_full_and_keep_their_identifiers() -> None:
    for lesson in lessons.LESSONS:
        title, words = zh(lambda lesson=lesson: (lesson.title, lesson.words))
        assert chinese(title) and chinese(words), lesson.name
        assert len(words) > 0.2 * len(lesson.text), lesson.name  # the whole text, not a stub
        assert (lesson.title, lesson.words) == (lesson.name, lesson.text)  # English as today
        assert lessons.BY_NAME[lesson.name] is lesson
    exploding = lessons.BY_NAME["Exploding gradients"]
    assert zh(lambda: exploding.title) == "梯度爆炸"
    assert "困惑度" in zh(lambda: lessons.BY_NAME["d2l default"].words)
    assert "梯度消失" in zh(lambda: lessons.BY_NAME["Long sequences"].words)


# -- names shown elsewhere: models, live knobs, gates, devices ---------------------------------
def test_model_titles_knobs_gates_and_devices_in_both_languages() -> None:
    assert model_title("gru_update_only") == "GRU (update gate only)"
    assert zh(lambda: model_title("gru_update_only")) == "GRU（仅更新门）"
    assert zh(lambda: model_title("lstm")) == "LSTM"
    assert zh(lambda: _(LIVE_KNOBS["lr"].title)) == "当前学习率"
    assert zh(lambda: _(LIVE_KNOBS["clip_threshold"].title)) == "当前裁剪阈值 θ"
    assert LIVE_KNOBS["clip_threshold"].title == "Clip θ in force"
    assert zh(lambda: (GATES["Z"].label, GATES["R"].label, GATES["H_tilde"].label)) == (
        "更新门 Z", "重置门 R", "候选隐状态 H̃",
    )  # fmt: skip
    assert GATES["Z"].label == "update gate Z" and gate_label("Z") == "update gate Z"
    assert zh(lambda: gate_label("Z")) == "更新门 Z" and zh(lambda: gate_label("nope")) == "nope"
    for gate in GATES.values():
        caption, rule = zh(lambda gate=gate: (gate.caption, gate.saturation_rule))
        assert chinese(caption) and chinese(rule), gate.name
        assert gate.caption == gate.meaning and gate.label == gate.title
    assert GATES["Z"].saturation_rule == "below 0.05 or above 0.95"
    assert zh(lambda: GATES["Z"].saturation_rule) == "低于 0.05 或高于 0.95"
    assert re.fullmatch(r"CPU \(\d+ threads?\)", describe_device("cpu"))
    assert re.fullmatch(r"CPU（\d+ 个线程）", str(zh(lambda: describe_device("cpu"))))


# -- the sidebar as Streamlit draws it --------------------------------------------------------
def _sidebar_page() -> None:  # run by AppTest from its source: imports inside
    import os

    import streamlit as st

    from dashboard.sidebar import panel
    from gru_core.i18n import use_language
    from gru_core.sources import load_corpus

    use_language(st.query_params.get("lang", "en"))
    panel.init_widget_state()
    panel.sidebar(load_corpus(os.environ["GRU_LAB_CORPUS"]), st.sidebar)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_sidebar_draws_every_word_in_the_language(
    lang: str, corpus_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRU_LAB_CORPUS", corpus_path)
    at = AppTest.from_function(_sidebar_page, default_timeout=60)
    at.query_params["lang"] = lang
    at.query_params["hidden"] = "abc"  # a bad URL value: a warning in the reader's language
    at.run()
    assert not at.exception
    headers = [h.value for h in at.sidebar.header]
    lesson = at.selectbox(key="lesson")
    if lang == "en":
        assert headers == ["Lesson", "Model", "Training", "Run"]
        assert at.select_slider(key="lr").label == "Learning rate (log scale)"
        assert at.radio(key="sampling").options == ["sequential", "random"]
        assert lesson.options[1] == "Exploding gradients"
        assert at.session_state["url_warnings"][0].startswith("ignored `hidden=abc`")
        return
    assert headers == ["课程", "模型", "训练", "运行"]
    assert at.select_slider(key="lr").label == "学习率（对数刻度）"
    assert at.slider(key="hidden").label == "隐藏单元数"
    assert at.radio(key="sampling").options == ["顺序分区", "随机采样"]
    assert at.session_state["sampling"] == "sequential"  # the value is the identifier
    assert lesson.label == "课程预设" and lesson.options[1] == "梯度爆炸"
    assert at.session_state["url_warnings"][0].startswith("已忽略网址中的 `hidden=abc`")
    widgets = [*at.slider, *at.select_slider, *at.toggle, *at.number_input, *at.radio]
    assert widgets and all(chinese(w.label) for w in widgets)
    lesson.select_index(1).run()  # AppTest reads the values back through the shown names
    assert [i.value for i in at.sidebar.info] == [zh(lambda: lessons.LESSONS[1].words)]
