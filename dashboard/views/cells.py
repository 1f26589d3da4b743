"""The views inside the cell: gate distributions and heatmaps, and the gradient flowing back
through time. Script thread only; figures from ``charts/cells.py`` and ``charts/flow.py``,
captions from ``teaching.py``.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard.charts import cells as cell_charts
from dashboard.charts import describe
from dashboard.charts import flow as flow_charts
from dashboard.views.display import chart, snapshot_figure
from dashboard.views.teaching import CAPTIONS, bands_caption
from gru_core.i18n import _
from gru_core.model.gates import MODEL_GATES
from gru_core.run.telemetry import Snapshot, gate_names


def gates(snap: Snapshot, model: str | None) -> None:
    if model is not None and not MODEL_GATES[model]:
        st.info(CAPTIONS["no_gates"])
        return
    names = gate_names(snap)
    if not names:
        st.info(_("Gate statistics appear after the first step."))
        return
    shown = names[:2]  # the registry's order: Z and R, or I and F
    # Each gate a panel of one chart (one mount for the browser: charts/panels.py).
    fig = snapshot_figure(
        snap, "bands:" + ",".join(shown), lambda: cell_charts.gates_bands_figure(snap.steps, shown)
    )
    chart(fig, "bands", alt=" ".join(describe.gate_bands(snap.steps, g) for g in shown))
    st.caption(bands_caption(shown))
    probe = snap.probe  # heatmaps, caption and text of one probe
    traced = [g for g in shown if probe is not None and probe["gates"].get(g) is not None]
    if probe is None or not traced:
        return
    fig = snapshot_figure(  # built once per probe (its first array: a key), for every session
        probe["gates"][traced[0]],
        "heat:" + ",".join(traced),
        lambda: cell_charts.gates_heatmap_figure(probe["gates"], probe["text"], traced),
    )
    chart(fig, "heat", alt=describe.heatmap)
    traced = _("Probe traced at step {step}.").format(step=f"{probe['step']:,}")
    st.caption(CAPTIONS["heatmap"] + " " + traced)
    key_gate = "Z" if "Z" in probe["gates"] else shown[0]
    z = probe["gates"].get(key_gate)
    if z is not None and key_gate == "Z":
        st.html(cell_charts.probe_text_html(probe["text"], np.asarray(z).mean(axis=1)))
        st.caption(CAPTIONS["probe"])


def through_time(snap: Snapshot, flow_every: int) -> None:
    """How far back one position's loss reaches (the vanishing picture), over training, and
    the total gradient at each H_t as a secondary view."""
    if len(snap.flow_steps) == 0:
        st.info(
            _("Gradient flow is recorded on step 1 and every {n}th step after it.").format(
                n=flow_every
            )
        )
        return
    fig, numbers = flow_figure(snap)
    chart(fig, "flow", alt=lambda f: describe.lines(f) + " " + describe.heatmap(f))
    st.caption(CAPTIONS["flow_reach"] + " " + numbers)  # the top panel
    st.caption(CAPTIONS["flow_heat"])  # the bottom one
    # A toggle, not an expander: a folded expander still mounts its chart (a third for the
    # browser on every switch to this view); switched off, the chart is not sent at all.
    if st.toggle(
        _("The total gradient at each H_t (every position's loss together)"), key="flow_total"
    ):
        line = total_figure(snap)
        chart(line, "flow-line", alt=describe.lines)
        st.caption(CAPTIONS["flow_line"])


def total_figure(snap: Snapshot) -> go.Figure:
    """The total gradient at each H_t at the last flow record (once per snapshot)."""
    step, total = int(snap.flow_steps[-1]), snap.flow[-1]
    return snapshot_figure(
        snap, "flow-line", lambda: flow_charts.grad_flow_line_figure(total[~np.isnan(total)], step)
    )


def flow_figure(snap: Snapshot) -> tuple[go.Figure, str]:
    """The Through time view's chart of a snapshot with flow records (built once per
    snapshot for every session: the reach now over the reach through training), and the
    reach now in words."""
    last, late = snap.flow_last[-1], snap.flow_late[-1]
    keep = ~np.isnan(last)
    fig = snapshot_figure(
        snap,
        "flow",
        lambda: flow_charts.reach_and_history_figure(
            last[keep], late[keep], snap.flow_steps, snap.flow_last
        ),
    )
    return fig, reach_numbers(last[keep])


def reach_numbers(flow_last: np.ndarray) -> str:
    """'Now: at t = 1 it is 3.2e-05 of its value at t = T (34 steps back); it stays above
    0.001 for 12 of them.' from the data shown; 'below 1e-30' where it underflowed."""
    normed = flow_charts.normalise_at_end(flow_last)[0]
    if normed.size < 2 or not np.isfinite(normed[0]):
        return ""
    first = _(flow_charts.FLOOR_LABEL) if normed[0] < flow_charts.FLOOR else f"{normed[0]:.2g}"
    reach = flow_charts.reach_steps(normed)
    return _(
        "Now: at t = 1 it is {first} of its value at t = T ({back} steps back); "
        "it stays above {level} for {reach} of them."
    ).format(first=first, back=normed.size - 1, level=f"{flow_charts.REACH_LEVEL:g}", reach=reach)


def theory_caption(lam: float | None) -> None:
    """The lab's settings in theory (λ from ``pages.resources.initial_lambda``)."""
    if lam is not None:
        st.caption(lambda_sentence(lam))


def lambda_sentence(lam: float) -> str:
    """λ in words a class reads: what it does to a gradient 35 steps back."""
    if lam < 0:
        words = _(
            "Theory, at initialisation: λ = {lam} per step, so signals and gradients shrink "
            "about e^λ = {per_step}× per step (35 steps back: {back}×)."
        )
    else:
        words = _(
            "Theory, at initialisation: λ = {lam} per step, so signals and gradients grow "
            "about e^λ = {per_step}× per step (35 steps back: {back}×)."
        )
    return words.format(
        lam=f"{lam:+.2f}", per_step=f"{np.exp(lam):.2g}", back=f"{np.exp(35 * lam):.1e}"
    )
