"""The trainability map page: many configurations trained at once, one heatmap cell each.

Choose two axes (init std, clip threshold θ, learning rate, sequence length T, hidden size)
and their values, the model(s), the size and length; Start trains every cell at once through
the K-axis step core (``gru_core.sweep.job``), and the maps fill in live, side by side in one
figure on one colour scale. A click on a cell opens the lab with
that cell's settings, as a lesson does. The URL holds the sweep's settings (``map_*``).
Script thread only; the job never calls ``st.*``; figures from ``map_charts.py``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.charts import describe
from dashboard.charts import map as map_charts
from dashboard.charts.map_cells import shown_value
from dashboard.screens.investigate import record_map, step_banner
from dashboard.screens.resources import default_corpus, sweep_guard
from dashboard.sidebar import controls as ctl
from dashboard.sidebar.language import language_fragment
from dashboard.views.cell_picker import cell_picker
from dashboard.views.display import chart, page_style
from dashboard.views.teaching import CAPTIONS
from gru_core.config import MODEL_TITLES, TrainConfig
from gru_core.i18n import N_, _, ngettext
from gru_core.sweep.job import ENDED, THEORY_MISSING, SweepJob, SweepSnapshot
from gru_core.sweep.results import results_frame
from gru_core.sweep.spec import AXES, AXIS_TITLES, SweepSpec, axis_label, default_values

REFRESH_S = 1.0
MODEL_NAMES = dict(ctl.MODELS)  # label -> model: the lab's, the halves of a GRU included
# What a map reads from the URL, and its defaults: the "Why 0.01?" map, small enough to fill
# in a couple of minutes on a laptop CPU.
DEFAULTS: dict[str, Any] = {
    "map_x": "init_std", "map_y": "clip_threshold", "map_models": "GRU",
    "map_hidden": 32, "map_steps": 35, "map_epochs": 10, "map_seeds": 1,
}  # fmt: skip
WHY_001 = {**DEFAULTS, "map_models": "GRU,RNN"}
SIZES = {"map_hidden": (8, 256), "map_steps": (5, 100), "map_epochs": (1, 200), "map_seeds": (1, 3)}
# The shape axes' values on offer (each includes its default ladder, spec.default_values).
STEPS = (10, 20, 35, 50, 70, 100, 140, 200, 280, 400)
HIDDEN = (8, 16, 32, 64, 128, 256, 512)
# The size input an axis takes over (not used while that axis is swept).
AXIS_INPUTS = {"num_steps": "map_steps", "hidden_size": "map_hidden"}
SIZE_LABELS = {
    "map_hidden": N_("Hidden size"), "map_steps": N_("Sequence length"),
    "map_epochs": N_("Epochs"), "map_seeds": N_("Seeds per cell"),
}  # fmt: skip
SIDES = {"x": N_("x axis"), "y": N_("y axis")}
# A sweep's state as the progress bar words it (the job records the state, the page words it).
STATES = {
    "ready": N_("ready"), "queued": N_("queued"), "running": N_("running"),
    "paused": N_("paused"), "done": N_("done"), "stopped": N_("stopped"), "error": N_("error"),
}  # fmt: skip


def _options(axis: str) -> list[Any]:
    """The values offered on an axis: the lab's own ladders (and 'off' for clipping)."""
    ladder = {
        "init_std": ctl.INIT_STDS, "clip_threshold": ctl.CLIPS, "lr": ctl.LRS,
        "num_steps": STEPS, "hidden_size": HIDDEN,
    }[axis]  # fmt: skip
    return [*ladder, None] if axis == "clip_threshold" else list(ladder)


def _init_state() -> None:
    """First visit: the URL's map settings over the defaults."""
    if st.session_state.get("_map_initialised"):
        return
    params = st.query_params.to_dict()
    for key, default in DEFAULTS.items():
        raw = params.get(key, default)
        if key in SIZES:
            low, high = SIZES[key]
            try:
                raw = min(max(int(raw), low), high)
            except ValueError:
                raw = default
        st.session_state[key] = raw
    for side in ("x", "y"):
        axis = st.session_state[f"map_{side}"]
        if axis not in AXES:
            axis = st.session_state[f"map_{side}"] = DEFAULTS[f"map_{side}"]
        values = _parse_values(params.get(f"map_{side}v"), axis)
        st.session_state[f"map_{side}v"] = values or list(default_values(axis))
        st.session_state[f"_map_{side}_axis"] = axis  # the values belong to this axis
    st.session_state.map_models = [
        m for m in str(st.session_state.map_models).split(",") if m in MODEL_NAMES
    ] or ["GRU"]
    st.session_state._map_initialised = True


