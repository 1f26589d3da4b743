"""Resources the pages share: the default corpus, the saved-runs store, the registry of
shared runs, this browser's token, session guards. The Streamlit end of ``session/`` and
``runs/``: the ``st.cache_resource`` wrappers live here and hand plain objects down.

``st.cache_resource`` without a scope is shared by every session (read-only things, and
stores keyed inside by browser token); session-scoped ones are released when the session's
websocket goes, which is how a closed tab stops its training.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

import streamlit as st

from dashboard.runs.records import new_token, valid_token
from dashboard.runs.store import RUNS_DB_ENV, RunStore, open_run_store
from dashboard.session.guards import StopOnRelease, close_grace_s
from dashboard.session.in_flight import BenchWork
from dashboard.session.lab import CloseOnRelease, Lab
from dashboard.session.sharing import ShareRegistry
from dashboard.sidebar.room import TOKEN_COOKIE, TOKEN_PARAM
from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.i18n import _
from gru_core.sources import CACHE_ENV, load_corpus


def _cli_corpus_path() -> str | None:
    """``streamlit run dashboard/app.py -- --corpus PATH``; never from the browser."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--corpus")
    args, _rest = parser.parse_known_args(sys.argv[1:])
    return args.corpus


def default_corpus() -> tuple[Corpus | None, str]:
    """The shared default corpus (read-only), or None and the reason it failed. The spinner
    is worded here, in the reader's language (a cached function's own spinner text is fixed
    when the module is imported); it shows only on a load that takes a moment."""
    with st.spinner(_("Loading The Time Machine…")):
        return _default_corpus()


@st.cache_resource(show_spinner=False)
def _default_corpus() -> tuple[Corpus | None, str]:
    try:
        return load_corpus(_cli_corpus_path()), ""
    except ValueError as exc:
        return None, str(exc)


@st.cache_resource(scope="session", on_release=lambda guard: guard.release(), show_spinner=False)
def session_guard(_lab: Lab) -> CloseOnRelease:
    """Session-scoped: released when this session's websocket goes (the tab closed)."""
    return CloseOnRelease(_lab, close_grace_s())


@st.cache_resource(show_spinner=False)
def _run_store(db_env: str, cache_env: str) -> RunStore:
    """The server's saved-runs store (shared: it is keyed by browser token inside)."""
    return open_run_store()


def run_store() -> RunStore:
    return _run_store(os.environ.get(RUNS_DB_ENV, ""), os.environ.get(CACHE_ENV, ""))


def browser_token() -> str:
    """This browser's unguessable saved-runs token: the URL's ``?bench=`` (a bookmarked or
    shared bench link wins), else this session's, else the one the browser remembers in its
    ``gru_lab_bench`` cookie (the plain address, after a restart too), else a fresh one. The
    page then writes it into the URL (``lab._sync_url``) and the cookie (``room.bench_link``),
    so a reload (F5), a bookmark and the plain address all find the same saved runs."""
    for token in (
        st.query_params.get(TOKEN_PARAM),
        st.session_state.get(TOKEN_PARAM),
        remembered_token(),
    ):
        if valid_token(token):
            break
    else:
        token = new_token()
    st.session_state[TOKEN_PARAM] = token
    return str(token)


def remembered_token() -> str | None:
    """The token in the browser's cookie (sent with the page's connection), if any."""
    return st.context.cookies.get(TOKEN_COOKIE)


@st.cache_resource(scope="session", on_release=lambda guard: guard.release(), show_spinner=False)
def sweep_guard(_job: Any) -> StopOnRelease:
    """Session-scoped, keyed by the sweep: released when this session's websocket goes."""
    return StopOnRelease(_job)


@st.cache_resource(show_spinner=False)
def bench_work() -> BenchWork:
    """The server's labs by bench: whether a bench has a run in flight in any session."""
    return BenchWork()


@st.cache_resource(show_spinner=False)
def share_registry() -> ShareRegistry:
    """The server's shared runs: one registry for every session, so watchers find them; kept
    in the run store too, so a watch link outlives a restart (``session/sharing.py``)."""
    return ShareRegistry(store=run_store())


@st.cache_resource(show_spinner=False, max_entries=256)
def _initial_lambda(
    model: str,
    variant: str,
    hidden_size: int,
    init_std: float,
    text_key: str,
    _tokens: Any,
    vocab: int,
) -> float | None:
    try:
        theory = importlib.import_module("gru_core.theory")
        lam = theory.lyapunov_exponent(
            model, hidden_size, init_std, _tokens, vocab, gru_variant=variant
        )
    except (ImportError, AttributeError, ValueError):  # no theory (module) for it
        return None
    return float(lam)


def initial_lambda(config: TrainConfig | None, corpus: Corpus) -> float | None:
    """λ of the untrained network at ``config``'s model, hidden size and init std, driven by
    the training slice of ``corpus`` (``gru_core.theory``): one call per (model, hidden size,
    init std) and text, shared by every session; None without a config or the theory."""
    if config is None:
        return None
    text = f"{corpus.source}:{corpus.name}:{len(corpus.tokens)}:{config.max_tokens}"
    with st.spinner(_("λ at initialisation (theory)…")):
        return _initial_lambda(
            config.model, config.gru_variant, config.hidden_size, config.init_std, text,
            corpus.tokens[: config.max_tokens], len(corpus.vocab),
        )  # fmt: skip
