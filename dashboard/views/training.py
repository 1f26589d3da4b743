"""Draw a telemetry snapshot: status line, the chosen view's charts with captions, and text.

Runs in the script thread only (the live fragment or a full rerun): it reads snapshots and
never touches the job's model; a sample of text comes from the session's ``Lab``
(``Lab.sample``). Figures come from the pure builders in ``charts/training.py`` (training
curves) and ``charts/cells.py`` (gates, gradient flow through time); captions and advice from
``teaching.py``. Saved runs are drawn by ``compare.py``.
"""

from __future__ import annotations

import math

import streamlit as st

from dashboard.charts import cells as cell_charts
from dashboard.charts import describe
from dashboard.charts import training as charts
from dashboard.charts.base import empty_figure
from dashboard.session.lab import Lab
from dashboard.views import cells as cell_views
from dashboard.views.display import chart, chart_columns, snapshot_figure, worded
from dashboard.views.memory import memory_view
from dashboard.views.teaching import CAPTIONS, bands_caption, outcome_advice
from gru_core.config import LIVE_KNOBS, TrainConfig, format_knob
from gru_core.i18n import N_, _
from gru_core.model.gates import MODEL_GATES
from gru_core.model.sampling import MAX_TEMPERATURE, MIN_TEMPERATURE
from gru_core.run.job import JobStatus
from gru_core.run.records import Outcome
from gru_core.run.telemetry import Snapshot, gate_names
from gru_core.run.verdict import Verdict, kind_words
from gru_core.step.stats import EPOCH

# The view selector's options: identifiers (widget values, tests) that the page says with _().
VIEWS = (N_("Overview"), N_("Gradients"), N_("Gates"), N_("Through time"), N_("Memory"), N_("Text"))
# A job's states as the page says them (verdicts use their own VERDICTS marks).
STATES = {
    "ready": N_("ready"),
    "queued": N_("queued"),
    "running": N_("running"),
    "paused": N_("paused"),
    "done": N_("done"),
    "stopped": N_("stopped"),
    "diverged": N_("diverged"),
    "out_of_memory": N_("out of memory"),
    "error": N_("error"),
}


def state_words(state: str) -> str:
    """A job's state (JobState or an Outcome's status) as the page says it."""
    return _(STATES.get(str(state), str(state)))


def basis_words(basis: str) -> str:
    """What a tokens/s figure is over ('last 5 s', 'mean over the run': the job's facts)."""
    if basis == "mean over the run":
        return _("mean over the run")
    if basis.startswith("last ") and basis.endswith(" s"):
        return _("last {seconds} s").format(seconds=basis[5:-2])
    return basis


def status_line(status: JobStatus | None, counts: tuple[int, int], verdict: Verdict | None) -> None:
    """Step, epoch, tokens/s, device and state (or, once it ended, the verdict); ``counts``:
    (steps, clipped steps) of the run so far."""
    if status is None:
        st.info(
            _("Nothing is training. Choose settings in the sidebar (or a lesson) and press Start.")
        )
        return
    tps = f"{status.tokens_per_sec:,.0f}" if status.tokens_per_sec else "–"
    state = kind_words(verdict.kind) if verdict is not None else state_words(status.state)
    if status.state == "queued" and status.queue_position:
        state = _("queued (#{n})").format(n=status.queue_position)
    basis = basis_words(status.tokens_per_sec_basis)
    clip = _(format_knob("clip_threshold", status.clip_threshold))  # 'off' is worded
    pending = _pending_knobs(status)
    total, clipped = counts
    share = clipped / total if total else 0.0
    with st.container(horizontal=True, wrap=True, gap="medium", key="metrics"):
        st.metric(_("State"), state, width="content")
        st.metric(_("Step"), f"{status.step:,}", width="content")
        st.metric(_("Epoch"), f"{status.epoch} / {status.num_epochs}", width="content")
        st.metric(_("Tokens/s"), tps, help=basis or None, width="content")
        st.metric(
            _(LIVE_KNOBS["clip_threshold"].title),
            clip,
            help=_("what the next step uses") + (_("; ") + pending if pending else ""),
            width="content",
        )
        st.metric(
            _("Steps clipped"),
            f"{share:.0%}",
            help=_("share of all steps so far whose gradient was clipped"),
            width="content",
        )
    detail = _(
        "step {step} · epoch {epoch} · {tps} tokens/s ({basis}) · {device} · lr {lr} · {state}"
    ).format(
        step=f"{status.step:,}", epoch=status.epoch, tps=tps, basis=basis,
        device=status.device, lr=f"{status.lr:g}", state=state,
    )  # fmt: skip
    st.container(key="status-detail").caption(
        detail + (f" · {pending}" if pending else "") + (f" · {status.note}" if status.note else "")
    )


