"""Compare saved runs: a table of how each went, overlays of their curves, how far back one
loss reaches (the runs' through-time curves on shared axes, and the reach of each), downloads.

The overlay follows the lab: a run that finishes joins it (the last two by default) and the
download box moves to the newest run. Runs can be pinned so they are never dropped.
Streamlit calls only; the figures come from ``charts.compare_figure``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.charts import describe
from dashboard.charts import flow as flow_charts
from dashboard.charts import training as charts
from dashboard.runs.saved import MAX_SAVED_RUNS, MIN_STEPS_KEPT, SavedRun
from dashboard.session.lab import Lab
from dashboard.views.display import chart, chart_columns, frozen_figure, remembered, worded
from dashboard.views.teaching import CAPTIONS
from gru_core.i18n import N_, _
from gru_core.run.verdict import kind_words
from gru_core.step.stats import (
    CLIPPED,
    EPOCH,
    GRAD_NORM,
    GRAD_NORM_CLIPPED,
    PERPLEXITY,
    RECURRENT_WEIGHTS,
    STEP,
    group_column,
)


@dataclass(frozen=True)
class Metric:
    table: str  # 'steps' or 'epochs'
    column: str
    axis: str  # the y-axis title (N_-marked: shown as _(axis))
    log: bool  # the default scale


# Keyed by the English name (a widget option and part of widget keys): shown as _(name).
METRICS = {
    N_("Training perplexity (per epoch)"): Metric(
        "epochs", "train_perplexity", N_("perplexity"), True
    ),
    N_("Validation perplexity (per epoch)"): Metric(
        "epochs", "val_perplexity", N_("perplexity"), True
    ),
    N_("Perplexity per minibatch"): Metric("steps", PERPLEXITY, N_("perplexity"), True),
    N_("Gradient norm before clipping"): Metric(
        "steps", GRAD_NORM, N_("‖g‖ before clipping"), True
    ),
    N_("Gradient norm after clipping"): Metric(
        "steps", GRAD_NORM_CLIPPED, N_("‖g‖ after clipping"), True
    ),
    N_("Recurrent-weight gradient norm"): Metric(
        "steps", group_column(RECURRENT_WEIGHTS), "‖∂L/∂W_h·‖", True
    ),
    N_("Share of steps clipped (so far)"): Metric(
        "steps", "clipped_share", N_("share clipped"), False
    ),
}
# The summary table's columns (identifiers) and their headings on screen.
COLUMNS = {
    "pinned": "📌",
    "run": N_("run"),
    "outcome": N_("outcome"),
    "steps": N_("steps"),
    "start perplexity": N_("start perplexity"),
    "final perplexity": N_("final perplexity"),
    "validation": N_("validation"),
    "max ‖g‖": N_("max ‖g‖"),
    "clipped": N_("share clipped"),
}


def metric_frame(run: SavedRun, metric: Metric) -> pd.DataFrame:
    """The frame a metric is read from; the running clipped share is derived here."""
    frame = getattr(run, metric.table)
    if metric.column == "clipped_share" and CLIPPED in frame:
        clipped = frame[CLIPPED].astype(float).to_numpy()
        share = np.cumsum(clipped) / np.arange(1, len(clipped) + 1)
        frame = frame.assign(clipped_share=share)
    return frame


def summary_table(runs: list[SavedRun]) -> pd.DataFrame:
    """One row per saved run: outcome and the numbers behind it."""
    rows = []
    for run in runs:
        steps, epochs = run.steps, run.epochs
        val = epochs["val_perplexity"].dropna() if "val_perplexity" in epochs else pd.Series()
        clipped = float(steps[CLIPPED].astype(float).mean()) if len(steps) else float("nan")
        rows.append(
            {
                "pinned": run.pinned,
                "run": run.name,
                "outcome": run.verdict.kind,
                "steps": int(steps[STEP].max()) if len(steps) else 0,
                "start perplexity": run.verdict.start_perplexity,
                "final perplexity": run.verdict.final_perplexity,
                "validation": float(val.iloc[-1]) if len(val) else None,
                "max ‖g‖": float(steps[GRAD_NORM].max()) if len(steps) else None,
                "clipped": clipped,
            }
        )
    return pd.DataFrame(rows)


def gru_rnn_reading(runs: list[SavedRun]) -> str | None:
    """What the overlaid runs say about "does a GRU need a higher clip threshold than an
    RNN?": for the newest GRU and the newest RNN run shown, the median gradient norm before
    clipping and the share of steps clipped, then the study note's explanation to check
    against them. None unless both models are shown (no explanation before the data)."""
    newest = {run.config.model: run for run in runs}  # runs come oldest first
    if "gru" not in newest or "rnn" not in newest:
        return None
    parts = []
    for model in ("gru", "rnn"):
        steps = newest[model].steps
        norms = steps[GRAD_NORM].to_numpy(dtype=float) if GRAD_NORM in steps else np.array([])
        norms = norms[np.isfinite(norms)]
        share = float(steps[CLIPPED].astype(float).mean()) if len(steps) else 0.0
        words = (
            _("{run}: median ‖g‖ {median} before clipping, {share} of steps clipped")
            if norms.size
            else _("{run}: no finite ‖g‖ before clipping, {share} of steps clipped")
        )
        median = f"{np.median(norms):.3g}" if norms.size else ""
        parts.append(words.format(run=newest[model].title, median=median, share=f"{share:.0%}"))
    shown = _("In the runs shown: {parts}.").format(parts=_("; ").join(parts))
    return shown + " " + CAPTIONS["compare_explain"]


def _follow_new_runs(names: list[str]) -> None:
    """A newly saved run joins the overlay and becomes the download choice."""
    seen = st.session_state.get("compare_seen", [])
    new = [n for n in names if n not in seen]
    st.session_state.compare_seen = names
    chosen = [n for n in st.session_state.get("compare_runs", []) if n in names]
    if new:
        keep = max(2, len(chosen))
        st.session_state.compare_runs = (chosen + new)[-keep:]
        st.session_state.download_run = names[-1]
    else:
        st.session_state.compare_runs = chosen or names[-2:]
    if st.session_state.get("download_run") not in names:
        st.session_state.download_run = names[-1]


def compare_section(lab: Lab) -> None:
    st.header(_("Compare runs"))  # h2 under the page's h1 (axe: heading-order)
    lab.keep_short = st.toggle(
        _("Keep runs shorter than {n} steps").format(n=MIN_STEPS_KEPT),
        key="keep_short",
        help=_(
            "by default a run that stopped almost at once (a quick Restart) is not kept; "
            "failed runs are always kept"
        ),
    )
    if lab.runs.status_message:
        st.warning(lab.runs.status_message, icon="💾")
    runs = list(lab.runs)
    if not runs:
        st.caption(CAPTIONS["compare_empty"].format(n=MAX_SAVED_RUNS))
        return
    names = [run.name for run in runs]  # identifiers; the page shows each run's title
    titles = {run.name: run.title for run in runs}
    _follow_new_runs(names)
    _table(lab, runs)
    chosen = st.multiselect(
        _("Runs to overlay"), names, key="compare_runs", format_func=lambda n: titles.get(n, n)
    )
    if chosen:
        left, right = chart_columns(2, "compare")
        with left:
            _overlay(lab, chosen, "left", "Training perplexity (per epoch)")
        with right:
            _overlay(lab, chosen, "right", "Gradient norm before clipping")
        st.caption(CAPTIONS["compare"])
        reading = gru_rnn_reading([r for r in map(lab.runs.get, chosen) if r is not None])
        if reading:
            st.caption(reading)
        _through_time(lab, chosen)
    with st.container(horizontal=True):
        pick = st.selectbox(
            _("Download a run"), names, key="download_run", format_func=lambda n: titles.get(n, n)
        )
        run = lab.runs.get(pick)
        if run is not None:
            # A saved run's files are made once (``SavedRun.metrics_csv``), so a rerun sends
            # the same element; a click downloads without rerunning the page.
            st.download_button(
                _("Metrics CSV"), run.metrics_csv(), f"gru-lab-run{run.number}-metrics.csv",
                "text/csv", on_click="ignore",
            )  # fmt: skip
            st.download_button(
                _("Config JSON"), run.config_json(), f"gru-lab-run{run.number}-config.json",
                "application/json", on_click="ignore",
            )  # fmt: skip


def _table(lab: Lab, runs: list[SavedRun]) -> None:
    table = summary_table(runs)
    shown = table.assign(
        outcome=[kind_words(k) for k in table["outcome"]], run=[run.title for run in runs]
    )
    heading = {c: _(COLUMNS[c]) for c in COLUMNS}
    edited = st.data_editor(
        shown,
        key=f"compare_table_{len(runs)}_{runs[-1].number}",
        hide_index=True,
        disabled=[c for c in table.columns if c != "pinned"],
        column_config={
            "pinned": st.column_config.CheckboxColumn(
                heading["pinned"], help=_("a pinned run is never dropped")
            ),
            "run": st.column_config.TextColumn(heading["run"]),
            "outcome": st.column_config.TextColumn(heading["outcome"]),
            "steps": st.column_config.NumberColumn(heading["steps"]),
            **{
                c: st.column_config.NumberColumn(heading[c], format="%.3g")
                for c in ("start perplexity", "final perplexity", "validation", "max ‖g‖")
            },
            CLIPPED: st.column_config.NumberColumn(heading[CLIPPED], format="percent"),
        },
    )
    for name, was, now in zip(table["run"], table["pinned"], edited["pinned"], strict=True):
        if bool(was) != bool(now):
            try:
                lab.runs.pin(name, bool(now))
            except ValueError as exc:
                st.warning(str(exc))
            st.rerun()


def _through_time(lab: Lab, chosen: list[str]) -> None:
    """The chosen runs' last recorded ||∂ℓ_T/∂H_t|| on one chart, and each one's reach."""
    runs = [run for run in map(lab.runs.get, chosen) if run is not None and run.flow_last]
    if not runs:
        return

    def build() -> tuple[go.Figure, str, go.Figure, str]:
        flows = {run.title: np.asarray(run.flow_last, dtype=np.float64) for run in runs}
        overlay = frozen_figure(flow_charts.reach_overlay_figure(flows))
        reach = frozen_figure(flow_charts.reach_figure(flows))
        return overlay, describe.lines(overlay), reach, describe.bars(reach)

    overlay, overlay_alt, reach, reach_alt = remembered(
        ("compare-flow", *(run.run_id for run in runs)), build
    )
    left, right = chart_columns(2, "compare-flow")
    with left:
        chart(overlay, "cmp-flow", alt=overlay_alt)
    with right:
        chart(reach, "cmp-reach", alt=reach_alt)
    st.caption(CAPTIONS["compare_reach"])


def _overlay(lab: Lab, chosen: list[str], side: str, default: str) -> None:
    names = list(METRICS)
    metric_name = st.selectbox(
        _("Metric"), names, index=names.index(default), key=f"compare_metric_{side}",
        format_func=worded(names),
    )  # fmt: skip
    metric = METRICS[metric_name]
    with st.container(horizontal=True):
        log = st.toggle(_("Log scale"), value=metric.log, key=f"compare_log_{side}_{metric_name}")
        hide = st.toggle(
            _("Hide outliers"),
            key=f"compare_hide_{side}",
            help=_("leave out runs whose typical value is over 100x away from the others'"),
        )
    runs = [run for run in map(lab.runs.get, chosen) if run is not None]

    def build() -> tuple[go.Figure, str, list[str]]:
        frames = {run.title: metric_frame(run, metric) for run in runs}
        hidden: list[str] = []
        if hide:
            frames, hidden = charts.split_outliers(frames, metric.column)
        x_title = _("epoch") if metric.table == "epochs" else _("training step")
        x = EPOCH if metric.table == "epochs" else STEP
        figure = frozen_figure(
            charts.compare_figure(
                frames,
                metric.column,
                _(metric_name),
                log_y=log,
                x=x,
                x_title=x_title,
                y_title=_(metric.axis),
            )
        )
        return figure, describe.lines(figure), hidden

    # Saved runs never change: their overlay is built once per choice, not at every rerun.
    key = ("compare", side, metric_name, log, hide, *(run.run_id for run in runs))
    figure, alt, hidden = remembered(key, build)
    chart(figure, f"cmp-{side}", alt=alt)
    if hidden:
        st.caption(_("Hidden as outliers: {runs}").format(runs=_("; ").join(hidden)))
