"""What drawing a view's charts costs a browser: the dashboard's own figures, drawn by
plotly.js in headless Chromium, per figure and per drawing option (issue 24: a view switch's
time is mostly the page drawing its charts, ``benchmarks/README.md``).

The figures are built by the dashboard's chart builders from a ``Telemetry`` filled with
synthetic records shaped like the book's run at ``--steps`` steps (noisy gate percentiles,
gradient spikes, a flow row every 10th step) and a probe of 60 characters x 256 hidden units,
narrowed for the wire (``wire_arrays``) and serialised as Streamlit serialises them
(``plotly.io.to_json``). Each is drawn in a 700 x 380 px div (one of two side-by-side charts
at 1400 px), ``--repeats`` times in rounds over every figure and option (so a change of the
machine's load hits them alike), and timed from the JSON's parse to the next frame after
plotly's promise resolves:

- **new**: ``Plotly.newPlot`` into an empty div (a view switch draws each chart afresh);
- **react**: ``Plotly.react`` with the same figure parsed again (a live redraw whose data
  did not change but whose message did: what a redraw costs when it is not reused).

Options, each a transform of the built figure: ``as built``, ``scattergl`` (line traces as
WebGL ``scattergl``), ``no hover`` (``hovermode=False``, no hover labels computed), ``13 px
characters`` (a heatmap's character labels at the common tick size, as before they were
made smaller: ``cells.CHAR_TICK_PX``). ``--max-points`` and ``--units`` rebuild the figures
with fewer points a line trace or fewer heatmap units. Prints bytes, median ms per figure
and option, and the load average.

Usage: ``python benchmarks/chart_draw.py [--steps 4000] [--repeats 7] [--options "as built"]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
import plotly.io as pio
from playwright.sync_api import sync_playwright

from dashboard.charts import cells, thinning
from dashboard.charts.base import TICK_PX
from dashboard.charts.cells import gate_bands_figure, gate_heatmap_figure
from dashboard.charts.flow import grad_flow_heatmap_figure, normalise_at_end
from dashboard.charts.thinning import wire_arrays
from dashboard.charts.training import grad_norm_figure, perplexity_figure
from gru_core.run.records import EpochRecord, GateStats, StepRecord
from gru_core.run.telemetry import Telemetry

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
CHROMIUM = "/usr/bin/chromium"
T, FLOW_EVERY, STEPS_PER_EPOCH, PROBE_CHARS, HIDDEN = 35, 10, 8, 60, 256
PARAMS = ("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h", "W_hq", "b_q")

_DRAW_JS = """
async ([spec, mode]) => {
  const div = document.getElementById('chart');
  const start = performance.now();
  const fig = JSON.parse(spec);
  const config = {displaylogo: false};
  if (mode === 'new') {
    Plotly.purge(div); await Plotly.newPlot(div, fig.data, fig.layout, config);
  }
  else await Plotly.react(div, fig.data, fig.layout, config);
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  return performance.now() - start;
}
"""


def record(step: int, rng: np.random.Generator) -> StepRecord:
    """A synthetic step of the book's run: noisy gate percentiles, a gradient spike now and
    then, a flow row every FLOW_EVERY steps."""
    loss = 1.2 + 2.0 * math.exp(-step / 800) + 0.05 * rng.standard_normal()
    grad_norm = 0.5 + abs(rng.standard_normal()) + (40.0 if step % 997 == 0 else 0.0)
    gates = {}
    for g, shift in (("Z", 0.0), ("R", 0.05), ("H_tilde", -0.5)):
        q = np.sort(rng.uniform(0.05, 0.95, 5)) + shift
        gates[g] = GateStats(float(q.mean()), tuple(float(v) for v in q), float(rng.uniform()))
    flow = tuple(float(v) for v in np.exp(-0.3 * np.arange(T))[::-1]) if step % 10 == 1 else None
    return StepRecord(
        step=step,
        epoch=1 + (step - 1) // STEPS_PER_EPOCH,
        loss=loss,
        perplexity=math.exp(loss),
        grad_norm=grad_norm,
        grad_norm_clipped=min(grad_norm, 1.0),
        clipped=grad_norm > 1.0,
        clip_threshold=1.0,
        lr=1.0,
        param_grad_norms={p: grad_norm / 4 for p in PARAMS},
        update_ratio=1e-3,
        gates=gates,
        grad_flow=flow,
        tokens=32 * T,
        grad_flow_last=flow,
        grad_flow_late=flow,
    )


def figures(steps: int) -> dict[str, go.Figure]:
    """The Overview's, Gates' and Through time's heavy figures at ``steps`` steps."""
    rng = np.random.default_rng(0)
    tel = Telemetry()
    for step in range(1, steps + 1):
        tel.add_step(record(step, rng))
        if step % STEPS_PER_EPOCH == 0:
            n = step // STEPS_PER_EPOCH
            tel.add_epoch(EpochRecord(n, step, 3.0, 3.5, 5e4, "time traveller", "the", n * 0.1))
    snap = tel.snapshot()
    text = ("the time traveller for so it will be convenient to speak of hi" * 2)[:PROBE_CHARS]
    z = rng.uniform(0, 1, (PROBE_CHARS, HIDDEN))
    return {
        "perplexity": perplexity_figure(snap.steps, snap.epochs, snap.events),
        "grad norm": grad_norm_figure(snap.steps, snap.events),
        "bands Z": gate_bands_figure(snap.steps, "Z"),
        "heatmap Z": gate_heatmap_figure(z, text, "Z"),
        "flow heatmap": grad_flow_heatmap_figure(
            snap.flow_steps, normalise_at_end(snap.flow_last), "flow", "log10"
        ),
    }


