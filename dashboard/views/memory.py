"""The Memory view: what the hidden state carries, on a passage of text.

It reads a model's weights (the running job's latest snapshot, taken between two steps, or a
saved run's final weights), builds a private copy, and shows: the passage coloured by one
hidden unit with the model's top-5 guesses on hover; the unit finder (units whose activation
follows a pattern of the text); and connectivity (how much the prediction at one position
depends on each earlier character), with a GRU-vs-RNN comparison over saved runs. Script
thread only, and it only draws: the reading is the session's ``Lab`` (``Lab.sources``,
``Lab.analysis``: ``session/reading.py``), the maths ``gru_core.memory``, the pictures
``charts/memory.py``.
"""

from __future__ import annotations

import random
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from dashboard.charts import describe
from dashboard.charts import memory as memory_charts
from dashboard.session.lab import Lab
from dashboard.session.reading import Source, compare_defaults
from dashboard.views.display import (
    chart,
    chart_columns,
    held,
    per_snapshot,
    snapshot_figure,
    worded,
)
from dashboard.views.teaching import CAPTIONS
from gru_core import memory
from gru_core.i18n import N_, _

MAX_CHARS = 500  # the passage box
CUSTOM = N_("your own pattern (regex)…")  # an option's identifier, shown as _(CUSTOM)


def _random_passage(lab: Lab) -> None:
    _set_passage(lab.random_passage(random.Random()))


def _set_passage(text: str) -> None:
    """Show ``text`` in a fresh passage box (a widget's own value cannot be set once drawn)."""
    st.session_state.memory_passage = text
    st.session_state.memory_box = st.session_state.get("memory_box", 0) + 1


def _typed(box: str) -> None:
    st.session_state.memory_passage = st.session_state[box]


def memory_view(lab: Lab) -> None:
    found = lab.sources()
    if not found:
        st.info(CAPTIONS["memory_empty"])
        return
    titles = {run.name: run.title for run in lab.runs}  # found is keyed by identifiers
    source = found[
        st.selectbox(
            _("Model to read"), list(found), key="memory_source",
            format_func=lambda n: titles.get(n, n),
        )
    ]  # fmt: skip
    probe = (lab.job_corpus or lab.corpus).probe or (lab.job_corpus or lab.corpus).prefix
    passage = st.session_state.setdefault("memory_passage", probe)
    box = f"memory_box_{st.session_state.get('memory_box', 0)}"
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.text_area(
            _("Passage (up to {n} characters)").format(n=MAX_CHARS), value=passage, key=box,
            max_chars=MAX_CHARS, height=90, on_change=_typed, args=(box,),
        )  # fmt: skip
        st.button(_("Random passage of the validation text"), on_click=_random_passage, args=(lab,))
    text = passage or probe
    try:
        seen = memory.encode_passage(source.vocab, text).text
        target = st.slider(
            _("Position t whose prediction to explain"), 0, max(len(seen) - 1, 1), len(seen) - 1,
            key=f"memory_target_{len(seen)}",
        )  # fmt: skip
        target = min(target, len(seen) - 1)
        read, result = held(  # a click on its widgets while it trains: the same reading
            f"memory:{hash((source.label, source.job_run, text, target))}",
            lambda: (source, lab.analysis(source, text, target)),
        )
    except ValueError as exc:
        st.warning(_("Can't read this passage: {error}").format(error=exc))
        return
    if read.step is not None:  # a running (or ended) job's weights: say which step is shown
        if lab.active:
            words = _(
                "Weights read at step {step}. While the run trains, they are read again every "
                "few seconds."
            )
        else:
            words = _("Weights read at step {step}.")
        st.caption(words.format(step=f"{read.step:,}"))
    _unit_and_connectivity(result)
    _unit_finder(result)
    _compare(lab, found, text, result.target)


