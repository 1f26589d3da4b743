"""The views' words in both languages (issue 22): the status line, the views, the captions,
the advice and the verdicts read Chinese under ``zh_CN`` (in the terms of d2l-zh) and today's
English under ``en``; every message id of the views' files has a Chinese translation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.views import compare, training
from dashboard.views.captions import CAPTIONS
from dashboard.views.cells import lambda_sentence, reach_numbers
from dashboard.views.memory import CUSTOM
from dashboard.views.teaching import (
    bands_caption,
    equation_legend,
    equations,
    model_name,
    outcome_advice,
)
from gru_core import memory
from gru_core.config import TrainConfig
from gru_core.data import Vocab
from gru_core.i18n import _, catalogue, language_scope
from gru_core.run.records import Outcome
from gru_core.run.verdict import VERDICTS, Evidence, Verdict, judge, kind_words

ROOT = Path(__file__).resolve().parents[1]
FILES = [
    "dashboard/views/training.py",
    "dashboard/views/cells.py",
    "dashboard/views/memory.py",
    "dashboard/views/compare.py",
    "dashboard/views/teaching.py",
    "dashboard/views/captions.py",
    "dashboard/views/display.py",
    "gru_core/run/verdict.py",
    "gru_core/memory.py",
]
CJK = re.compile(r"[\u4e00-\u9fff]")
V = 28  # |V| of d2l's character vocabulary
LEARNED = Evidence.of([27.9, 9.5], None, [9.5], [10.0])
MEMORISED = Evidence.of([27.9, 1.05], None, [1.05], [7.1, 77.39])


def chinese(text: str) -> bool:
    return bool(CJK.search(text))


def message_ids() -> list[str]:
    """Every ``_``/``N_``/``ngettext``/``pgettext`` id in the views' files (Babel's extractor)."""
    extract = pytest.importorskip("babel.messages.extract")
    keywords = {"_": None, "N_": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
    ids: list[str] = []
    for name in FILES:
        for _line, message, _comments, _context in extract.extract_from_file(
            "python", ROOT / name, keywords=keywords
        ):
            for msgid in message if isinstance(message, tuple) else (message,):
                if msgid not in ids:
                    ids.append(msgid)
    return ids


def test_every_views_message_has_a_chinese_translation() -> None:
    ids = message_ids()
    assert len(ids) > 150 and "Overview" in ids and "It learned: {trip}." in ids
    zh, en = catalogue("zh_CN"), catalogue("en")
    missing = [i for i in ids if zh.get(i) is None or not zh.get(i).string]
    assert not missing, f"no zh_CN msgstr for: {missing}"
    for msgid in ids:
        text = zh.get(msgid).string
        assert chinese(text) or msgid in ("; ",) or not re.search("[a-z]{3}", msgid), msgid
        # The same format fields and Markdown emphasis, so .format() and ** still work.
        assert sorted(re.findall(r"\{[^{}]*\}", text)) == sorted(
            re.findall(r"\{[^{}]*\}", msgid)
        ), msgid
        assert text.count("**") == msgid.count("**"), msgid
        english = en.get(msgid)
        assert english is None or english.string in ("", msgid), msgid


def test_every_caption_reads_chinese_under_zh_and_english_under_en() -> None:
    assert set(CAPTIONS.ids()) <= set(message_ids())
    with language_scope("zh_CN"):
        for key in CAPTIONS:
            assert chinese(CAPTIONS[key]), key
        assert "困惑度" in CAPTIONS["perplexity"] and "梯度裁剪" in CAPTIONS["grad_norm"]
        assert "梯度消失" in CAPTIONS["flow_reach"] and "时间步" in CAPTIONS["flow_heat"]
        assert "隐状态" in CAPTIONS["no_gates"] and "初始化标准差" in CAPTIONS["compare_empty"]
        assert "{n}" in CAPTIONS["compare_empty"]
    with language_scope("en"):
        assert CAPTIONS["compare"].startswith("Does a GRU need a higher clip threshold")
        assert not any(chinese(CAPTIONS[key]) for key in CAPTIONS)


def test_the_gate_bands_caption_names_the_saturation_rule_in_either_language() -> None:
    with language_scope("en"):
        text = bands_caption(["Z"])
        assert "fraction saturated (below 0.05 or above 0.95)" in text
        assert "{rule}" not in text and "Z near 1 keeps the old state" in text
    with language_scope("zh_CN"):
        text = bands_caption([])
        assert "饱和" in text and "0.05" in text and "{rule}" not in text


def test_the_view_selector_states_and_throughput_basis_are_worded() -> None:
    with language_scope("zh_CN"):
        assert [_(v) for v in training.VIEWS] == [
            "概览", "梯度", "门控", "跨时间步", "记忆", "文本",
        ]  # fmt: skip
        assert training.state_words("out_of_memory") == "内存不足"
        assert training.state_words("paused") == "已暂停"
        assert training.basis_words("last 5 s") == "最近 5 秒"
        assert training.basis_words("mean over the run") == "整个运行的平均值"
        assert training._placeholder(None) == "按“开始”进行训练"
    with language_scope("en"):
        assert training.VIEWS[0] == _(training.VIEWS[0]) == "Overview"
        assert training.state_words("out_of_memory") == "out of memory"
        assert training.basis_words("last 5 s") == "last 5 s"
        assert training._placeholder(None) == "press Start to train"


def test_the_verdicts_headline_is_worded_where_it_is_read() -> None:
    verdict = judge("done", LEARNED, V)
    assert verdict.kind == "learned"
    expected = "It learned: perplexity 27.90 → 9.50; guessing uniformly gives 28."
    assert verdict.judged == expected  # worded in English when judged, whatever the caller
    with language_scope("en"):
        assert verdict.headline == expected
        assert kind_words("did not learn") == "did not learn"
    with language_scope("zh_CN"):
        assert verdict.headline == "学会了：困惑度 27.90 → 9.50；均匀瞎猜为 28。"
        assert kind_words("did not learn") == "没有学会"
        for kind in VERDICTS:
            assert chinese(kind_words(kind)), kind
        assert kind_words("out_of_memory") == kind_words("out of memory")  # a run's ending
        memorised = judge("done", MEMORISED, V)
        assert memorised.kind == "memorised"
        assert "77.39" in memorised.headline and "7.10" in memorised.headline
        assert "死记硬背" in memorised.headline
        blew = judge("done", Evidence.of([27.9, 1e9, 1e40], None, [1e38]), V)
        assert blew.kind == "blew up" and "爆炸" in blew.headline and "1e+06" in blew.headline
        assert judge("diverged", Evidence.of([]), V).headline == "发散了。"
    # A stored run read back (no vocabulary size) still has a sentence in each language.
    stored = Verdict("did not learn", "It did not learn.", 28.0, 27.5)
    with language_scope("zh_CN"):
        assert stored.headline == "没有学会。"
    assert stored.headline == "It did not learn."


def test_the_advice_speaks_the_books_terms_in_chinese() -> None:
    stalled = Verdict("did not learn", "", 28.0, 27.5)
    done = Outcome("done", 100)
    config = TrainConfig(lr=0.1, init_std=0.5, clip_threshold=0.01)
    diverged = Outcome("diverged", 7, "", 3.0, 1e9)
    wild = TrainConfig(lr=5.0, init_std=0.5, clip_threshold=None)
    with language_scope("zh_CN"):
        text = outcome_advice(stalled, done, config)
        assert "**提高学习率**（d2l 使用 1；当前为 0.1）" in text
        assert "初始化标准差" in text and "门饱和" in text and "裁剪阈值" in text
        assert "迭代周期" in text and "试试" in text
        rnn = outcome_advice(stalled, done, TrainConfig(model="rnn", init_std=0.5))
        assert "tanh 单元饱和" in rnn and "门" not in rnn
        text = outcome_advice(Verdict("diverged", "", None, None), diverged, wild)
        assert "第 7 步发散" in text and "**开启梯度裁剪**" in text and "**降低学习率**" in text
        text = outcome_advice(judge("done", MEMORISED, V), Outcome("done", 4000), TrainConfig())
        assert "10,000 个训练字符" in text and "77 对比 28" in text and "隐藏单元" in text
        oom = Outcome("out_of_memory", 9, "out of memory on cuda at step 9: CUDA OOM")
        text = outcome_advice(Verdict("out of memory", "", None, None), oom, TrainConfig())
        assert text.startswith("**在第 9 步内存不足**（out of memory on cuda") and "CPU" in text
    with language_scope("en"):
        text = outcome_advice(Verdict("diverged", "", None, None), diverged, wild)
        assert text.startswith("**The run diverged at step 7.** Last finite loss 3, ")
        assert "Remedy: turn **clipping on** (θ = 1 is d2l's choice); " in text
        assert text.endswith(". Everything recorded up to that step is kept.")


def test_the_equations_legend_and_model_name_are_worded() -> None:
    reset = TrainConfig(model="gru_reset_only", gru_variant="cudnn")
    update = TrainConfig(model="gru_update_only")
    with language_scope("zh_CN"):
        legend = equation_legend(TrainConfig())
        assert "更新门" in legend and "重置门" in legend and "候选隐状态" in legend
        assert "候选隐状态" in equation_legend(reset) and "隐状态" in equation_legend(
            TrainConfig(model="rnn")
        )
        assert r"\text{(无更新门)}" in equations(reset)
        assert r"\text{(无重置门)}" in equations(update)
        assert model_name(reset) == "GRU（仅重置门，cudnn 变体）"
        assert model_name(TrainConfig(model="lstm")) == "LSTM"
    with language_scope("en"):
        assert r"\text{(no update gate)}" in equations(reset)
        assert model_name(reset) == "GRU (reset gate only, cudnn variant)"
        assert model_name(TrainConfig()) == "GRU (d2l variant)"


def test_the_through_time_sentences_are_worded() -> None:
    flow = np.array([[1e-5, 1e-3, 0.1, 1.0]])
    with language_scope("zh_CN"):
        assert lambda_sentence(-0.5).startswith("理论（初始化时）：每步 λ = -0.50")
        assert "缩小" in lambda_sentence(-0.5) and "增长" in lambda_sentence(0.2)
        assert "向前 3 个时间步" in reach_numbers(flow)
    with language_scope("en"):
        assert lambda_sentence(-0.5).startswith(
            "Theory, at initialisation: λ = -0.50 per step, so signals and gradients shrink"
        )
        assert reach_numbers(flow).startswith("Now: at t = 1 it is 1e-05 of its value at t = T")


def test_compare_names_its_metrics_and_its_reading_in_chinese() -> None:
    steps = pd.DataFrame({"step": [1, 2], "grad_norm": [1.0, 3.0], "clipped": [False, True]})
    runs = [
        type(
            "Run",
            (),
            {
                "name": "#1 GRU",
                "title": "#1 GRU",
                "config": TrainConfig(model="gru"),
                "steps": steps,
            },
        ),
        type(
            "Run",
            (),
            {
                "name": "#2 RNN",
                "title": "#2 RNN",
                "config": TrainConfig(model="rnn"),
                "steps": steps,
            },
        ),
    ]
    with language_scope("zh_CN"):
        assert all(chinese(_(name)) for name in compare.METRICS)
        assert all(chinese(_(column)) for column in compare.COLUMNS.values() if column != "📌")
        text = compare.gru_rnn_reading(runs)  # type: ignore[arg-type]
        assert text is not None and text.startswith("在所显示的运行中：#1 GRU：")
        assert "50% 的步被裁剪" in text and "学习笔记" in text
    with language_scope("en"):
        text = compare.gru_rnn_reading(runs)  # type: ignore[arg-type]
        assert text is not None
        assert text.startswith("In the runs shown: #1 GRU: median ‖g‖ 2 before clipping, 50% ")


def test_the_memory_views_words_and_errors_are_worded() -> None:
    vocab = Vocab("the time traveller")
    with language_scope("zh_CN"):
        assert _(CUSTOM) == "自定义模式（正则表达式）…"
        assert all(chinese(_(name)) for name in memory.PRESETS)
        with pytest.raises(ValueError, match="一个字母也不剩"):
            memory.encode_passage(vocab, "1234 !!")
        with pytest.raises(ValueError, match="不是有效的正则表达式"):
            memory.pattern_mask("the time", "[a-")
        with pytest.raises(ValueError, match="没有标记"):
            memory.rank_units(np.ones((3, 2)), np.zeros(3, dtype=bool))
    with language_scope("en"):
        with pytest.raises(ValueError, match="no letters left after preprocessing"):
            memory.encode_passage(vocab, "1234 !!")
        # A preset is found by its English name, whatever language shows it.
        assert memory.pattern_mask("a b", "spaces").tolist() == [False, True, False]


def test_a_snapshots_figure_is_kept_per_language() -> None:
    """Watchers of one run share its figures, but a Chinese reader never gets an English
    reader's titles (``display.snapshot_figure`` keys its cache by the language too)."""
    import plotly.graph_objects as go

    from dashboard.views.display import snapshot_figure

    class Snap:  # any object a weak reference can point at
        pass

    snap, builds = Snap(), []

    def build() -> go.Figure:
        builds.append(1)
        return go.Figure(layout={"title": {"text": _("Perplexity")}})

    with language_scope("en"):
        english = snapshot_figure(snap, "i18n-ppl", build)
        assert snapshot_figure(snap, "i18n-ppl", build) is english
    with language_scope("zh_CN"):
        zh = snapshot_figure(snap, "i18n-ppl", build)
        assert snapshot_figure(snap, "i18n-ppl", build) is zh
    assert len(builds) == 2
    assert english.layout.title.text == "Perplexity" and zh.layout.title.text == "困惑度"


def test_a_worded_format_func_keeps_the_language_of_its_run() -> None:
    """Streamlit may format a widget's options after the run: they stay in its language."""
    from dashboard.views.display import worded

    with language_scope("zh_CN"):
        show = worded(training.VIEWS)
    assert show("Gates") == "门控" and show("not an option") == "not an option"
    with language_scope("en"):
        assert worded(compare.METRICS)("Perplexity per minibatch") == "Perplexity per minibatch"
