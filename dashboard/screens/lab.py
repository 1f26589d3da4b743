"""The lab page: train d2l's GRU live, watch its gates and gradients, break it and rescue it.

Reads top to bottom: page set-up -> sidebar (lesson, settings, corpus) -> run controls ->
live views (``screens/live.py``: fragments on timers while a job is active) -> teaching text ->
compare runs. Training happens in a background ``TrainingJob`` that never calls ``st.*``;
this script only sends it commands and draws snapshots of its telemetry.
"""

from __future__ import annotations

import streamlit as st

from dashboard.runs.saved import SavedRuns
from dashboard.screens.investigate import record_view, step_banner
from dashboard.screens.live import live_section
from dashboard.screens.resources import (
    TOKEN_PARAM,
    bench_work,
    browser_token,
    default_corpus,
    initial_lambda,
    remembered_token,
    run_store,
    session_guard,
    share_registry,
)
from dashboard.screens.watch import watch_page
from dashboard.session.lab import Lab
from dashboard.sidebar import controls as ctl
from dashboard.sidebar.panel import (
    corpus_picker,
    init_widget_state,
    set_values,
    sidebar,
    widget_values,
)
from dashboard.sidebar.room import WATCH, room_section
from dashboard.views.cells import theory_caption
from dashboard.views.compare import compare_section
from dashboard.views.display import PROJECTOR_KEY, page_style, projector_on
from dashboard.views.teaching import CLIPPING, equation_legend, equations, model_name
from gru_core.config import TrainConfig, describe_device, resolve_device
from gru_core.data import Corpus, split_sizes
from gru_core.i18n import _, pgettext
from gru_core.run.scheduling import shared_pool

REFRESH_S = 0.75  # live views poll twice in 1.5 s while a job is active
MAX_REFRESH_S = 3.0  # the slowest polling, with many sessions training on one server


def get_lab(corpus: Corpus) -> Lab:
    if "lab" not in st.session_state:
        runs = SavedRuns(store=run_store(), token=browser_token())
        for note in runs.load():
            st.session_state.setdefault("url_warnings", []).append(
                _("a saved run was skipped: {note}").format(note=note)
            )
        st.session_state.lab = Lab(corpus=corpus, runs=runs)
    lab: Lab = st.session_state.lab
    lab.settled()  # a Start from the previous run may still be building its job
    session_guard(lab)
    if lab.runs.token is not None:  # the investigations page polls while its run is in flight
        bench_work().add(lab.runs.token, lab)
    return lab


# -- run controls ----------------------------------------------------------------------------
def _start(step_only: bool = False) -> None:
    lab: Lab = st.session_state.lab
    st.session_state.start_error = None
    values = widget_values()
    try:
        config = ctl.config_from_values(values)
        speed = ctl.speed_value(values["speed"])
        if step_only:
            lab.step(config, speed)
        else:
            lab.start(config, speed)
    except ValueError as exc:
        st.session_state.start_error = str(exc)


def _pause_resume() -> None:
    lab: Lab = st.session_state.lab
    if lab.job is None:
        return
    if lab.job.status().state == "paused":
        lab.job.resume()
    else:
        lab.job.pause()


def run_controls(lab: Lab) -> None:
    state = lab.job.status().state if lab.job is not None else None
    active = lab.active
    row = st.container(horizontal=True, wrap=True, key="run_buttons")
    row.button(
        _("Restart") if active else _("Start"),
        type="primary",
        on_click=_start,
        help=_("train with the settings in the sidebar"),
    )
    row.button(
        _("Resume") if state == "paused" else _("Pause"),
        on_click=_pause_resume,
        disabled=not active,
    )
    row.button(
        pgettext("button", "Step"),
        on_click=_start,
        kwargs=dict(step_only=True),
        help=_("one minibatch (pauses a running job first)"),
        disabled=active and state not in ("paused", "ready"),
    )
    row.button(_("Stop"), on_click=lab.stop, disabled=not active)
    row.button(_("Reset"), on_click=lab.reset, help=_("clear the current run"))
    if st.session_state.get("start_error"):
        st.error(_("Can't start: {reason}").format(reason=st.session_state.start_error))


# -- the page --------------------------------------------------------------------------------
def header(lab: Lab, config: TrainConfig | None) -> None:
    st.title(_("GRU Lab"))  # a name: the same in every language
    st.container(key="tagline").caption(
        _(
            "Dive into Deep Learning's GRU chapter, live: train it, watch its gates and "
            "gradients, make them explode, and let clipping rescue the run."
        )
    )
    c = lab.corpus
    device = "?"
    slice_text = ""
    if config is not None:
        try:
            device = describe_device(resolve_device(config.device))
        except ValueError as exc:
            device = _("unavailable ({reason})").format(reason=exc)
        slice_text = " · " + training_slice_text(len(c.tokens), config)
    st.markdown(
        _("**Corpus:** {corpus}{slice} · **Device:** {device}").format(
            corpus=c.label, slice=slice_text, device=device
        )
    )
    if c.source == "fallback":
        st.warning(c.reason, icon="📡")


