"""The catalogue's loader: language tags, Accept-Language, plural forms, the context variable."""

from __future__ import annotations

import threading

import pytest

from gru_core import i18n
from gru_core.i18n import _, from_accept_language, language_scope, ngettext, normalise


@pytest.mark.parametrize(
    ("tag", "lang"),
    [
        ("zh", "zh_CN"), ("zh-CN", "zh_CN"), ("zh_Hans", "zh_CN"), ("zh-Hans-CN", "zh_CN"),
        ("zh_CN.UTF-8", "zh_CN"), ("en", "en"), ("en-GB", "en"), ("C.UTF-8", "en"),
        ("zh-TW", None), ("zh-Hant", None), ("fr", None), ("", None), (None, None),
    ],
)  # fmt: skip
def test_normalise_reads_browser_url_and_environment_tags(tag: str | None, lang: str | None):
    assert normalise(tag) == lang


def test_accept_language_picks_the_best_supported_language_by_q():
    assert from_accept_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
    assert from_accept_language("en-US,en;q=0.9,zh-CN;q=0.95") == "en"
    assert from_accept_language("fr-FR,fr;q=0.9,zh;q=0.5,en;q=0.4") == "zh_CN"
    assert from_accept_language("zh-TW,fr") == "en"  # nothing supported: the default
    assert from_accept_language(None) == "en"


def test_the_language_in_force_translates_and_is_scoped():
    assert _("Language") == "Language"
    with language_scope("zh-CN") as lang:
        assert lang == "zh_CN"
        assert _("Language") == "语言"
        assert ngettext("{n} run", "{n} runs", 3) == "{n} 次运行"
    assert i18n.language() == "en"
    assert ngettext("{n} run", "{n} runs", 1) == "{n} run"
    assert ngettext("{n} run", "{n} runs", 2) == "{n} runs"


def test_a_thread_starts_in_the_default_language_whatever_another_uses():
    seen: list[str] = []
    with language_scope("zh_CN"):
        worker = threading.Thread(target=lambda: seen.append(_("Language")))
        worker.start()
        worker.join()
    assert seen == ["Language"]
