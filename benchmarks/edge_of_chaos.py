"""Does the edge of chaos (lambda = 0, theory at initialisation) sit where the measured
trainability map turns from vanishing to exploding?

For each model (GRU, RNN) and hidden size H (64, 128, 256):

- **theory**: ``theory.edge_of_chaos``, the init std where the largest Lyapunov exponent of
  the untrained recurrence driven by the training text crosses 0, and lambda at every init
  std of the map (3 seeds, 300 steps after 50 of burn-in); the time one lambda takes.
- **measured at the first step**: one step of the engine (``StepCore``, want_flow) on the
  map's first minibatch at each init std: the global gradient norm, and the rate at which
  the gradient of the last position's loss grows per step back through the T = 35 steps,
  ``rate = log(||d l_T/dH_1|| / ||d l_T/dH_T||) / (T - 1)`` (its theory counterpart is lambda;
  underflowed positions are skipped).
- **measured map**: ``SweepJob(SweepSpec(...)).run_sync()`` over init std x clip theta in
  {1, off}, ``--epochs`` epochs on the first 10,000 characters of The Time Machine (d2l's
  settings otherwise: T 35, batch 32, lr 1, seed 0); where it turns: the init std with the
  lowest final validation perplexity (theta = 1 and off) and the first init std above the
  best unclipped one whose unclipped run fails (any verdict but learned).

The init stds are c / sqrt(H) for c in ``--c`` (default 0.16 .. 8: c = 0.16 is d2l's 0.01 at
H = 256), so every H spans its crossing. Prints one table per model and H, then the summary
table (Markdown) and, with ``--svg PATH``, writes the figure: lambda and the validation
perplexities against c, one panel per model. Usage:
``python benchmarks/edge_of_chaos.py [--epochs 5] [--hidden 64,128,256] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gru_core.config import TrainConfig
from gru_core.data import batch_iterator, split_train_val
from gru_core.sources import load_corpus
from gru_core.step.core import StepCore
from gru_core.sweep.job import SweepJob
from gru_core.sweep.results import CellResult
from gru_core.sweep.spec import SweepSpec
from gru_core.theory import edge_of_chaos, lyapunov_exponent

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "timemachine.txt"


@dataclass
class Row:
    c: float  # init std * sqrt(H)
    std: float
    lam: float  # theory
    rate: float  # measured backward growth per step at the first step
    grad_norm: float  # global gradient norm at the first step
    clip: CellResult  # theta = 1
    off: CellResult  # clipping off


def first_step(base: TrainConfig, stds: list[float], train: torch.Tensor, V: int):
    """(rate, grad norm) of each init std at the map's first step (module docstring)."""
    configs = [base.replace(init_std=s) for s in stds]
    core = StepCore(configs, V, "cpu", gate_stats=False)
    rng = random.Random(base.seed)
    X, Y = next(batch_iterator(train, base.batch_size, base.num_steps, base.sampling, rng))
    core.load_batch(X, Y)
    rows, ix, T = core.read(core.run(True)), core.layout.index, base.num_steps
    out = []
    for k in range(len(stds)):
        flow = [rows[k, ix[f"flow_last:{t}"]] for t in range(1, T + 1)]
        t0 = next(t for t in range(T) if flow[t] > 0)  # underflowed positions skipped
        rate = math.log(flow[t0] / flow[-1]) / (T - 1 - t0) if t0 < T - 1 else math.nan
        out.append((rate, float(rows[k, ix["grad_norm"]])))
    return out


def turn(rows: list[Row]) -> dict[str, float | None]:
    """Where the measured map turns: best validation perplexity (theta 1, off), first
    unclipped blow-up, and where the first-step rate crosses 0 (interpolated in log std)."""

    def best(kind: str) -> float | None:
        done = [(getattr(r, kind).final_val_perplexity, r.std) for r in rows]
        done = [(p, s) for p, s in done if p is not None and math.isfinite(p)]
        return min(done)[1] if done else None

    best_off = best("off")
    # the first init std at or above the best whose unclipped run no longer learns
    fail = next((r.std for r in rows if best_off and r.std >= best_off and r.off.verdict
                 != "learned"), None)  # fmt: skip
    cross = None
    for a, b in zip(rows[:-1], rows[1:], strict=True):
        if a.rate < 0 <= b.rate:
            frac = -a.rate / (b.rate - a.rate)
            cross = a.std * (b.std / a.std) ** frac
            break
    return {"best_clip": best("clip"), "best_off": best_off, "fail_off": fail, "rate0": cross}


