"""Draw a telemetry snapshot: status line, charts with captions, text, compare runs.

Runs in the script thread only (the live fragment or a full rerun): it reads snapshots and
never touches the job's model. Figures come from the pure builders in ``charts.py``
(training curves) and ``cell_charts.py`` (gates, gradient flow through time).
"""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from dashboard import cell_charts, charts
from dashboard.figure_base import empty_figure
from dashboard.lab import Lab
from dashboard.teaching import divergence_advice
from gru_core.job import JobStatus
from gru_core.telemetry import Snapshot, gate_names

VIEWS = ("Overview", "Gradients", "Gates", "Through time", "Text")
PLOT_CONFIG = {"displaylogo": False}

CAPTIONS = {
    "perplexity": (
        "**Perplexity** (log scale) is exp(mean cross-entropy): how many characters the model "
        "is still choosing between. The faint line is each minibatch; the bold ones are d2l's "
        "training perplexity and the held-out validation perplexity per epoch. Both should fall "
        "towards 1; validation staying well above training means memorising, and a jump up "
        "means the step was too large."
    ),
    "grad_norm": (
        "**Global gradient norm per step** (log scale), before and after clipping, with the "
        "clip threshold θ as a line. Clipping rescales the whole gradient to length θ "
        "whenever it is longer, so 'after' never rises above the line. Spikes of 'before' "
        "that tower over θ are exploding gradients that clipping caught; dotted verticals "
        "mark live changes of θ or the learning rate."
    ),
    "groups": (
        "**Gradient norm per parameter group** (log scale): input weights W_x·, recurrent "
        "weights W_h·, biases and the output layer. The recurrent weights' gradient sums "
        "products of Jacobians over time steps, so an explosion through time shows there "
        "first. Run a GRU and an RNN "
        "with the same settings and overlay them under Compare runs to see whether the GRU's "
        "~3x parameters call for a higher threshold."
    ),
    "bands": (
        "**Distribution of a gate over training**: the light band holds the middle 90% of all "
        "gate values in each minibatch, the dark band the middle 50%, the line the median. "
        "The dotted right-hand axis is the fraction saturated (below 0.05 or above 0.95): "
        "saturated gates pass almost no gradient. Z near 1 copies the old state forward."
    ),
    "heatmap": (
        "**Gate values on the probe text** 'time traveller ...', read from a zero state by the "
        "current model, refreshed live: one column per character, one row per hidden unit. "
        "Bright Z cells are units keeping their memory through that character; dark cells "
        "overwrite it with the candidate state."
    ),
    "probe": (
        "Each character of the probe coloured by its **mean Z** over hidden units: darker "
        "means the model keeps more of its old state while reading that character."
    ),
    "flow_line": (
        "**Gradient flow through time**: ||∂L/∂H_t|| for t = 1..T in the latest recorded "
        "step, from the hand-written backward pass. Each H_t gets gradient from its own output "
        "and from every later step. A curve that falls steeply towards t = 1 means vanishing "
        "gradients (early characters barely learn); one that rises towards t = 1 means "
        "exploding ones."
    ),
    "flow_heat": (
        "**The same over training** (log10 colour): one row per recorded step, one column per "
        "time step t. A dark left side means early characters get almost no gradient: the "
        "model cannot learn dependencies that long. Try sequence length 200 with GRU and RNN."
    ),
}


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
        gates(snap)
    elif view == "Through time":
        through_time(snap)
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


def gates(snap: Snapshot) -> None:
    names = gate_names(snap)
    if not names:
        st.info("Gate statistics appear after the first step.")
        return
    cols = st.columns(min(len(names), 2))
    shown = [g for g in names if g in ("Z", "R", "I", "F", "O", "H")][:2] or names[:2]
    for col, gate in zip(cols, shown, strict=False):
        with col:
            _chart(cell_charts.gate_bands_figure(snap.steps, gate), f"bands-{gate}")
    st.caption(CAPTIONS["bands"])
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


def through_time(snap: Snapshot) -> None:
    if len(snap.flow_steps) == 0:
        st.info("Gradient flow is recorded on step 1 and every 10th step after it.")
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
