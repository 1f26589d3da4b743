"""Telemetry benchmark: what a redraw costs as the run grows (issue 24: a view switch at step
4,000 should cost what it costs at step 100).

One ``Telemetry`` is filled with synthetic records shaped like the book's run (a GRU: 11
parameters, gates Z, R and H_tilde; a gradient-flow row of T = 35 every 10th step; an epoch
every 8 steps), and at 100, 1,000, 4,000 and 20,000 steps it measures, side by side:

- **add_step**: the median time of the last ``min(mark, 1000)`` ``add_step`` calls before
  the mark, with the ``add_epoch`` call where an epoch ends (the training thread's cost per
  step);
- **snapshot**: ``snapshot()`` after a write (so never the cached one), the median of
  ``--repeats`` rounds, each round going over every size (and every revision) in turn, so a
  change in the machine's load hits them alike;
- **figures**: the Overview's three figures built from that snapshot through the dashboard's
  own chart builders (perplexity, gradient norm, the Z gate's bands) and narrowed for the
  wire (``wire_arrays``), the median of ``--repeats``; **json**: their ``to_json`` (about
  what Streamlit serialises for the page).

Then the ratio of the 4,000-step to the 100-step cost of each (target: within 1.5x).
``--against REV`` runs the same measurements, in the same process, on the telemetry module
as it was at git revision REV (e.g. ``main``), for a before/after in one run. Timings move
with the machine's load: the load average is printed with them.

Usage: ``python benchmarks/telemetry.py [--repeats 15] [--against main]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from dashboard.charts.cells import gate_bands_figure
from dashboard.charts.thinning import wire_arrays
from dashboard.charts.training import grad_norm_figure, perplexity_figure
from gru_core.run import telemetry as current
from gru_core.run.records import EpochRecord, GateStats, StepRecord

ROOT = Path(__file__).resolve().parents[1]  # the checkout, for `git show REV:...`

MARKS = (100, 1_000, 4_000, 20_000)
PARAMS = ("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h", "W_hq", "b_q")
T = 35  # time steps of a flow row
FLOW_EVERY, STEPS_PER_EPOCH = 10, 8


def record(step: int) -> StepRecord:
    """A synthetic step: a falling loss with noise, a spike now and then, clipping at 1."""
    loss = 1.2 + 2.0 * math.exp(-step / 800) + 0.05 * math.sin(step * 0.7)
    grad_norm = 0.5 + (step % 13) / 10 + (40.0 if step % 997 == 0 else 0.0)
    gates = {
        g: GateStats(0.5, (0.05 + i, 0.25, 0.5, 0.75, 0.95 - i), 0.1 + i)
        for i, g in ((0.0, "Z"), (0.01, "R"), (0.02, "H_tilde"))
    }
    flow = tuple(1.0 / (t + 1) for t in range(T)) if step % FLOW_EVERY == 0 else None
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


def epoch(n: int) -> EpochRecord:
    return EpochRecord(n, n * STEPS_PER_EPOCH, 3.0, 3.5, 5e4, "time traveller", "the", n * 0.1)


def overview(snap: object) -> list:
    return [
        wire_arrays(perplexity_figure(snap.steps, snap.epochs, snap.events)),
        wire_arrays(grad_norm_figure(snap.steps, snap.events)),
        wire_arrays(gate_bands_figure(snap.steps, "Z")),
    ]


def filled(module: ModuleType, mark: int) -> tuple[object, float]:
    """A store of ``module`` filled to ``mark`` steps, and the median time of its last
    ``min(mark, 1000)`` steps' writes (``add_step``, and ``add_epoch`` where an epoch ends),
    in µs: the median, so a moment of load from elsewhere does not move it."""
    tel = module.Telemetry()
    records = [record(s) for s in range(1, mark + 1)]  # made before, untimed
    first = max(0, mark - 1000)  # the steps after this one are timed
    times = []
    for step, rec in enumerate(records, 1):
        start = time.perf_counter()
        tel.add_step(rec)
        if step % STEPS_PER_EPOCH == 0:
            tel.add_epoch(epoch(step // STEPS_PER_EPOCH))
        if step > first:
            times.append(time.perf_counter() - start)
    return tel, statistics.median(times) * 1e6


def measure(modules: dict[str, ModuleType], repeats: int) -> dict[str, dict[int, dict]]:
    """Per module and mark: rows kept, add_step's cost, and the medians of ``repeats`` rounds
    of snapshot, figures and JSON, the rounds going round every store in turn (so a change
    in the machine's load hits every size alike)."""
    stores, out = {}, {}
    for name, module in modules.items():
        out[name] = {}
        for mark in MARKS:
            tel, add_us = filled(module, mark)
            stores[name, mark] = tel
            out[name][mark] = dict(add_us=add_us, snapshot_ms=[], figures_ms=[], json_ms=[])
    probe = {"Z": [[0.5] * 8] * 4}
    for _ in range(repeats):
        for (name, mark), tel in stores.items():
            times = out[name][mark]
            tel.set_probe(0, "time", probe)  # a write: the next snapshot is built afresh
            start = time.perf_counter()
            snap = tel.snapshot()
            built = time.perf_counter()
            figs = overview(snap)
            drawn = time.perf_counter()
            for fig in figs:
                fig.to_json()
            end = time.perf_counter()
            times["snapshot_ms"].append((built - start) * 1e3)
            times["figures_ms"].append((drawn - built) * 1e3)
            times["json_ms"].append((end - drawn) * 1e3)
            times.update(rows=len(snap.steps), epochs=len(snap.epochs), flows=len(snap.flow_steps))
    for marks in out.values():
        for times in marks.values():
            for key in ("snapshot_ms", "figures_ms", "json_ms"):
                times[key] = statistics.median(times[key])
    return out


def module_at(rev: str) -> ModuleType:
    """gru_core/run/telemetry.py as it was at ``rev``, imported under another name."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:gru_core/run/telemetry.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "telemetry_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("telemetry_at_rev", path)
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(name: str, results: dict[int, dict[str, float]]) -> None:
    print(f"\n{name}")
    print(
        f"{'steps':>7} {'rows':>5} {'epochs':>6} {'flows':>5} {'add_step µs':>11} "
        f"{'snapshot ms':>11} {'figures ms':>10} {'json ms':>8}"
    )
    for mark, r in results.items():
        print(
            f"{mark:>7,} {r['rows']:>5.0f} {r['epochs']:>6.0f} {r['flows']:>5.0f} "
            f"{r['add_us']:>11.1f} {r['snapshot_ms']:>11.2f} {r['figures_ms']:>10.1f} "
            f"{r['json_ms']:>8.1f}"
        )
    a, b = results[MARKS[0]], results[4_000]
    ratios = "  ".join(
        f"{key.split('_')[0]} {b[key] / a[key]:.2f}x"
        for key in ("add_us", "snapshot_ms", "figures_ms", "json_ms")
    )
    redraw = (b["snapshot_ms"] + b["figures_ms"]) / (a["snapshot_ms"] + a["figures_ms"])
    print(f"4,000 / 100 steps: {ratios}  snapshot+figures {redraw:.2f}x (target <= 1.5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--against", default=None, help="git revision to compare with")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs at the start")
    modules = {"this checkout": current}
    if args.against:
        modules[f"telemetry at {args.against}"] = module_at(args.against)
    for name, results in measure(modules, args.repeats).items():
        report(name, results)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