def _pending_knobs(status: JobStatus) -> str:
    """'the last step used clip 1, lr 1' when a change waits for the next step, else ''."""
    used = status.last_step_knobs
    if used is None:
        return ""
    now = {"clip_threshold": status.clip_threshold, "lr": status.lr}
    changed = [n for n in LIVE_KNOBS if n in used and used[n] != now.get(n)]
    if not changed:
        return ""
    knobs = ", ".join(f"{_(LIVE_KNOBS[n].label)} {_(format_knob(n, used[n]))}" for n in changed)
    return _("the last step used {knobs}").format(knobs=knobs)


def live_status(lab: Lab) -> None:
    """What changes at every step and costs little to draw: the status line and, once the
    run has ended, its verdict with advice (no snapshot is built for it)."""
    job = lab.job
    status = job.status() if job is not None else None
    verdict = lab.verdict()
    status_line(status, lab.clipped_counts(), verdict)
    if job is not None and status is not None and status.outcome is not None:
        _ending_message(verdict, status.outcome, job.config)


def view_control() -> str:
    """The view selector; the view chosen (the one shown last if none arrives)."""
    view = st.segmented_control(
        _("View"), VIEWS, default=VIEWS[0], key="view", label_visibility="collapsed",
        required=True, format_func=worded(VIEWS),
    )  # fmt: skip
    # required=True stops the browser from deselecting; a None that still arrives (an old
    # client) keeps the view that was showing instead of leaving the page blank.
    view = view or st.session_state.get("_last_view", VIEWS[0])
    st.session_state._last_view = view
    return str(view)


def view_charts(lab: Lab, view: str, snapshot_age: float = 0.0) -> None:
    """The charts, captions and text of ``view`` for the lab's run now."""
    job = lab.job
    status = job.status() if job is not None else None
    snap = lab.snapshot(snapshot_age)
    model = job.config.model if job is not None else None
    if view == "Overview":
        overview(snap, model, _placeholder(status))
    elif view == "Gradients":
        gradients(snap)
    elif view == "Gates":
        cell_views.gates(snap, model)
    elif view == "Through time":
        cell_views.through_time(snap, job.config.flow_every if job else TrainConfig().flow_every)
    elif view == "Memory":
        memory_view(lab)
    elif view == "Text":
        text(snap, lab)


def _placeholder(status: JobStatus | None) -> str:
    """What an empty chart says: nothing yet, or why there is nothing."""
    if status is not None and status.outcome is not None and status.state != "stopped":
        return _("{state} at step {step}: no finite value to plot").format(
            state=state_words(status.outcome.status), step=status.outcome.step
        )
    if status is None or status.step == 0:
        return _("press Start to train")
    return _("waiting for data")


def _ending_message(verdict: Verdict | None, outcome: Outcome, config: TrainConfig) -> None:
    """The verdict with its advice; ``config`` is the one in force when the run ended."""
    if verdict is None:
        return
    text = outcome_advice(verdict, outcome, config)
    if verdict.kind in ("diverged", "blew up"):
        st.error(text, icon="💥")
    elif verdict.failed:
        st.error(text, icon="🧠" if verdict.kind == "out of memory" else None)
    elif verdict.kind == "learned":
        st.success(text)
    else:
        st.info(text)


