"""Trainability map benchmark: an 8 x 8 map (init std x clip theta) as one batched sweep
against the same 64 runs one after another, and the time to redraw the map.

Settings: hidden 32, T 35, batch 32, lr 1, 20 epochs on the first 10,000 tokens of The Time
Machine (``../shared/data/timemachine.txt`` beside the repository, else the offline fallback),
validation every epoch, seed 0, float32, on the CPU (``--device`` to change).

- **batched**: ``SweepJob(...).run_sync()`` on the local backend: the 64 cells of one seed
  are one StepCore of K = 64 (or fewer, larger chunks if the memory budget says so),
  everything from building the cores to the last validation timed.
- **sequential**: the same cells as the lab runs them, one ``Trainer.run`` each (with the
  validation every epoch and the two generated texts the lab shows). Timing all 64 takes
  minutes, so ``--sample`` of them (default 8: the diagonal, so every init std and every
  theta is in the sample) are timed and the total is extrapolated, ``mean x 64``; the output
  says so. Half the sample runs before the batched sweep and half after, so a burst of load
  from other programs on a shared machine hits both; process CPU time is printed beside
  wall time (it moves less with load).
- **same work, K = 1**: the sampled cells through the sweep's own loop one at a time
  (``run_chunk`` with K = 1: no texts, no gate statistics), to show what batching alone buys.
- **redraw**: ``map_charts.map_figure`` on the full 8 x 8 result (hover with every number
  and a text sparkline per cell) and its ``to_json`` (what Streamlit sends), the median of
  ``--redraws`` builds.

Targets: batched under 180 s, batched >= 4x faster than sequential (Trainer runs), redraw
under 300 ms. Usage: ``python benchmarks/sweep_map.py [--epochs 20] [--sample 8]
[--threads N] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from dashboard.charts.map import map_figure
from gru_core.config import TrainConfig
from gru_core.data import split_train_val
from gru_core.run.trainer import Trainer
from gru_core.sources import load_corpus
from gru_core.sweep.chunk import run_chunk
from gru_core.sweep.job import SweepJob
from gru_core.sweep.spec import SweepSpec, default_values

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "timemachine.txt"
TARGET_BATCHED_S, TARGET_RATIO, TARGET_REDRAW_MS = 180.0, 4.0, 300.0


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds over all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--side", type=int, default=8, help="values per axis (default 8)")
    parser.add_argument("--sample", type=int, default=8, help="sequential runs timed")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--redraws", type=int, default=20)
    default = str(DEFAULT_CORPUS) if DEFAULT_CORPUS.exists() else None
    parser.add_argument("--corpus", default=default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = load_corpus(args.corpus, allow_download=False)
    base = TrainConfig(
        hidden_size=32,
        num_steps=35,
        batch_size=32,
        lr=1.0,
        num_epochs=args.epochs,
        device=args.device,
    )
    n = args.side
    spec = SweepSpec(
        "init_std",
        default_values("init_std", n),
        "clip_threshold",
        default_values("clip_threshold", n),
        base,
    )
    cells = spec.cells()
    V = len(corpus.vocab)
    print(
        f"corpus: {corpus.label}; {n}x{n} map, hidden 32, T 35, batch 32, {args.epochs} "
        f"epochs, {args.threads} torch thread(s), {args.device}"
    )
    print(f"init std: {list(spec.x_values)}\nclip θ: {list(spec.y_values)}")

    job = SweepJob(spec, corpus, device=args.device)
    print(f"plan: {job.plan.describe()}")
    sample = [cells[(i % n) * n + (i % n)] for i in range(args.sample)]  # the diagonal
    train, val = split_train_val(corpus.tokens, base.max_tokens, base.val_tokens)
    lab, k1 = [], []  # (wall, CPU) seconds of each sampled run
    half = len(sample) // 2
    for cell in sample[:half]:  # half before the batched run and half after: load hits both
        lab.append(timed(lambda c=cell: list(Trainer(c.config, corpus, args.device).run())))
        k1.append(timed(lambda c=cell: run_chunk([c], train, val, V, args.device, 10.0, 1)))
    wall, cpu = timed(job.run_sync)
    snap = job.snapshot()
    for cell in sample[half:]:
        lab.append(timed(lambda c=cell: list(Trainer(c.config, corpus, args.device).run())))
        k1.append(timed(lambda c=cell: run_chunk([c], train, val, V, args.device, 10.0, 1)))
    counts: dict[str, int] = {}
    for r in snap.results:
        counts[str(r.verdict)] = counts.get(str(r.verdict), 0) + 1
    print(f"batched: {wall:.1f} s wall, {cpu:.1f} s CPU, state {snap.state}, verdicts {counts}")
    total = len(cells)
    seq = [statistics.fmean(t[i] for t in lab) * total for i in (0, 1)]
    same = [statistics.fmean(t[i] for t in k1) * total for i in (0, 1)]
    print(
        f"sequential (Trainer.run, as the lab runs each cell): {len(sample)} of {total} runs "
        f"timed, extrapolated x{total}: {seq[0]:.1f} s wall, {seq[1]:.1f} s CPU"
    )
    print(
        f"sequential (same work as the sweep, K = 1): {len(sample)} of {total} runs timed, "
        f"extrapolated x{total}: {same[0]:.1f} s wall, {same[1]:.1f} s CPU"
    )
    batched, sequential, same_work = wall, seq[0], same[0]

    figs_ms = []
    for _ in range(args.redraws):
        t0 = time.perf_counter()
        fig = map_figure(snap.results, spec, "gru")
        fig.to_json()
        figs_ms.append((time.perf_counter() - t0) * 1000)
    redraw = statistics.median(figs_ms)

    ratio = sequential / batched
    print()
    print(
        f"{n}x{n} map: {batched:.1f} s batched (target < {TARGET_BATCHED_S:.0f} s) "
        f"{verdict(batched < TARGET_BATCHED_S)}"
    )
    print(
        f"batched / sequential = {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x) "
        f"{verdict(ratio >= TARGET_RATIO)}  [sequential extrapolated from {len(sample)} "
        f"Trainer runs]"
    )
    print(f"batched / sequential in CPU time = {seq[1] / cpu:.1f}x (less sensitive to load)")
    print(
        f"batched / sequential same work (K = 1) = {same_work / batched:.1f}x wall, "
        f"{same[1] / cpu:.1f}x CPU (what batching alone buys; no target)"
    )
    print(
        f"map redraw: {redraw:.0f} ms (target < {TARGET_REDRAW_MS:.0f} ms) "
        f"{verdict(redraw < TARGET_REDRAW_MS)}  [{n}x{n} heatmap, with to_json]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
