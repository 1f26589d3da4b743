"""GRU Lab: train d2l's GRU live, watch its gates and gradients, break it and rescue it.

Run with ``streamlit run dashboard/app.py`` (optionally ``-- --corpus PATH``).

Reads top to bottom: page set-up -> sidebar (lesson, settings, corpus) -> run controls ->
live views (a fragment that re-runs on a timer while a job is active) -> teaching text ->
compare runs. Training happens in a background ``TrainingJob`` that never calls ``st.*``;
this script only sends it commands and draws snapshots of its telemetry.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import streamlit as st

from dashboard import controls as ctl
from dashboard import views
from dashboard.compare import compare_section
from dashboard.lab import CloseOnRelease, Lab
from dashboard.teaching import CLIPPING, equations
from gru_core.config import (
    TrainConfig,
    available_devices,
    describe_device,
    resolve_device,
)
from gru_core.data import Corpus
from gru_core.job import shared_pool
from gru_core.sources import MAX_UPLOAD_BYTES, load_corpus

REFRESH_S = 0.75  # live views poll twice in 1.5 s while a job is active
MAX_REFRESH_S = 3.0  # the slowest polling, with many sessions training on one server
# A closed tab's job stops this long after its websocket goes (a reconnect cancels it).
CLOSE_GRACE_S = float(os.environ.get("GRU_LAB_CLOSE_GRACE_S", "30"))
WIDGET_GENERATION = "_widget_generation"  # bumped by each applied lesson


# -- process-wide and per-session resources --------------------------------------------------
def _cli_corpus_path() -> str | None:
    """``streamlit run dashboard/app.py -- --corpus PATH``; never from the browser."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--corpus")
    args, _ = parser.parse_known_args(sys.argv[1:])
    return args.corpus


@st.cache_resource(show_spinner="Loading The Time Machine…")
def default_corpus() -> tuple[Corpus | None, str]:
    """The shared default corpus (read-only), or None and the reason it failed."""
    try:
        return load_corpus(_cli_corpus_path()), ""
    except ValueError as exc:
        return None, str(exc)


@st.cache_resource(scope="session", on_release=lambda guard: guard.release(), show_spinner=False)
def _session_guard(_lab: Lab) -> CloseOnRelease:
    """Session-scoped: released when this session's websocket goes (the tab closed)."""
    return CloseOnRelease(_lab, CLOSE_GRACE_S)


def get_lab(corpus: Corpus) -> Lab:
    if "lab" not in st.session_state:
        st.session_state.lab = Lab(corpus=corpus)
    lab: Lab = st.session_state.lab
    _session_guard(lab)
    return lab


# -- widget state ----------------------------------------------------------------------------
def wkey(key: str) -> str:
    """The session_state key of control ``key``'s widget in the current generation."""
    return ctl.widget_key(key, st.session_state.get(WIDGET_GENERATION, 0))


def init_widget_state() -> None:
    """First run of a session: d2l's defaults, overridden by valid URL query parameters."""
    if st.session_state.get("_initialised"):
        return
    values, warnings = ctl.from_query(st.query_params.to_dict())
    for key, value in {**ctl.defaults(), **values}.items():
        st.session_state[wkey(key)] = value
    st.session_state.url_warnings = warnings
    st.session_state.lesson = "d2l default" if not values else None
    st.session_state._initialised = True


def widget_values() -> dict[str, Any]:
    return {c.key: st.session_state.get(wkey(c.key), c.default) for c in ctl.CONTROLS}


def _apply_lesson() -> None:
    """Set every control to the lesson's value, in a new generation of widgets (see
    ``controls.widget_key``: the browser's stale values of the old ones cannot undo it)."""
    name = st.session_state.get("lesson")
    if not name:
        return
    generation = st.session_state.get(WIDGET_GENERATION, 0) + 1
    for key, value in ctl.lesson_values(name).items():
        st.session_state[ctl.widget_key(key, generation)] = value
    st.session_state[WIDGET_GENERATION] = generation
    _push_live_knobs()


def _push_live_knobs() -> None:
    """Clip threshold, lr and speed reach a running job at its next step."""
    lab: Lab | None = st.session_state.get("lab")
    if lab is None or not lab.active or lab.job is None:
        return
    v = widget_values()
    lab.job.set_clip_threshold(float(v["clip"]) if v["clip_on"] else None)
    lab.job.set_lr(float(v["lr"]))
    lab.job.set_speed(ctl.speed_value(v["speed"]))