def training_slice_text(num_tokens: int, config: TrainConfig) -> str:
    """'trains on the first 10,000 of 170,580 characters (as in d2l), validates on the next
    5,000': what the run will read, from the same split the trainer makes."""
    train, val_start, val_end = split_sizes(num_tokens, config.max_tokens, config.val_tokens)
    numbers = dict(train=f"{train:,}", total=f"{num_tokens:,}")
    if train < num_tokens and val_start == train:
        if train == TrainConfig().max_tokens:
            what = _("trains on the first {train} of {total} characters (as in d2l)")
        else:
            what = _("trains on the first {train} of {total} characters")
        what = what.format(**numbers)
    else:
        what = _("trains on {train} of {total} characters").format(**numbers)
    if val_end > val_start:
        val = f"{val_end - val_start:,}"
        if val_start == train and val_end < num_tokens:
            what += _(", validates on the next {val}").format(val=val)
        else:
            what += _(", validates on the last {val}").format(val=val)
    return what


def restart_notice(lab: Lab, config: TrainConfig | None) -> None:
    if not lab.active or lab.job is None or config is None:
        return
    changes = ctl.restart_changes(lab.job.config, config)
    if lab.job.corpus_name != lab.corpus.name:
        changes.append(
            _("corpus {old} → {new}").format(old=_(lab.job.corpus_name), new=_(lab.corpus.name))
        )
    if changes:
        st.info(_("Applies on restart: {changes}").format(changes="; ".join(changes)), icon="🔁")


def teaching(config: TrainConfig | None) -> None:
    """The cell's equations, with the symbols the charts use, and d2l's clipping rule, folded
    into one line until opened, so that the first charts start on the first screen."""
    if config is None:
        return
    title = _("**The equations: {model}**").format(model=model_name(config))
    with st.expander(title, key="equations"):
        _equations(config)


def _equations(config: TrainConfig) -> None:
    st.latex(equations(config))
    st.caption(equation_legend(config))
    st.latex(CLIPPING)


def lab_page() -> None:
    default, load_error = default_corpus()
    if default is None:
        st.error(_("Could not load any text: {reason}").format(reason=load_error))
        st.stop()
    page_style()
    watch = st.query_params.get(WATCH)
    if watch:
        watch_page(share_registry(), watch)
        return
    init_widget_state()
    forked = st.session_state.pop("_fork_values", None)
    if forked:
        set_values(forked)
    lab = get_lab(default)
    # The corpus is read first (the sequence-length slider fits its length), shown last.
    controls_box, corpus_box, room_box = (st.sidebar.container() for _box in range(3))
    corpus_picker(lab, default, corpus_box)
    sidebar(lab.corpus, controls_box)
    room_section(lab, share_registry(), widget_values(), room_box, remembered_token())
    for warning in st.session_state.get("url_warnings", []):
        st.warning(warning, icon="🔗")
    st.session_state.url_warnings = []  # shown once, on the run that read the URL
    try:
        config: TrainConfig | None = ctl.config_from_values(widget_values())
    except ValueError as exc:
        config = None
        st.error(_("Invalid setting: {reason}").format(reason=exc))
    left, right = st.container(key="top").columns([3, 2], gap="large")
    with left:
        header(lab, config)
        step_banner("lab")
        run_controls(lab)
        restart_notice(lab, config)
        theory_caption(initial_lambda(config, lab.corpus))
    with right:
        teaching(config)
    live_section(lab, refresh_interval(lab), lab.active, on_view=lambda v: _record_view(lab, v))
    compare_section(lab)
    _sync_url()


def _record_view(lab: Lab, view: str) -> None:
    """What an investigation's step asks to open, on which run."""
    if lab.job is not None:
        record_view(view, lab.job.config.model, lab.job.config.num_steps)


def refresh_interval(lab: Lab) -> float:
    """Seconds between live redraws: REFRESH_S for a lone user, slower when many sessions
    train or queue on this server (each redraw costs the server CPU that training needs),
    and slow while this session only waits in the queue; a view's charts are redrawn at
    the view's own pace (``pacing.charts_interval``)."""
    pool = shared_pool()
    busy = pool.running + pool.waiting
    queued = lab.job is not None and lab.job.status().state == "queued"
    base = 2.0 if queued else REFRESH_S
    return min(MAX_REFRESH_S, base * max(1.0, busy / 4))


def _sync_url() -> None:
    """Mirror the settings (and projector mode) into the URL, so a shared link reproduces
    them; parameters that are not settings are left as they are."""
    current = st.query_params.to_dict()
    ours = set(ctl.BY_KEY) | {PROJECTOR_KEY}
    wanted = {k: v for k, v in current.items() if k not in ours} | ctl.to_query(widget_values())
    if projector_on():
        wanted[PROJECTOR_KEY] = "1"
    token = st.session_state.get(TOKEN_PARAM)
    if token and st.session_state.lab.runs.store is not None:
        wanted[TOKEN_PARAM] = token
    if current != wanted:
        st.query_params.from_dict(wanted)