def _unit_and_connectivity(result: memory.MemoryAnalysis) -> None:
    hidden = result.activations.shape[1]
    left, right = chart_columns(2, "memory")
    with left:
        unit = st.number_input(
            _("Hidden unit (0..{last})").format(last=hidden - 1), 0, hidden - 1,
            key="memory_unit", step=1,
        )  # fmt: skip
        unit = min(int(unit), hidden - 1)
        st.html(
            per_snapshot(  # once per reading and unit: a redraw that keeps it, the same element
                result.activations,
                f"memory-unit:{unit}",
                lambda: memory_charts.unit_text_html(
                    result.text_seen, result.activations[:, unit], result.top_chars,
                    result.top_probs, header=_("unit {unit} on the passage").format(unit=unit),
                ),
            )
        )  # fmt: skip
        st.caption(CAPTIONS["memory_unit"])
    with right:
        fig = snapshot_figure(  # one per reading (its activations: the key), so a redraw that
            result.activations,  # keeps the reading sends the same bytes and draws nothing
            "memory-connectivity",
            lambda: memory_charts.connectivity_figure(
                result.text_seen[: result.target + 1], result.connectivity,
                result.target_next, result.reach,
            ),
        )  # fmt: skip
        chart(fig, "memory-connectivity", alt=describe.bars)
        st.caption(
            CAPTIONS["connectivity"].format(
                t=result.target, next=result.target_next, p=result.target_prob, n=result.reach
            )
        )


def _unit_finder(result: memory.MemoryAnalysis) -> None:
    st.markdown(_("**Unit finder**: which hidden units follow a pattern of the text?"))
    names = [*memory.PRESETS, CUSTOM]
    choice = st.selectbox(_("Pattern"), names, key="memory_pattern", format_func=worded(names))
    pattern: Any = choice
    shown = _(choice)
    if choice == CUSTOM:
        pattern = shown = st.text_input(
            _("Regular expression over the passage"), "[aeiou]", key="memory_re"
        )
    try:
        mask = memory.pattern_mask(result.text_seen, pattern)
        ranked = memory.rank_units(result.activations, mask)
    except ValueError as exc:
        st.warning(str(exc))
        return
    left, right = chart_columns([1, 2], "finder")
    with left:
        fig = snapshot_figure(
            result.activations,
            f"memory-ranking:{shown}",
            lambda: memory_charts.unit_ranking_figure(ranked, str(shown)),
        )
        chart(fig, "memory-ranking", alt=describe.bars)
    with right:
        blocks = per_snapshot(  # some 80 KB of HTML: built once per reading and pattern
            result.activations,
            f"memory-blocks:{shown}",
            lambda: "".join(
                memory_charts.unit_blocks_html(
                    result.text_seen, result.activations, ranked, result.top_chars,
                    result.top_probs,
                )
            ),
        )  # fmt: skip
        if blocks:  # one element, not one a unit: one mount for the browser
            st.html(blocks)
    st.caption(CAPTIONS["unit_finder"])


def _compare(lab: Lab, found: dict[str, Source], text: str, target: int) -> None:
    """Connectivity of several models (e.g. a GRU and an RNN saved run) at one position;
    preselected: the two most recent runs of different models (``compare_defaults``)."""
    names = list(found)
    default = compare_defaults(found)
    if len(default) < 2:  # one run (perhaps beside its own saved copy): nothing to compare
        st.caption(CAPTIONS["memory_compare_empty"])
        return
    titles = {run.name: run.title for run in lab.runs}
    chosen = st.multiselect(
        _("Compare connectivity of"), names, default=default, key="memory_compare",
        format_func=lambda n: titles.get(n, n),
    )  # fmt: skip

    def read() -> tuple[go.Figure | None, list[str]]:
        curves, failed = {}, []
        for name in chosen:
            source = found[name]
            try:
                reading = lab.analysis(source, text, target)
            except ValueError as exc:
                failed.append(f"{name}: {exc}")
                continue
            curves[titles.get(name, source.title)] = reading.connectivity
        return (memory_charts.connectivity_compare_figure(curves) if curves else None), failed

    runs = tuple((name, found[name].job_run) for name in chosen)
    fig, failed = held(f"memory-compare:{hash((runs, text, target))}", read)
    for line in failed:
        st.warning(line)
    if fig is not None:
        chart(fig, "memory-compare", alt=describe.lines)
        st.caption(CAPTIONS["connectivity_compare"])