def as_webgl(fig: dict) -> dict:
    for trace in fig["data"]:
        if trace.get("type", "scatter") == "scatter":
            trace["type"] = "scattergl"
    return fig


def no_hover(fig: dict) -> dict:
    fig["layout"]["hovermode"] = False
    return fig


def common_ticks(fig: dict) -> dict:
    """Character labels at the common 13 px (how the gate heatmap was drawn before)."""
    axis = fig["layout"].get("xaxis", {})
    if "ticktext" in axis:
        axis["tickfont"] = dict(size=TICK_PX)
    return fig


def no_markers(fig: dict) -> dict:
    """Lines without markers (the epochs' lines are drawn with a marker per epoch)."""
    for trace in fig["data"]:
        if trace.get("mode") == "lines+markers":
            trace["mode"] = "lines"
    return fig


OPTIONS: dict[str, Callable[[dict], dict]] = {
    "as built": lambda fig: fig,
    "scattergl": as_webgl,
    "no hover": no_hover,
    "13 px characters": common_ticks,
    "no markers": no_markers,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--max-points", type=int, help="points a line trace keeps (thinning)")
    parser.add_argument("--units", type=int, help="hidden units a gate heatmap shows")
    parser.add_argument("--options", default=",".join(OPTIONS), help="comma-separated")
    parser.add_argument("--figures", help="comma-separated names (default: all)")
    args = parser.parse_args()
    if args.max_points:  # the builders read these module constants when they build
        thinning.downsample.__defaults__ = (args.max_points,)
    if args.units:
        cells.HEATMAP_MAX_UNITS = args.units
    wanted = args.figures.split(",") if args.figures else None
    built = {
        name: wire_arrays(fig)
        for name, fig in figures(args.steps).items()
        if wanted is None or name in wanted
    }
    specs: dict[tuple[str, str], str] = {}
    for name, fig in built.items():
        base = json.loads(pio.to_json(fig, validate=False))
        for option in args.options.split(","):
            transform = OPTIONS[option]
            specs[name, option] = json.dumps(transform(copy.deepcopy(base)))
    times: dict[tuple[str, str, str], list[float]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_content('<div id="chart" style="width:700px;height:380px"></div>')
        page.add_script_tag(path=str(PLOTLY_JS))
        for _ in range(args.repeats):
            for key, spec in specs.items():
                for mode in ("new", "react"):
                    ms = page.evaluate(_DRAW_JS, [spec, mode])
                    times.setdefault((*key, mode), []).append(ms)
        browser.close()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"steps {args.steps:,} | {args.repeats} rounds | load average {load}")
    print("| figure | option | KB | new (ms) | react, same data (ms) |")
    print("|---|---|---:|---:|---:|")
    for (name, option), spec in specs.items():
        new = statistics.median(times[name, option, "new"])
        react = statistics.median(times[name, option, "react"])
        print(f"| {name} | {option} | {len(spec) / 1024:.0f} | {new:.0f} | {react:.0f} |")


if __name__ == "__main__":
    main()
