"""The page's language in Streamlit: decided at the top of every script run, set again at the
start of every fragment run, and the sidebar's switch ("Language / 语言").

``app.py`` calls :func:`page_language` first thing (the rule is ``session/language.decide``:
URL > switch > browser). A fragment's rerun does not run ``app.py`` and may run on another
thread, where the language in force is the default: every fragment is declared with
:func:`language_fragment` instead of ``st.fragment``, which sets the page's language again
before the fragment's body runs. The switch writes its choice into ``?lang=`` in its
``on_change`` callback, before the rerun that the change itself causes: one rerun, no more.
Script thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import streamlit as st

from dashboard.session.language import (
    LANG_PARAM,
    PageLanguage,
    decide,
    switch_options,
    url_form,
)
from gru_core.i18n import DEFAULT, LANGUAGES, language_scope, use_language

SWITCH_KEY = "_lang_switch"  # the switch's widget state: a language code
CHOSEN_KEY = "_lang_chosen"  # the session's choice (URL or switch), a language code
PAGE_KEY = "_lang_page"  # the PageLanguage decided on this session's last full run
SWITCH_LABEL = "Language / 语言"  # both languages, whichever is in force

F = TypeVar("F", bound=Callable[..., Any])


def page_language() -> PageLanguage:
    """Decide this run's language, put it in force, and keep a choice in the URL."""
    headers = st.context.headers
    page = decide(
        st.query_params.get(LANG_PARAM),
        st.session_state.get(CHOSEN_KEY),
        st.context.locale,
        headers.get("Accept-Language") if headers is not None else None,
    )
    use_language(page.lang)
    st.session_state[PAGE_KEY] = page
    if page.chosen:
        st.session_state[CHOSEN_KEY] = page.lang
        if st.query_params.get(LANG_PARAM) != url_form(page.lang):
            st.query_params[LANG_PARAM] = url_form(page.lang)  # a page that lost it keeps it
    return page


def current_page_language() -> PageLanguage | None:
    """The language decided on this session's last full run (None before the first)."""
    return st.session_state.get(PAGE_KEY)


def _switched() -> None:
    """The switch's callback: the new choice goes into the session and the URL before the
    rerun the change causes, so that rerun speaks it."""
    lang = st.session_state[SWITCH_KEY]
    st.session_state[CHOSEN_KEY] = lang
    st.query_params[LANG_PARAM] = url_form(lang)


def language_switch(where: Any) -> None:
    """The switch: every language of the catalogue, each by its own name."""
    page = current_page_language()
    st.session_state[SWITCH_KEY] = page.lang if page is not None else switch_options()[0]
    where.selectbox(
        SWITCH_LABEL,
        switch_options(),
        format_func=LANGUAGES.get,
        key=SWITCH_KEY,
        on_change=_switched,
    )


def language_fragment(func: F | None = None, *, run_every: float | None = None) -> Any:
    """``st.fragment`` that puts the page's language in force for each run of its body::

    @language_fragment(run_every=interval)
    def live() -> None: ...
    """

    def declare(body: F) -> F:
        @wraps(body)
        def in_language(*args: Any, **kwargs: Any) -> Any:
            page = current_page_language()
            with language_scope(page.lang if page is not None else DEFAULT):
                return body(*args, **kwargs)

        return st.fragment(in_language, run_every=run_every)  # type: ignore[return-value]

    return declare(func) if func is not None else declare
