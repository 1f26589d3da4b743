"""The memory view's cost: one refresh, and what refreshing does to a run training beside it.

(1) Refresh latency: ``gru_core.memory.analyse`` (hidden activations, top-5 next characters
    and the connectivity of one position) on a 300-character passage of The Time Machine with
    a hidden-256 d2l GRU, target = the last character (the longest backward pass), median of
    ``--repeats``. Copying a weights snapshot into a private model (``model_from_weights``) is
    timed separately. Also printed: the fastest refresh and the median CPU time of the refreshing
    thread, which other programs on a shared machine disturb less than wall time. Target:
    median wall time <= 200 ms.
(2) Interference: a d2l-config GRU (hidden 256, batch 32, 35 steps) trains with
    ``gru_core.run.trainer.Trainer`` in a thread for ``--seconds``, alone and then while the main
    thread copies a snapshot and refreshes once a second, alternated ``--rounds`` times so
    that load from other programs hits both. Reports steps/s and the slowdown.
    Target: slowdown <= 10%.

Usage: ``python benchmarks/memory_view.py [--repeats 15] [--seconds 4] [--rounds 3]
[--threads N]``. Runs in well under a minute with the defaults.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path

import torch

from gru_core.config import TrainConfig
from gru_core.memory import analyse, model_from_weights
from gru_core.run.records import StepRecord
from gru_core.run.trainer import Trainer
from gru_core.sources import load_corpus

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "timemachine.txt"
TARGET_MS, TARGET_SLOWDOWN = 200.0, 0.10


def snapshot(trainer: Trainer) -> dict[str, torch.Tensor]:
    """What the job publishes: name -> CPU float32 copy of each parameter."""
    return {
        n: p.detach().to("cpu", torch.float32, copy=True)
        for n, p in trainer.model.named_parameters()
    }


def train_for(
    trainer: Trainer, seconds: float, refresh: bool, passage: str
) -> tuple[float, list[float]]:
    """Train in a thread for ``seconds``; with ``refresh``, the calling thread refreshes the
    view once a second meanwhile. Returns (steps per second, refresh times in seconds)."""
    stop, steps = threading.Event(), [0]
    records = trainer.run()

    def work() -> None:
        for record in records:
            if isinstance(record, StepRecord):
                steps[0] += 1
            if stop.is_set():
                return

    thread = threading.Thread(target=work)
    cfg, vocab = trainer.config, trainer.vocab
    start = time.perf_counter()
    thread.start()
    times: list[float] = []
    while (now := time.perf_counter()) - start < seconds:
        if refresh:
            t0 = time.perf_counter()
            model = model_from_weights(cfg, len(vocab), snapshot(trainer))
            analyse(model, vocab, passage)
            times.append(time.perf_counter() - t0)
        time.sleep(max(0.0, 1.0 - (time.perf_counter() - now)))
    stop.set()
    first = steps[0]
    elapsed = time.perf_counter() - start
    thread.join()
    return first / elapsed, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="refreshes timed (median)")
    parser.add_argument("--seconds", type=float, default=4.0, help="training time per phase")
    parser.add_argument("--rounds", type=int, default=3, help="alone/with-refresh pairs")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = load_corpus(CORPUS if CORPUS.exists() else None, allow_download=False)
    cfg = TrainConfig(device="cpu", num_epochs=100_000)  # d2l's GRU: hidden 256, B 32, T 35
    trainer = Trainer(cfg, corpus)
    passage = corpus.vocab.decode(corpus.tokens[2000:2300])
    print(f"corpus: {corpus.label}; torch threads: {torch.get_num_threads()}")

    weights = snapshot(trainer)
    copy_s, refresh_s, cpu_s = [], [], []
    for _ in range(args.repeats + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        model = model_from_weights(cfg, len(corpus.vocab), weights)
        t1, c1 = time.perf_counter(), time.thread_time()
        result = analyse(model, corpus.vocab, passage)
        copy_s.append(t1 - t0)
        refresh_s.append(time.perf_counter() - t1)
        cpu_s.append(time.thread_time() - c1)
    ms = statistics.median(refresh_s[1:]) * 1e3
    print(f"passage: {len(result.text_seen)} characters, hidden {cfg.hidden_size}, target = last")
    print(f"snapshot copy (model_from_weights): {statistics.median(copy_s[1:]) * 1e3:.1f} ms")
    print(
        f"refresh: min {min(refresh_s[1:]) * 1e3:.0f} ms wall, median "
        f"{statistics.median(cpu_s[1:]) * 1e3:.0f} ms CPU of this thread"
    )
    verdict = "PASS" if ms <= TARGET_MS else "FAIL"
    print(f"memory view refresh: {ms:.0f} ms (target <= {TARGET_MS:.0f} ms) {verdict}")

    train_for(trainer, 1.0, False, passage)  # warm-up
    alone, busy, during = [], [], []
    for _ in range(args.rounds):
        alone.append(train_for(trainer, args.seconds, False, passage)[0])
        rate, times = train_for(trainer, args.seconds, True, passage)
        busy.append(rate)
        during += times
    a, b = statistics.median(alone), statistics.median(busy)
    slowdown = 1.0 - b / a
    print(f"training alone: {a:.2f} steps/s; with a refresh every second: {b:.2f} steps/s")
    busy_ms = statistics.median(during) * 1e3
    print(f"refresh (snapshot + analyse) while training: median {busy_ms:.0f} ms")
    verdict = "PASS" if slowdown <= TARGET_SLOWDOWN else "FAIL"
    print(
        f"training slowdown with a refresh every second: {slowdown:.1%} "
        f"(ratio {b / a:.3f}; target <= {TARGET_SLOWDOWN:.0%}) {verdict}"
    )


if __name__ == "__main__":
    main()