def cell(r: CellResult) -> str:
    p = r.final_val_perplexity
    mark = "" if r.verdict == "learned" else f" {r.verdict}"
    if p is None or not math.isfinite(p):
        return r.verdict or r.status
    return f"{p:.1f}{mark}" if p < 1e4 else f"{p:.2g}{mark}"


def svg(panels: dict[str, dict[int, list[Row]]], edges: dict, path: Path) -> None:
    """lambda (left axis) and final validation perplexity, theta = 1 (right axis, log),
    against c = init std * sqrt(H), one panel per model; dashed verticals: lambda = 0; an x
    at the top where the unclipped run failed."""
    W, Hh, pad = 460, 330, 70
    colours = {64: "#1b9e77", 128: "#d95f02", 256: "#7570b3"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{Hh}" '
             'font-family="sans-serif" font-size="11">']  # fmt: skip
    cs = [r.c for rows in next(iter(panels.values())).values() for r in rows]
    lo, hi = math.log(min(cs)), math.log(max(cs))

    def x(c: float, i: int) -> float:
        return i * W + pad + (math.log(c) - lo) / (hi - lo) * (W - 2 * pad)

    def y(v: float, vmin: float, vmax: float) -> float:
        v = min(max(v, vmin), vmax)
        return Hh - pad - (v - vmin) / (vmax - vmin) * (Hh - 2 * pad)

    for i, (model, by_h) in enumerate(panels.items()):
        title = f"{model.upper()}: λ (solid), val. perplexity θ=1 (dotted), × unclipped fails"
        parts.append(f'<text x="{i * W + W / 2}" y="16" text-anchor="middle">{title}</text>')
        parts.append(f'<line x1="{x(min(cs), i)}" y1="{y(0, -2, 2)}" x2="{x(max(cs), i)}" '
                     f'y2="{y(0, -2, 2)}" stroke="#999"/>')  # fmt: skip
        for c in (0.25, 0.5, 1, 2, 4, 8):
            if min(cs) <= c <= max(cs):
                parts.append(f'<text x="{x(c, i)}" y="{Hh - pad + 15}" text-anchor="middle">'
                             f"{c:g}/√H</text>")  # fmt: skip
        for v in (-2, -1, 0, 1, 2):
            parts.append(f'<text x="{i * W + pad - 6}" y="{y(v, -2, 2) + 4}" '
                         f'text-anchor="end">λ {v:+d}</text>')  # fmt: skip
        for p in (5, 10, 20, 50):
            yp = y(math.log(p), math.log(5), math.log(50))
            parts.append(f'<text x="{i * W + W - pad + 6}" y="{yp + 4}">ppl {p}</text>')
        for h, rows in by_h.items():
            col = colours.get(h, "#000")
            lam = " ".join(f"{x(r.c, i):.1f},{y(r.lam, -2, 2):.1f}" for r in rows)
            parts.append(f'<polyline points="{lam}" fill="none" stroke="{col}" stroke-width="2"/>')
            ppl = [(r.c, r.clip.final_val_perplexity) for r in rows]
            pts = " ".join(f"{x(c, i):.1f},{y(math.log(p), math.log(5), math.log(50)):.1f}"
                           for c, p in ppl if p is not None and math.isfinite(p))  # fmt: skip
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{col}" '
                         'stroke-dasharray="2,3" stroke-width="2"/>')  # fmt: skip
            for r in rows:  # x: the unclipped run failed (any verdict but learned)
                if r.off.verdict != "learned":
                    yx = pad - 8 - 9 * list(by_h).index(h)
                    parts.append(f'<text x="{x(r.c, i):.1f}" y="{yx}" fill="{col}" '
                                 'text-anchor="middle">×</text>')  # fmt: skip
            edge = edges[(model, h)]
            if edge is not None:
                xe = x(edge * math.sqrt(h), i)
                parts.append(f'<line x1="{xe:.1f}" y1="{pad}" x2="{xe:.1f}" y2="{Hh - pad}" '
                             f'stroke="{col}" stroke-dasharray="6,4"/>')  # fmt: skip
            xlab = i * W + pad + 70 * list(by_h).index(h)
            parts.append(f'<text x="{xlab}" y="{Hh - 12}" fill="{col}">— H = {h}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--hidden", default="64,128,256")
    ap.add_argument("--models", default="gru,rnn")
    ap.add_argument("--c", default="0.16,0.5,1,1.4,2,2.8,4,8", help="init std x sqrt(H)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    ap.add_argument("--svg", default=None, help="write the figure here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = load_corpus(args.corpus if Path(args.corpus).exists() else None)
    V, models = len(corpus.vocab), args.models.split(",")
    hiddens, cs = [int(h) for h in args.hidden.split(",")], [float(c) for c in args.c.split(",")]
    start, load0 = time.perf_counter(), os.getloadavg()
    print(f"corpus: {corpus.label} | torch {torch.__version__} | {torch.get_num_threads()} "
          f"threads | {os.cpu_count()} CPUs | load average {load0[0]:.2f} at start")  # fmt: skip
    print(f"map: init std = c/sqrt(H), c in {cs}; clip theta 1 and off; {args.epochs} epochs "
          "on 10,000 characters; T 35, batch 32, lr 1, seed 0")  # fmt: skip
    print("theory: 3 seeds, 300 steps after a burn-in of 50")
    panels: dict[str, dict[int, list[Row]]] = {m: {} for m in models}
    edges, summary, lam_times, train_times = {}, [], [], []
    for h in hiddens:
        stds = [c / math.sqrt(h) for c in cs]
        base = TrainConfig(hidden_size=h, num_epochs=args.epochs, device="cpu")
        train, _ = split_train_val(corpus.tokens, base.max_tokens, base.val_tokens)
        spec = SweepSpec("init_std", tuple(stds), "clip_threshold", (1.0, None), base=base,
                         models=tuple(models))  # fmt: skip
        t0 = time.perf_counter()
        results = SweepJob(spec, corpus, device="cpu").run_sync().results
        train_times.append((h, time.perf_counter() - t0, len(results)))
        for m in models:
            t0 = time.perf_counter()
            edges[(m, h)] = edge = edge_of_chaos(m, h, train, V)
            t_edge = time.perf_counter() - t0
            times = []
            lams = []
            for s in stds:
                t0 = time.perf_counter()
                lams.append(lyapunov_exponent(m, h, s, train, V))
                times.append(time.perf_counter() - t0)
            lam_times.append((m, h, statistics.median(times), t_edge))
            got = {(r.model, r.x, r.y): r for r in results}
            measured = first_step(base.replace(model=m), stds, train, V)
            rows = [
                Row(c, s, lam, rate, norm, got[(m, s, 1.0)], got[(m, s, None)])
                for c, s, lam, (rate, norm) in zip(cs, stds, lams, measured, strict=True)
            ]
            panels[m][h] = rows
            where = f"{edge:.4g} = {edge * math.sqrt(h):.2f}/sqrt(H)" if edge else "none"
            print(f"\n{m.upper()} hidden {h}: edge of chaos (lambda = 0) at init std {where}")
            print("| c | init std | lambda | first-step rate | first-step grad norm | "
                  "val ppl θ=1 | val ppl off |")  # fmt: skip
            print("|---:|---:|---:|---:|---:|---|---|")
            for r in rows:
                print(f"| {r.c:g} | {r.std:.4g} | {r.lam:+.3f} | {r.rate:+.3f} | "
                      f"{r.grad_norm:.3g} | {cell(r.clip)} | {cell(r.off)} |")  # fmt: skip
            summary.append((m, h, edge, turn(rows)))
    print("\nSummary (init std, and in units of 1/sqrt(H)):")
    print("| model | H | λ = 0 (theory) | first-step rate = 0 | best val θ=1 | best val off | "
          "first failure, off |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m, h, edge, t in summary:

        def f(v: float | None, h: int = h) -> str:
            return "none" if v is None else f"{v:.3g} ({v * math.sqrt(h):.2f})"

        print(f"| {m} | {h} | {f(edge)} | {f(t['rate0'])} | {f(t['best_clip'])} | "
              f"{f(t['best_off'])} | {f(t['fail_off'])} |")  # fmt: skip
    print("\nCost:")
    for h, secs, n in train_times:
        print(f"  map hidden {h}: {n} runs x {args.epochs} epochs in {secs:.1f} s "
              f"({secs / n:.2f} s a run)")  # fmt: skip
    for m, h, t_lam, t_edge in lam_times:
        print(f"  {m} hidden {h}: one lambda {t_lam * 1000:.0f} ms (median), "
              f"edge_of_chaos {t_edge:.2f} s")  # fmt: skip
    load1 = os.getloadavg()
    print(f"total {time.perf_counter() - start:.0f} s; load average {load1[0]:.2f} at the end "
          f"(1/5/15 min: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f})")  # fmt: skip
    if args.svg:
        svg(panels, edges, Path(args.svg))
        print(f"figure: {args.svg}")


if __name__ == "__main__":
    main()