def sidebar() -> None:
    sb = st.sidebar
    sb.header("Lesson")
    sb.selectbox(
        "Lesson preset",
        [lesson.name for lesson in ctl.LESSONS],
        key="lesson",
        index=None,
        placeholder="choose a lesson…",
        on_change=_apply_lesson,
    )
    lesson = ctl.LESSONS_BY_NAME.get(st.session_state.get("lesson") or "")
    if lesson:
        sb.info(lesson.text)
    sb.header("Model")
    sb.slider("Hidden size", 8, 1024, step=8, key=wkey("hidden"), help="units in H_t (d2l: 256)")
    sb.select_slider(
        "Init std (log scale)",
        ctl.INIT_STDS,
        key=wkey("init_std"),
        help="weights ~ N(0, std²); d2l multiplies randn by 0.01",
    )
    sb.slider(
        "Sequence length (num_steps)", 5, 500, key=wkey("steps"), help="BPTT window T (d2l: 35)"
    )
    sb.toggle("Clip gradients", key=wkey("clip_on"), on_change=_push_live_knobs)
    sb.select_slider(
        "Clip threshold θ (log scale)",
        ctl.CLIPS,
        key=wkey("clip"),
        disabled=not widget_values()["clip_on"],
        on_change=_push_live_knobs,
        help="global L2 norm cap; changes reach a running job at its next step",
    )
    sb.select_slider(
        "Learning rate (log scale)",
        ctl.LRS,
        key=wkey("lr"),
        on_change=_push_live_knobs,
        help="SGD step size; changes reach a running job at its next step",
    )
    sb.select_slider("Batch size", ctl.BATCHES, key=wkey("batch"))
    sb.number_input("Epochs", 1, 100_000, step=10, key=wkey("epochs"))
    sb.radio("Model", tuple(ctl.MODELS), key=wkey("model"), horizontal=True)
    sb.radio(
        "GRU variant",
        tuple(ctl.VARIANTS),
        key=wkey("variant"),
        horizontal=True,
        disabled=widget_values()["model"] != "GRU",
        help="d2l: reset before W_hh; cuDNN / torch.nn.GRU: reset after W_hh",
    )
    sb.radio("Sampling", ctl.SAMPLINGS, key=wkey("sampling"), horizontal=True)
    sb.number_input("Seed", 0, 2**31 - 1, step=1, key=wkey("seed"))
    devices = available_devices()
    device = widget_values()["device"]
    if device not in devices:
        st.session_state.url_warnings.append(f"device {device!r} is not available here; using auto")
        st.session_state[wkey("device")] = "auto"
    sb.selectbox("Device", devices, key=wkey("device"))
    sb.select_slider(
        "Speed (steps per second)",
        ctl.SPEEDS,
        key=wkey("speed"),
        on_change=_push_live_knobs,
        help="slow a run down so a class can watch it unfold; 'max' = as fast as possible",
    )


