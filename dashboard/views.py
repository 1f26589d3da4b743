"""Draw a telemetry snapshot: status line, the chosen view's charts with captions, and text.

Runs in the script thread only (the live fragment or a full rerun): it reads snapshots and
never touches the job's model. Figures come from the pure builders in ``charts.py``
(training curves) and ``cell_charts.py`` (gates, gradient flow through time); captions and
advice from ``teaching.py``. Saved runs are drawn by ``compare.py``.
"""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from dashboard import cell_charts, charts
from dashboard.figure_base import empty_figure
from dashboard.lab import Lab
from dashboard.teaching import CAPTIONS, divergence_advice
from gru_core.config import TrainConfig
from gru_core.gates import GATES, MODEL_GATES
from gru_core.job import JobStatus
from gru_core.telemetry import Snapshot, gate_names

VIEWS = ("Overview", "Gradients", "Gates", "Through time", "Text")
PLOT_CONFIG = {"displaylogo": False}


def status_line(status: JobStatus | None, snap: Snapshot) -> None:
    """Step, epoch, tokens/s, device and state, as one row of metrics."""
    if status is None:
        st.info(
            "Nothing is training. Choose settings in the sidebar (or a lesson) and press Start."
        )
        return
    tps = f"{status.tokens_per_sec:,.0f}" if status.tokens_per_sec else "–"
    state = status.state
    if state == "queued" and status.queue_position:
        state = f"queued (#{status.queue_position})"
    cols = st.columns(6)
    cols[0].metric("State", state)
    cols[1].metric("Step", f"{status.step:,}")
    cols[2].metric("Epoch", f"{status.epoch} / {status.num_epochs}")
    cols[3].metric("Tokens/s", tps)
    clip = "off" if status.clip_threshold is None else f"{status.clip_threshold:g}"
    cols[4].metric("Clip θ in force", clip)
    share = snap.clipped_steps / snap.total_steps if snap.total_steps else 0.0
    cols[5].metric(
        "Steps clipped", f"{share:.0%}", help="share of all steps so far whose gradient was clipped"
    )
    st.caption(
        f"step {status.step:,} · epoch {status.epoch} · {tps} tokens/s · {status.device} · "
        f"lr {status.lr:g} · {status.state}"
    )


def live_views(lab: Lab) -> None:
    """Everything that changes while training; called from the polling fragment."""
    job = lab.job
    status = job.status() if job is not None else None
    snap = lab.snapshot()
    status_line(status, snap)
    if status is not None and status.outcome is not None and status.state != "done":
        _ending_message(lab, status)
    view = st.segmented_control(
        "View", VIEWS, default=VIEWS[0], key="view", label_visibility="collapsed"
    )
    if view == "Overview":
        overview(snap)
    elif view == "Gradients":
        gradients(snap)
    elif view == "Gates":
        gates(snap, job.config.model if job is not None else None)
    elif view == "Through time":
        through_time(snap, lab)
    elif view == "Text":
        text(snap)


def _ending_message(lab: Lab, status: JobStatus) -> None:
    outcome = status.outcome
    assert outcome is not None and lab.job is not None
    if outcome.status == "diverged":
        st.error(divergence_advice(outcome, lab.job.config), icon="💥")
    elif outcome.status == "out_of_memory":
        st.error(
            f"{outcome.message}. GPU memory was released; try a smaller hidden size, batch or "
            "sequence length, or the CPU.",
            icon="🧠",
        )
    elif outcome.status == "error":
        st.error(f"The run stopped with an error: {outcome.message}")


def _chart(fig: object, key: str) -> None:
    st.plotly_chart(fig, key=key, config=PLOT_CONFIG)


