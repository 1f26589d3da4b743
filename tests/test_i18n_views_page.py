"""The lab's views in Chinese through AppTest (issue 22): ``?lang=zh`` trains a run to its
verdict and every view, metric, caption and message it draws reads Chinese; ``?lang=en``
reads today's English. (The browser and the fonts: tests/e2e/test_chinese.py.)"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.session.lab import Lab
from dashboard.views.captions import CAPTIONS
from dashboard.views.training import VIEWS
from gru_core.i18n import _, language_scope
from gru_core.run.job import ENDED
from gru_core.sources import load_corpus

from helpers import SyncRunner

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
SMALL = {"hidden": "32", "steps": "10", "batch": "8"}  # quick on a loaded CPU (test_app.py)
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def make_app(corpus_path: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AppTest]]:
    """A fresh app session (sync jobs) with query parameters; its lab is closed afterwards."""
    monkeypatch.setenv("GRU_LAB_CORPUS", corpus_path)
    monkeypatch.setenv("GRU_LAB_CLOSE_GRACE_S", "0.5")
    st.cache_resource.clear()
    labs: list[Lab] = []

    def make(**query: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        lab = Lab(corpus=load_corpus(corpus_path), runner=SyncRunner())
        at.session_state["lab"] = lab
        labs.append(lab)
        for key, value in query.items():
            at.query_params[key] = value
        return at

    yield make
    for lab in labs:
        lab.close()


def in_zh(msgid: str) -> str:
    with language_scope("zh_CN"):
        return _(msgid)


def click(at: AppTest, label: str) -> None:
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no {label!r} button; have {[b.label for b in at.button]}"
    matches[0].click().run()


def train_to_the_end(at: AppTest) -> Lab:
    lab: Lab = at.session_state["lab"]
    assert lab.job is not None
    for _i in range(200):
        if lab.job.run_sync(50).state in ENDED:
            break
    at.run()
    return lab


def texts(at: AppTest) -> list[str]:
    """What the page wrote in words: captions, Markdown, messages, metric labels."""
    found: list[Any] = [*at.caption, *at.markdown, *at.info, *at.success, *at.error]
    return [e.value for e in found] + [m.label for m in at.metric]


def test_a_run_trains_to_its_verdict_in_chinese_and_every_view_reads_chinese(
    make_app: Callable[..., AppTest],
) -> None:
    at = make_app(**SMALL, epochs="2", lang="zh")
    at.run()
    assert not at.exception
    idle = "Nothing is training. Choose settings in the sidebar (or a lesson) and press Start."
    assert in_zh(idle) in [i.value for i in at.info]
    click(at, in_zh("Start"))
    lab = train_to_the_end(at)
    assert not at.exception
    verdict = lab.verdict()
    assert verdict is not None and verdict.kind in ("learned", "did not learn")
    shown = {m.label: m.value for m in at.metric}
    assert {"状态", "步数", "迭代周期", "词元/秒", "被裁剪的步"} <= set(shown)
    assert shown["状态"] == in_zh(verdict.kind) and CJK.search(shown["状态"])
    # The verdict's message, in Chinese, with the run's numbers.
    message = [e.value for e in (*at.success, *at.info, *at.error)]
    with language_scope("zh_CN"):
        headline = verdict.headline
    assert any(headline in m for m in message), message
    # The Overview's captions, then every other view: no exception, Chinese captions.
    with language_scope("zh_CN"):
        assert CAPTIONS["perplexity"] in [c.value for c in at.caption]
    selector = at.get("button_group")[0]
    assert selector.options == [in_zh(v) for v in VIEWS]
    with language_scope("zh_CN"):
        expected = {  # what each view must show, worded by the catalogue
            "Gradients": [CAPTIONS["grad_norm"], CAPTIONS["groups"]],
            "Gates": [CAPTIONS["bands"].split("（")[0]],
            "Through time": [CAPTIONS["flow_reach"], CAPTIONS["flow_heat"]],
            "Memory": [CAPTIONS["memory_unit"], CAPTIONS["unit_finder"]],
            "Text": [
                _("**Epoch {epoch}** · train perplexity {train} · validation {val}")
                .split(" · ")[0]
                .format(epoch=2)  # the run's last epoch
            ],
        }
    for view in VIEWS[1:]:
        at.get("button_group")[0].set_value(view).run()
        assert not at.exception, view
        words = [e.value for e in (*at.caption, *at.markdown, *at.info)]
        for text in expected[view]:
            assert any(w.startswith(text) for w in words), (view, text, words)
    labels = {w.label for w in (*at.slider, *at.button)}
    assert {"温度", "重新采样"} <= labels, labels
    # The compare section speaks Chinese too.
    assert "比较运行" in [h.value for h in at.header]  # an h2 under the h1


def test_the_same_run_reads_english_under_lang_en(make_app: Callable[..., AppTest]) -> None:
    at = make_app(**SMALL, epochs="1", lang="en")
    at.run()
    click(at, "Start")
    lab = train_to_the_end(at)
    verdict = lab.verdict()
    assert verdict is not None
    shown = {m.label: m.value for m in at.metric}
    assert shown["State"] == verdict.kind and "Steps clipped" in shown
    assert not any(CJK.search(t) for t in texts(at) if "《" not in t)