def corpus_picker(lab: Lab, default: Corpus | None) -> None:
    sb = st.sidebar
    sb.header("Corpus")
    choice = sb.radio("Text", ("The Time Machine", "Upload a .txt"), key="corpus_choice")
    if choice == "The Time Machine":
        if default is not None:
            lab.use_corpus(default)
        return
    upload = sb.file_uploader(
        "Upload a UTF-8 .txt",
        type=["txt"],
        key="upload",
        max_upload_size=max(1, MAX_UPLOAD_BYTES // 2**20),
    )
    if upload is None:
        return
    try:
        message = lab.accept_upload(upload.getvalue(), upload.name)
    except ValueError as exc:
        sb.error(f"{exc} The previous text is still in use.")
        return
    if message:
        sb.success(message)


# -- run controls ----------------------------------------------------------------------------
def _start(step_only: bool = False) -> None:
    lab: Lab = st.session_state.lab
    st.session_state.start_error = None
    try:
        config = ctl.config_from_values(widget_values())
        job = lab.start(config, ctl.speed_value(widget_values()["speed"]), background=False)
    except ValueError as exc:
        st.session_state.start_error = str(exc)
        return
    if step_only:
        job.step_once()
    if st.session_state.get("sync_jobs"):  # AppTest drives jobs in the script thread
        if step_only:
            job.run_sync(1)
    else:
        job.start()


def _pause_resume() -> None:
    lab: Lab = st.session_state.lab
    if lab.job is None:
        return
    if lab.job.status().state == "paused":
        lab.job.resume()
    else:
        lab.job.pause()


def _step() -> None:
    lab: Lab = st.session_state.lab
    if not lab.active:
        _start(step_only=True)
    elif lab.job is not None:
        lab.job.step_once()
        if st.session_state.get("sync_jobs"):
            lab.job.run_sync(1)


def run_controls(lab: Lab) -> None:
    state = lab.job.status().state if lab.job is not None else None
    active = lab.active
    cols = st.columns(5)
    cols[0].button(
        "Restart" if active else "Start",
        type="primary",
        on_click=_start,
        width="stretch",
        help="train with the settings in the sidebar",
    )
    cols[1].button(
        "Resume" if state == "paused" else "Pause",
        on_click=_pause_resume,
        disabled=not active,
        width="stretch",
    )
    cols[2].button(
        "Step",
        on_click=_step,
        width="stretch",
        help="one minibatch (pauses a running job first)",
        disabled=active and state not in ("paused", "ready"),
    )
    cols[3].button("Stop", on_click=lab.stop, disabled=not active, width="stretch")
    cols[4].button("Reset", on_click=lab.reset, width="stretch", help="clear the current run")
    if st.session_state.get("start_error"):
        st.error(f"Can't start: {st.session_state.start_error}")


# -- the page --------------------------------------------------------------------------------
def header(lab: Lab, config: TrainConfig | None) -> None:
    st.title("GRU Lab")
    st.caption(
        "Dive into Deep Learning's GRU chapter, live: train it, watch its gates and "
        "gradients, make them explode, and let clipping rescue the run."
    )
    c = lab.corpus
    device = "?"
    if config is not None:
        try:
            device = describe_device(resolve_device(config.device))
        except ValueError as exc:
            device = f"unavailable ({exc})"
    st.markdown(f"**Corpus:** {c.label} · {len(c.tokens):,} tokens · **Device:** {device}")
    if c.source == "fallback":
        st.warning(c.reason, icon="📡")


def restart_notice(lab: Lab, config: TrainConfig | None) -> None:
    if not lab.active or lab.job is None or config is None:
        return
    changes = ctl.restart_changes(lab.job.config, config)
    if lab.job.corpus_name != lab.corpus.name:
        changes.append(f"corpus {lab.job.corpus_name} → {lab.corpus.name}")
    if changes:
        st.info("Applies on restart: " + "; ".join(changes), icon="🔁")


def teaching(config: TrainConfig | None) -> None:
    """The cell's equations, with the symbols the charts use, and d2l's clipping rule."""
    if config is None:
        return
    name = {"gru": f"GRU ({config.gru_variant} variant)", "rnn": "RNN", "lstm": "LSTM"}
    st.markdown(f"**The equations: {name[config.model]}**")
    st.latex(equations(config))
    st.latex(CLIPPING)


def main() -> None:
    st.set_page_config(page_title="GRU Lab", page_icon="🔁", layout="wide")
    default, load_error = default_corpus()
    if default is None:
        st.error(f"Could not load any text: {load_error}")
        st.stop()
    init_widget_state()
    lab = get_lab(default)
    sidebar()
    corpus_picker(lab, default)
    for warning in st.session_state.get("url_warnings", []):
        st.warning(warning, icon="🔗")
    st.session_state.url_warnings = []  # shown once, on the run that read the URL
    try:
        config: TrainConfig | None = ctl.config_from_values(widget_values())
    except ValueError as exc:
        config = None
        st.error(f"Invalid setting: {exc}")
    left, right = st.columns([3, 2], gap="large")
    with left:
        header(lab, config)
        run_controls(lab)
        restart_notice(lab, config)
    with right:
        teaching(config)
    was_active = lab.active

    @st.fragment(run_every=refresh_interval(lab) if was_active else None)
    def live() -> None:
        views.live_views(lab)
        if was_active and not lab.active:
            lab.save_finished()
            st.rerun()  # a full rerun: stop polling, refresh buttons and saved runs

    live()
    compare_section(lab)
    _sync_url()


def refresh_interval(lab: Lab) -> float:
    """Seconds between live redraws: REFRESH_S for a lone user, slower when many sessions
    train or queue on this server (each redraw costs the server CPU that training needs),
    and slow while this session only waits in the queue."""
    pool = shared_pool()
    busy = pool.running + pool.waiting
    queued = lab.job is not None and lab.job.status().state == "queued"
    base = 2.0 if queued else REFRESH_S
    return min(MAX_REFRESH_S, base * max(1.0, busy / 4))


def _sync_url() -> None:
    """Mirror the settings into the URL (a shared link reproduces them); parameters that
    are not settings are left as they are."""
    current = st.query_params.to_dict()
    wanted = {k: v for k, v in current.items() if k not in ctl.BY_KEY} | ctl.to_query(
        widget_values()
    )
    if current != wanted:
        st.query_params.from_dict(wanted)


main()