def overview(snap: Snapshot) -> None:
    left, right = st.columns(2)
    with left:
        if len(snap.steps):
            _chart(charts.perplexity_figure(snap.steps, snap.epochs, snap.events), "ppl")
        else:
            _chart(empty_figure("Perplexity", "press Start to train"), "ppl")
        st.caption(CAPTIONS["perplexity"])
    with right:
        if len(snap.steps):
            _chart(charts.grad_norm_figure(snap.steps, snap.events), "gnorm")
        else:
            _chart(empty_figure("Gradient norm", "press Start to train"), "gnorm")
        st.caption(CAPTIONS["grad_norm"])
    if snap.last_epoch is not None:
        _text_block(snap)


def gradients(snap: Snapshot) -> None:
    left, right = st.columns(2)
    with left:
        _chart(charts.grad_norm_figure(snap.steps, snap.events), "gnorm2")
        st.caption(CAPTIONS["grad_norm"])
    with right:
        _chart(charts.param_group_figure(snap.steps), "groups")
        st.caption(CAPTIONS["groups"])


def gates(snap: Snapshot, model: str | None) -> None:
    if model is not None and not MODEL_GATES[model]:
        st.info(CAPTIONS["no_gates"])
        return
    names = gate_names(snap)
    if not names:
        st.info("Gate statistics appear after the first step.")
        return
    shown = names[:2]  # the registry's order: Z and R, or I and F
    cols = st.columns(len(shown))
    for col, gate in zip(cols, shown, strict=True):
        with col:
            _chart(cell_charts.gate_bands_figure(snap.steps, gate), f"bands-{gate}")
    st.caption(CAPTIONS["bands"] + " " + " ".join(GATES[g].caption for g in shown))
    probe = snap.probe
    if probe is None:
        return
    cols = st.columns(2)
    for col, gate in zip(cols, shown, strict=False):
        values = probe["gates"].get(gate)
        if values is not None:
            with col:
                _chart(cell_charts.gate_heatmap_figure(values, probe["text"], gate), f"heat-{gate}")
    st.caption(CAPTIONS["heatmap"] + f" Probe traced at step {probe['step']:,}.")
    key_gate = "Z" if "Z" in probe["gates"] else shown[0]
    z = probe["gates"].get(key_gate)
    if z is not None and key_gate == "Z":
        st.html(cell_charts.probe_text_html(probe["text"], np.asarray(z).mean(axis=1)))
        st.caption(CAPTIONS["probe"])


def through_time(snap: Snapshot, lab: Lab) -> None:
    if len(snap.flow_steps) == 0:
        every = lab.job.config.flow_every if lab.job is not None else TrainConfig().flow_every
        st.info(f"Gradient flow is recorded on step 1 and every {every}th step after it.")
        return
    left, right = st.columns(2)
    last = snap.flow[-1]
    with left:
        _chart(
            cell_charts.grad_flow_line_figure(last[~np.isnan(last)], int(snap.flow_steps[-1])),
            "flow-line",
        )
        st.caption(CAPTIONS["flow_line"])
    with right:
        _chart(cell_charts.grad_flow_heatmap_figure(snap.flow_steps, snap.flow), "flow-heat")
        st.caption(CAPTIONS["flow_heat"])


def text(snap: Snapshot) -> None:
    if snap.last_epoch is None:
        st.info("Generated text appears after the first epoch.")
        return
    _text_block(snap)
    epochs = snap.epochs
    if len(epochs):
        table = epochs[["epoch", "train_perplexity", "val_perplexity", "greedy_text"]].tail(10)
        st.dataframe(table.iloc[::-1], hide_index=True)


def _text_block(snap: Snapshot) -> None:
    e = snap.last_epoch
    assert e is not None
    train, val = _ppl(e.train_perplexity), _ppl(e.val_perplexity)
    st.markdown(f"**Epoch {e.epoch}** · train perplexity {train} · validation {val}")
    st.code(f"greedy : {e.greedy_text}\nsampled: {e.sampled_text}", language=None)


def _ppl(value: float | None) -> str:
    """2.34, or 1.85e+18 once a diverging run's perplexity stops being readable."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.2f}" if value < 1e4 else f"{value:.3g}"
