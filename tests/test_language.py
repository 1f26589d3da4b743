"""The page's language (URL > switch > browser), the links that carry a chosen one, numbers
per locale, and the command lines' ``--lang``."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.session.lab import Lab
from dashboard.session.language import PageLanguage, decide, url_form, with_language
from dashboard.sidebar import controls as ctl
from dashboard.sidebar.language import PAGE_KEY, SWITCH_LABEL
from dashboard.sidebar.room import bench_url, student_link, watch_url
from gru_core import cli, i18n
from gru_core.i18n import format_int, format_number, language_scope
from gru_core.sources import load_corpus
from gru_core.sweep import cli as sweep_cli

from helpers import SyncRunner

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
ZH = PageLanguage("zh_CN", chosen=True)
BROWSER_ZH = PageLanguage("zh_CN", chosen=False)


# -- the decision ----------------------------------------------------------------------------
def test_the_url_comes_first_then_the_switch_then_the_browser() -> None:
    assert decide("zh", "en", "en-US", "en") == PageLanguage("zh_CN", True)
    assert decide("en", "zh_CN", "zh-CN", "zh") == PageLanguage("en", True)
    assert decide(None, "zh_CN", "en-US", "en") == PageLanguage("zh_CN", True)
    assert decide(None, None, "zh-CN", "en") == PageLanguage("zh_CN", False)
    assert decide(None, None, None, "zh-CN,zh;q=0.9,en;q=0.5") == PageLanguage("zh_CN", False)
    assert decide(None, None, "fr-FR", "fr, zh;q=0.4") == PageLanguage("zh_CN", False)
    assert decide(None, None, None, None) == PageLanguage("en", False)


def test_a_language_we_do_not_have_is_passed_over() -> None:
    assert decide("fr", None, "zh-CN") == PageLanguage("zh_CN", False)
    assert decide("zh-TW", "en", None) == PageLanguage("en", True)
    assert decide("", None, "fr", "de") == PageLanguage("en", False)


def test_links_carry_a_chosen_language_and_never_a_browsers() -> None:
    assert url_form("zh_CN") == "zh" and url_form("en") == "en" and url_form("zh-Hans") == "zh"
    assert with_language({"a": "1"}, ZH) == {"a": "1", "lang": "zh"}
    assert with_language({"a": "1"}, BROWSER_ZH) == {"a": "1"}
    assert with_language({"a": "1"}, None) == {"a": "1"}


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_student_watch_and_bench_links_keep_the_chosen_language() -> None:
    base = "http://class.example:8501/?lang=zh&bench=SECRET_TOKEN_1234567"
    values = {**ctl.defaults(), "lr": 5.0}
    student = student_link(base, values, ["seed"], ["lr"], projector=False, page=ZH)
    assert _query(student) == {"lr": "5", "hide": "seed", "lock": "lr", "lang": "zh"}
    assert _query(watch_url(base, "TOKEN", ZH)) == {"watch": "TOKEN", "lang": "zh"}
    assert _query(bench_url(base, "TOKEN", ZH)) == {"bench": "TOKEN", "lang": "zh"}
    assert _query(watch_url(base, "TOKEN", BROWSER_ZH)) == {"watch": "TOKEN"}
    assert _query(student_link(base, values, [], [], False, BROWSER_ZH)) == {"lr": "5"}


# -- the page --------------------------------------------------------------------------------
@pytest.fixture
def app(corpus_path: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AppTest]]:
    monkeypatch.setenv("GRU_LAB_CORPUS", corpus_path)
    monkeypatch.setenv("GRU_LAB_CLOSE_GRACE_S", "0.5")
    st.cache_resource.clear()
    apps: list[AppTest] = []

    def make(**query: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.session_state["lab"] = Lab(corpus=load_corpus(corpus_path), runner=SyncRunner())
        for key, value in query.items():
            at.query_params[key] = value
        apps.append(at)
        return at

    yield make
    for at in apps:
        if "lab" in at.session_state:
            at.session_state["lab"].close()


def _lang_param(at: AppTest) -> str | None:
    value = at.query_params.get("lang")
    return value[0] if isinstance(value, list) else value


def _switch(at: AppTest):  # noqa: ANN202 (streamlit's testing element)
    return next(s for s in at.selectbox if s.label == SWITCH_LABEL)


def test_the_url_sets_the_page_language_and_the_switch_shows_it(
    app: Callable[..., AppTest],
) -> None:
    at = app(lang="zh").run()
    assert not at.exception
    assert at.session_state[PAGE_KEY] == ZH
    assert _switch(at).value == "zh_CN"
    assert _switch(at).options == ["English", "简体中文"]  # each language by its own name
    assert i18n.language() == "en"  # the test's own thread is untouched


def test_switching_costs_one_rerun_and_goes_into_the_url(app: Callable[..., AppTest]) -> None:
    at = app().run()
    assert at.session_state[PAGE_KEY] == PageLanguage("en", False)
    assert "lang" not in at.query_params  # a browser's language is not written anywhere
    _switch(at).select("zh_CN").run()  # one run: the change's own
    assert at.session_state[PAGE_KEY] == ZH
    assert _lang_param(at) == "zh"
    assert _switch(at).value == "zh_CN"
    _switch(at).select("en").run()
    assert at.session_state[PAGE_KEY] == PageLanguage("en", True)
    assert _lang_param(at) == "en"


def test_a_page_that_loses_its_lang_parameter_gets_it_back(app: Callable[..., AppTest]) -> None:
    at = app(lang="zh").run()
    at.query_params.pop("lang")  # st.query_params.clear() (opening a map cell in the lab)
    at.run()
    assert at.session_state[PAGE_KEY] == ZH
    assert _lang_param(at) == "zh"


# -- numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_numbers_group_thousands_as_the_language_writes_them(lang: str) -> None:
    with language_scope(lang):
        assert format_int(3640) == "3,640"
        assert format_int(1234567) == "1,234,567"
        assert format_number(23456.78, 1) == "23,456.8"
        assert format_number(1.05) == "1.05"
        assert format_number(12.0, 0) == "12"
        assert format_number(float("nan")) == "nan"
        assert format_number(float("inf"), 1) == "inf"


# -- the command lines -----------------------------------------------------------------------
def _help(main: Callable[..., int], *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*args, "--help"], out=io.StringIO())
    assert stop.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("main", [cli.main, sweep_cli.main], ids=["gru_core", "sweep"])
def test_the_command_lines_speak_the_language_of_lang(
    main: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    english = _help(main, capsys=capsys)
    chinese = _help(main, "--lang", "zh", capsys=capsys)
    assert "(default: 256)" in english and "（默认：256）" in chinese
    assert "《时光机器》" in chinese or "可训练性地图" in chinese
    assert "usage:" in chinese  # argparse's own words stay English (README, Languages)
    assert i18n.language() == "en"  # only for the call


def test_the_environment_sets_the_command_lines_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRU_LAB_LANG", "zh_CN.UTF-8")
    assert "（默认：256）" in _help(cli.main, capsys=capsys)
    assert "(default: 256)" in _help(cli.main, "--lang=en", capsys=capsys)


def test_an_unknown_lang_is_a_bad_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["--lang", "fr", "--num-epochs", "1"], out=io.StringIO())
    assert stop.value.code == cli.EXIT_BAD_ARGS
    assert "'fr' is not a language here" in capsys.readouterr().err


def test_a_bad_value_is_reported_in_the_language_of_lang(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["--lang", "zh", "--hidden-size", "0"], out=io.StringIO())
    assert code == cli.EXIT_BAD_ARGS
    assert "错误：hidden_size=0 超出范围：必须是 [1, 4,096] 之间的整数" in capsys.readouterr().err


def test_a_fragment_speaks_the_pages_language_whatever_its_thread_has() -> None:
    """A fragment's rerun skips app.py and may run where the default language is in force:
    ``language_fragment`` puts the page's language back before its body runs."""

    def script() -> None:
        import streamlit as st

        from dashboard.session.language import PageLanguage
        from dashboard.sidebar.language import PAGE_KEY, language_fragment
        from gru_core.i18n import _, use_language

        st.session_state[PAGE_KEY] = PageLanguage("zh_CN", True)
        use_language("en")  # what a fresh thread has

        @language_fragment
        def part() -> None:
            st.markdown(_("Language"))

        part()
        st.caption(_("Language"))  # outside the fragment: still the thread's English

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert [m.value for m in at.markdown] == ["语言"]
    assert [c.value for c in at.caption] == ["Language"]
