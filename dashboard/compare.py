"""Compare saved runs: overlay their curves, download their metrics and configs."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.lab import Lab

METRICS = {
    "Training perplexity (per epoch)": ("epochs", "train_perplexity"),
    "Validation perplexity (per epoch)": ("epochs", "val_perplexity"),
    "Gradient norm before clipping": ("steps", "grad_norm"),
    "Gradient norm after clipping": ("steps", "grad_norm_clipped"),
    "Recurrent-weight gradient norm": ("steps", "group:recurrent weights"),
}


def compare_section(lab: Lab) -> None:
    st.subheader("Compare runs")
    if not lab.runs:
        st.caption(
            "Finished and stopped runs are kept here (up to 8 per session). Run the GRU, then "
            "the RNN, or init std 0.01 against 0.1, and overlay them."
        )
        return
    names = list(lab.runs)
    chosen = st.multiselect("Runs", names, default=names[-2:], key="compare_runs")
    if chosen:
        left, right = st.columns(2)
        with left:
            _overlay("Training perplexity (per epoch)", lab, chosen, "cmp-left")
        with right:
            metric = st.selectbox("Metric", list(METRICS)[2:], key="compare_metric")
            _overlay(metric, lab, chosen, "cmp-right")
        st.caption(
            "Does a GRU need a higher clip threshold than an RNN? Overlay a GRU and an RNN run "
            "with the same settings and compare their gradient norms before clipping. The study "
            "note's answer: ~3x the parameters do not by themselves make gradients explode; "
            "what matters is how the gradient is carried through time, and the GRU's update "
            "adds (Z keeps the old state) where the RNN multiplies by W_hh at every step."
        )
    with st.container(horizontal=True):
        pick = st.selectbox("Download a run", names, index=len(names) - 1, key="download_run")
        run = lab.runs[pick]
        slug = pick.split(" ")[0].lstrip("#")
        st.download_button(
            "Metrics CSV", run.metrics_csv(), f"gru-lab-run{slug}-metrics.csv", "text/csv"
        )
        st.download_button(
            "Config JSON", run.config_json(), f"gru-lab-run{slug}-config.json", "application/json"
        )


def _overlay(metric: str, lab: Lab, chosen: list[str], key: str) -> None:
    table, column = METRICS[metric]
    frames = {name: getattr(lab.runs[name], table) for name in chosen}
    st.plotly_chart(charts.compare_figure(frames, column, metric), key=key)
