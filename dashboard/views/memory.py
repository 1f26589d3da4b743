"""The Memory view: what the hidden state carries, on a passage of text.

It reads a model's weights (the running job's latest snapshot, taken between two steps, or a
saved run's final weights), builds a private copy, and shows: the passage coloured by one
hidden unit with the model's top-5 guesses on hover; the unit finder (units whose activation
follows a pattern of the text); and connectivity (how much the prediction at one position
depends on each earlier character), with a GRU-vs-RNN comparison over saved runs. Script
thread only; the maths is ``gru_core.memory``, the pictures ``memory_charts.py``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import streamlit as st
import torch

from dashboard.charts import memory as memory_charts
from dashboard.session.lab import Lab
from dashboard.views.display import chart, chart_columns
from dashboard.views.teaching import CAPTIONS
from gru_core import memory
from gru_core.config import TrainConfig
from gru_core.data import Vocab, split_train_val

MAX_CHARS = 500  # the passage box
CUSTOM = "your own pattern (regex)…"


@dataclass(frozen=True)
class Source:
    """A model to read: its settings, vocabulary and a weights snapshot."""

    label: str
    key: str  # changes when the weights do (job step, saved run id)
    config: TrainConfig
    vocab: Vocab
    weights: dict[str, torch.Tensor]


def sources(lab: Lab) -> dict[str, Source]:
    """The running (or last) job's latest weights, then every saved run that kept its own."""
    found: dict[str, Source] = {}
    job, corpus = lab.job, lab.job_corpus
    snapshot = job.weights() if job is not None else None
    if job is not None and corpus is not None and snapshot is not None:
        step, weights = snapshot
        label = f"this run (weights at step {step:,})"
        found[label] = Source(label, f"job{id(job)}:{step}", job.config, corpus.vocab, weights)
    for run in reversed(list(lab.runs)):
        if run.weights is not None and run.vocab is not None:
            found[run.name] = Source(run.name, run.run_id, run.config, run.vocab, run.weights)
    return found


CACHE_SIZE = 4  # analyses kept per session (the shown model and a few to compare)


def _analysis(source: Source, text: str, target: int | None) -> memory.MemoryAnalysis:
    """One refresh, cached until the weights, the passage or the position change (the live
    fragment redraws every second; a model that has not moved is not read again)."""
    key = (source.key, text, target)
    cache: dict[tuple, memory.MemoryAnalysis] = st.session_state.setdefault("_memory_cache", {})
    if key not in cache:
        model = memory.model_from_weights(source.config, len(source.vocab), source.weights)
        cache[key] = memory.analyse(model, source.vocab, text, target)
        while len(cache) > CACHE_SIZE:
            cache.pop(next(iter(cache)))
    return cache[key]


def _random_passage(lab: Lab) -> None:
    """A random stretch of the validation text (what the model never trained on)."""
    corpus = lab.job_corpus or lab.corpus
    config = lab.job.config if lab.job is not None else TrainConfig()
    _, val = split_train_val(corpus.tokens, config.max_tokens, config.val_tokens)
    tokens = val if len(val) > 50 else corpus.tokens
    start = random.randrange(max(1, len(tokens) - 300))
    _set_passage(corpus.vocab.decode(tokens[start : start + 300]))


def _set_passage(text: str) -> None:
    """Show ``text`` in a fresh passage box (a widget's own value cannot be set once drawn)."""
    st.session_state.memory_passage = text
    st.session_state.memory_box = st.session_state.get("memory_box", 0) + 1


def _typed(box: str) -> None:
    st.session_state.memory_passage = st.session_state[box]


def memory_view(lab: Lab) -> None:
    found = sources(lab)
    if not found:
        st.info(CAPTIONS["memory_empty"])
        return
    source = found[st.selectbox("Model to read", list(found), key="memory_source")]
    probe = (lab.job_corpus or lab.corpus).probe or (lab.job_corpus or lab.corpus).prefix
    passage = st.session_state.setdefault("memory_passage", probe)
    box = f"memory_box_{st.session_state.get('memory_box', 0)}"
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.text_area(
            "Passage (up to 500 characters)", value=passage, key=box, max_chars=MAX_CHARS,
            height=90, on_change=_typed, args=(box,),
        )  # fmt: skip
        st.button("Random passage of the validation text", on_click=_random_passage, args=(lab,))
    text = passage or probe
    try:
        seen = memory.encode_passage(source.vocab, text).text
        target = st.slider(
            "Position t whose prediction to explain", 0, max(len(seen) - 1, 1), len(seen) - 1,
            key=f"memory_target_{len(seen)}",
        )  # fmt: skip
        result = _analysis(source, text, min(target, len(seen) - 1))
    except ValueError as exc:
        st.warning(f"Can't read this passage: {exc}")
        return
    _unit_and_connectivity(result)
    _unit_finder(result)
    _compare(found, text, result.target)


def _unit_and_connectivity(result: memory.MemoryAnalysis) -> None:
    hidden = result.activations.shape[1]
    left, right = chart_columns(2, "memory")
    with left:
        unit = st.number_input(
            f"Hidden unit (0..{hidden - 1})", 0, hidden - 1, key="memory_unit", step=1
        )
        unit = min(int(unit), hidden - 1)
        st.html(
            memory_charts.unit_text_html(
                result.text_seen, result.activations[:, unit], result.top_chars,
                result.top_probs, header=f"unit {unit} on the passage",
            )
        )  # fmt: skip
        st.caption(CAPTIONS["memory_unit"])
    with right:
        chart(
            memory_charts.connectivity_figure(
                result.text_seen[: result.target + 1], result.connectivity,
                result.target_next, result.reach,
            ),
            "memory-connectivity",
        )  # fmt: skip
        st.caption(
            CAPTIONS["connectivity"].format(
                t=result.target, next=result.target_next, p=result.target_prob, n=result.reach
            )
        )


def _unit_finder(result: memory.MemoryAnalysis) -> None:
    st.markdown("**Unit finder**: which hidden units follow a pattern of the text?")
    names = [*memory.PRESETS, CUSTOM]
    choice = st.selectbox("Pattern", names, key="memory_pattern")
    pattern: Any = choice
    if choice == CUSTOM:
        pattern = st.text_input("Regular expression over the passage", "[aeiou]", key="memory_re")
    try:
        mask = memory.pattern_mask(result.text_seen, pattern)
        ranked = memory.rank_units(result.activations, mask)
    except ValueError as exc:
        st.warning(str(exc))
        return
    left, right = chart_columns([1, 2], "finder")
    with left:
        chart(memory_charts.unit_ranking_figure(ranked, str(pattern)), "memory-ranking")
    with right:
        for block in memory_charts.unit_blocks_html(
            result.text_seen, result.activations, ranked, result.top_chars, result.top_probs
        ):
            st.html(block)
    st.caption(CAPTIONS["unit_finder"])


def _compare(found: dict[str, Source], text: str, target: int) -> None:
    """Connectivity of several models (e.g. a GRU and an RNN saved run) at one position."""
    names = list(found)
    if len(names) < 2:
        st.caption(CAPTIONS["memory_compare_empty"])
        return
    chosen = st.multiselect(
        "Compare connectivity of", names, default=names[:2], key="memory_compare"
    )
    curves = {}
    for name in chosen:
        try:
            curves[name] = _analysis(found[name], text, target).connectivity
        except ValueError as exc:
            st.warning(f"{name}: {exc}")
    if curves:
        chart(memory_charts.connectivity_compare_figure(curves), "memory-compare")
        st.caption(CAPTIONS["connectivity_compare"])