def _parse_values(raw: str | None, axis: str) -> list[Any]:
    if not raw:
        return []
    options = {axis_label(o): o for o in _options(axis)}
    return [options[v] for v in raw.split(",") if v in options]


def _why_001() -> None:
    """The lesson preset: init std × clip θ for the GRU and the RNN side by side."""
    st.session_state._map_initialised = False
    for key in DEFAULTS:
        st.query_params.pop(key, None)
    for side in ("xv", "yv"):
        st.query_params.pop(f"map_{side}", None)
    st.query_params["map_models"] = WHY_001["map_models"]


def _settings() -> None:
    # Options are worded now, in this run's language: Streamlit may call a format_func after
    # the run, where another language is in force.
    axis_titles = {axis: _(AXIS_TITLES[axis]) for axis in AXES}
    left, right = st.columns(2)
    for col, side in ((left, "x"), (right, "y")):
        with col:
            axis = st.selectbox(
                _(SIDES[side]), AXES, key=f"map_{side}", format_func=axis_titles.__getitem__
            )
            if st.session_state.get(f"_map_{side}_axis") != axis:  # the axis changed
                st.session_state[f"map_{side}v"] = list(default_values(axis))
                st.session_state[f"_map_{side}_axis"] = axis
            st.multiselect(
                _("{axis} values").format(axis=axis_titles[axis]), _options(axis),
                key=f"map_{side}v", format_func={v: shown_value(v) for v in _options(axis)}.get,
            )  # fmt: skip
    swept = {AXIS_INPUTS.get(st.session_state.map_x), AXIS_INPUTS.get(st.session_state.map_y)}
    with st.container(horizontal=True):
        models = {label: _(label) for label in MODEL_NAMES}
        st.multiselect(
            _("Models (one map each)"), list(MODEL_NAMES), key="map_models",
            format_func=models.__getitem__,
        )  # fmt: skip
        for key, label in SIZE_LABELS.items():
            low, high = SIZES[key]
            st.number_input(_(label), low, high, key=key, step=1)
    # The input an axis takes over stays as it is: disabling it (or changing its help) made
    # the browser drop every widget's value after the sweep's closing rerun (Streamlit 1.67).
    overridden = [axis_titles[axis] for axis, key in AXIS_INPUTS.items() if key in swept]
    if len(overridden) == 1:
        st.caption(
            _("The {axis} comes from the map's axis; its input above is not used.").format(
                axis=overridden[0]
            )
        )
    elif overridden:
        st.caption(
            _("The {first} and {second} come from the map's axes; their inputs above are not "
              "used.").format(first=overridden[0], second=overridden[1])
        )  # fmt: skip


def spec_from_state() -> SweepSpec:
    """The sweep the widgets describe (ValueError naming the field when it is not valid)."""
    s = st.session_state
    base = TrainConfig(
        hidden_size=int(s.map_hidden), num_steps=int(s.map_steps),
        num_epochs=int(s.map_epochs),
    )  # fmt: skip
    order = {axis: _options(axis) for axis in (s.map_x, s.map_y)}
    xs = sorted(s.map_xv, key=order[s.map_x].index)
    ys = sorted(s.map_yv, key=order[s.map_y].index)
    models = tuple(MODEL_NAMES[m] for m in s.map_models)
    return SweepSpec(s.map_x, tuple(xs), s.map_y, tuple(ys), base, int(s.map_seeds), models)


def _start() -> None:
    s = st.session_state
    s.map_error = None
    old: SweepJob | None = s.get("sweep")
    if old is not None:
        old.stop(wait=False)
    corpus, reason = default_corpus()
    try:
        if corpus is None:
            raise ValueError(_("no text to train on: {reason}").format(reason=reason))
        job = SweepJob(spec_from_state(), corpus)
    except ValueError as exc:
        s.map_error = str(exc)
        return
    s.sweep = job
    sweep_guard(job)  # a closed tab stops its sweep
    job.start()


def _stop() -> None:
    job: SweepJob | None = st.session_state.get("sweep")
    if job is not None:
        job.stop(wait=False)