def overview(snap: Snapshot, model: str | None, placeholder: str) -> None:
    """The first screen: perplexity, gradient norm and the gates, side by side."""
    has_data = bool(len(snap.steps))
    cols = chart_columns(3, "overview")
    with cols[0]:
        fig = (
            snapshot_figure(
                snap, "ppl", lambda: charts.perplexity_figure(snap.steps, snap.epochs, snap.events)
            )
            if has_data
            else empty_figure(_("Perplexity"), placeholder)
        )
        chart(fig, "ppl", alt=describe.perplexity(snap.steps, snap.epochs))
        st.caption(CAPTIONS["perplexity"])
    with cols[1]:
        fig = (
            snapshot_figure(snap, "gnorm", lambda: charts.grad_norm_figure(snap.steps, snap.events))
            if has_data
            else empty_figure(_("Gradient norm"), placeholder)
        )
        chart(fig, "gnorm", alt=describe.grad_norm(snap.steps))
        st.caption(CAPTIONS["grad_norm"])
    with cols[2]:
        names = gate_names(snap)
        if model is not None and not MODEL_GATES[model]:
            fig = snapshot_figure(snap, "groups", lambda: charts.param_group_figure(snap.steps))
            chart(fig, "overview-groups", alt=describe.param_groups(snap.steps))
            st.caption(CAPTIONS["no_gates"] + " " + CAPTIONS["groups"])
        elif names:
            gate = names[0]
            fig = snapshot_figure(
                snap, f"bands-{gate}", lambda: cell_charts.gate_bands_figure(snap.steps, gate)
            )
            chart(fig, f"overview-bands-{gate}", alt=describe.gate_bands(snap.steps, gate))
            st.caption(bands_caption([gate]))
        else:
            chart(empty_figure(_("Gates"), placeholder), "overview-bands", alt=describe.lines)
            st.caption(bands_caption([]))
    if snap.last_epoch is not None:
        _text_block(snap)


def gradients(snap: Snapshot) -> None:
    left, right = chart_columns(2, "gradients")
    with left:
        fig = snapshot_figure(
            snap, "gnorm", lambda: charts.grad_norm_figure(snap.steps, snap.events)
        )
        chart(fig, "gnorm2", alt=describe.grad_norm(snap.steps))
        st.caption(CAPTIONS["grad_norm"])
    with right:
        chart(
            snapshot_figure(snap, "groups", lambda: charts.param_group_figure(snap.steps)),
            "groups",
            alt=describe.param_groups(snap.steps),
        )
        st.caption(CAPTIONS["groups"])


def text(snap: Snapshot, lab: Lab) -> None:
    _sample_at_temperature(lab)
    if snap.last_epoch is None:
        st.info(_("Generated text appears after the first epoch."))
        return
    _text_block(snap)
    epochs = snap.epochs
    if len(epochs):
        # A plain table (HTML), not st.dataframe's grid: ten rows read from the back row, and
        # the grid's canvas cost the browser a mount on every switch to this view.
        table = epochs[[EPOCH, "train_perplexity", "val_perplexity", "greedy_text"]].tail(10)
        table = table.iloc[::-1].astype(object)
        for column in ("train_perplexity", "val_perplexity"):
            table[column] = [_ppl(v) for v in table[column]]
        names = {
            EPOCH: _("epoch"),
            "train_perplexity": _("training perplexity"),
            "val_perplexity": _("validation perplexity"),
            "greedy_text": _("greedy text"),
        }
        st.table(table.rename(columns=names).set_index(names[EPOCH]))


def _text_block(snap: Snapshot) -> None:
    e = snap.last_epoch
    assert e is not None
    train, val = _ppl(e.train_perplexity), _ppl(e.val_perplexity)
    st.markdown(
        _("**Epoch {epoch}** · train perplexity {train} · validation {val}").format(
            epoch=e.epoch, train=train, val=val
        )
    )
    greedy, sampled = _("greedy"), _("sampled")
    width = max(len(greedy), len(sampled))
    st.code(
        f"{greedy:<{width}}: {e.greedy_text}\n{sampled:<{width}}: {e.sampled_text}", language=None
    )


def _ppl(value: float | None) -> str:
    """2.34, or 1.85e+18 once a diverging run's perplexity stops being readable."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.2f}" if value < 1e4 else f"{value:.3g}"


def _sample_at_temperature(lab: Lab) -> None:
    """Sample from the latest weights at a temperature the class chooses (``Lab.sample``:
    sampled again only when the weights, the temperature or the draw change)."""
    found = lab.sources()
    if not found:
        return
    source = next(iter(found.values()))
    left, right = st.columns([1, 3])
    with left:
        temperature = st.slider(
            _("Temperature"), MIN_TEMPERATURE, MAX_TEMPERATURE, 1.0, 0.1, key="temperature",
            help=_("low: the likeliest characters (near greedy); high: more surprising ones"),
        )  # fmt: skip
        draw = st.button(_("Sample again"), key="resample")
    if draw:
        st.session_state.sample_seed = st.session_state.get("sample_seed", 0) + 1
    sample = lab.sample(source, temperature, st.session_state.get("sample_seed", 0))
    with right:
        st.markdown(
            _("**Sampled at temperature {temperature}** from {source}").format(
                temperature=f"{temperature:g}", source=source.title
            )
        )
        st.code(sample, language=None, wrap_lines=True)
