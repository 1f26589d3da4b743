"""Which language a page speaks, and how its links carry the choice. Plain Python, no ``st.*``.

A page's language is decided at the top of every script run, in this order:

1. ``?lang=zh`` / ``?lang=en`` in the URL (a teacher's link, a watch link, a bookmark);
2. the sidebar's switch ("Language / 语言"), remembered for the session;
3. the browser's language: ``navigator.language`` (``st.context.locale``), then the
   ``Accept-Language`` header.

The first two are a *choice*: the page keeps it in its URL (``?lang=``), so that a link built
from the page (for students, to watch, to a bench) carries it. A language that only follows
the browser is not written anywhere: a student whose browser reads Chinese gets Chinese from a
teacher's link that chose nothing. The switch writes its choice into the URL before the rerun
its change causes, so switching costs one rerun.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gru_core.i18n import DEFAULT, LANGUAGES, from_accept_language, normalise

LANG_PARAM = "lang"  # the URL parameter: ?lang=zh, ?lang=en
# A language's short form in a URL (normalise reads it and longer tags such as zh-CN back).
URL_FORMS: dict[str, str] = {"en": "en", "zh_CN": "zh"}


@dataclass(frozen=True)
class PageLanguage:
    """The language a page speaks (one of ``LANGUAGES``) and whether it was chosen (by the
    URL or the switch) rather than taken from the browser."""

    lang: str
    chosen: bool


def decide(
    url: str | None,
    switch: str | None = None,
    locale: str | None = None,
    accept_language: str | None = None,
) -> PageLanguage:
    """URL > switch > browser (``navigator.language``, then ``Accept-Language``) > English.

    A value that names no language of ours (``?lang=fr``) is passed over, as if absent.
    """
    for tag in (url, switch):
        lang = normalise(tag)
        if lang is not None:
            return PageLanguage(lang, chosen=True)
    lang = normalise(locale)
    if lang is None and accept_language:
        lang = from_accept_language(accept_language)
    return PageLanguage(lang or DEFAULT, chosen=False)


def url_form(lang: str) -> str:
    """``zh_CN`` -> ``zh``: the short form a link carries."""
    code = normalise(lang) or DEFAULT
    return URL_FORMS.get(code, code)


def with_language(query: Mapping[str, str], page: PageLanguage | None) -> dict[str, str]:
    """``query`` plus ``lang=`` when the page's language was chosen (never a browser's)."""
    out = dict(query)
    if page is not None and page.chosen:
        out[LANG_PARAM] = url_form(page.lang)
    return out


def switch_options() -> list[str]:
    """The switch's options, each a language's code (shown by its own name)."""
    return list(LANGUAGES)