def _open_in_lab(job: SweepJob, point: dict[str, Any]) -> None:
    """A clicked cell's settings in the lab, as a lesson applies them."""
    x, y, model = map_charts.clicked_cell(point["customdata"], job.spec)
    config = job.spec.base.replace(**{job.spec.x_axis: x, job.spec.y_axis: y, "model": model})
    values = ctl.values_from_config(config)
    st.session_state._fork_values = values
    st.query_params.clear()
    st.query_params.update(ctl.to_query(values))
    st.switch_page(st.session_state["_pages"]["lab"])


def map_page() -> None:
    page_style()
    _init_state()
    st.title(_("Trainability map"))
    st.caption(_(CAPTIONS["map"]))
    step_banner("map")
    st.button(_("Lesson: Why 0.01? (init std × clip θ, GRU and RNN)"), on_click=_why_001)
    _settings()
    job: SweepJob | None = st.session_state.get("sweep")
    running = job is not None and job.snapshot().state not in ENDED
    with st.container(horizontal=True):
        st.button(_("Restart") if running else _("Start"), type="primary", on_click=_start)
        st.button(_("Stop"), on_click=_stop, disabled=not running)
    if st.session_state.get("map_error"):
        st.error(_("Can't start: {reason}").format(reason=st.session_state.map_error))
    _sync_url()

    @language_fragment(run_every=REFRESH_S if running else None)
    def live() -> None:
        current: SweepJob | None = st.session_state.get("sweep")
        if current is None:
            st.info(_("Choose the axes and values above and press Start."))
            return
        snap = current.snapshot()
        st.progress(snap.finished / max(snap.total, 1), progress_text(snap))
        if snap.message:  # the first failure, as the worker kept it: the exception's text
            st.error(_("Some runs failed: {error}").format(error=snap.message))
        if snap.theory_error:
            st.caption(_(THEORY_MISSING).format(error=snap.theory_error))
        if snap.state in ENDED:
            record_map(current, snap)  # an investigation's step may ask for this map
        figure = map_charts.maps_figure(snap.results, current.spec, edges=snap.edges)
        summary = describe.map_summary(snap.results, current.spec)
        event = chart(figure, "map", alt=summary, select="points")
        points = (event or {}).get("selection", {}).get("points", [])
        picked = cell_picker(current.spec)  # the same action from the keyboard
        if points or picked:
            _open_in_lab(current, points[0] if points else picked)
        st.caption(_(CAPTIONS["map_read"]))
        if snap.edges:
            st.caption(_(CAPTIONS["map_theory"]) + " " + _edge_numbers(snap.edges))
        st.download_button(
            _("Download the map (CSV)"), results_frame(snap.results).to_csv(index=False),
            "gru-lab-map.csv", "text/csv",
        )  # fmt: skip
        if running and snap.state in ENDED:
            st.rerun()

    live()


def progress_text(snap: SweepSnapshot) -> str:
    """'running · 3 of 12 runs · 41 s · <plan>': the progress bar's words."""
    state = str(snap.state)
    runs = ngettext("{finished} of {n} run", "{finished} of {n} runs", snap.total)
    return " · ".join(
        (
            _(STATES[state]) if state in STATES else state,
            runs.format(finished=snap.finished, n=snap.total),
            _("{seconds} s").format(seconds=f"{snap.elapsed:.0f}"),
            snap.plan,
        )
    )


def _edge_numbers(edges: dict[tuple[str, int], float | None]) -> str:
    """'Edge of chaos: GRU hidden 256 at init std 0.13; RNN hidden 256 at 0.075.'"""
    parts = []
    for (model, hidden), std in sorted(edges.items()):
        title = _(MODEL_TITLES[model])
        if std is None:
            part = _("{model} hidden {hidden}: no crossing between 0.001 and 10")
            parts.append(part.format(model=title, hidden=hidden))
        else:
            part = _("{model} hidden {hidden}: init std {std}")
            parts.append(part.format(model=title, hidden=hidden, std=f"{std:.2g}"))
    return _("λ = 0 at {edges}.").format(edges="; ".join(parts))


def _sync_url() -> None:
    """The sweep's settings in the URL, so a link reproduces the map."""
    s = st.session_state
    wanted = {k: v for k, v in st.query_params.to_dict().items() if not k.startswith("map_")}
    for key, default in DEFAULTS.items():
        value = ",".join(s[key]) if key == "map_models" else s[key]
        if str(value) != str(default):
            wanted[key] = str(value)
    for side in ("x", "y"):
        axis = s[f"map_{side}"]
        if list(s[f"map_{side}v"]) != list(default_values(axis)):
            wanted[f"map_{side}v"] = ",".join(axis_label(v) for v in s[f"map_{side}v"])
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
