"""``python -m gru_core``: train headless and print what d2l's ``train_ch8`` prints.

Every 10 epochs: the epoch, training perplexity and the prediction after the corpus's prefix
('time traveller'). At the end, d2l's line ``perplexity 1.1, 23456.7 tokens/sec on cpu`` and
the predictions for 'time traveller' and 'traveller' (``train.NUM_PREDS`` characters each).
``--csv OUT`` writes one row per step (the telemetry's step table). Exit status: 0 done,
2 bad arguments, 3 diverged, 4 out of memory / error.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import torch

from gru_core.config import CHOICES, INT_FIELDS, OPTIONAL_FIELDS, TrainConfig, field_help
from gru_core.run.records import EpochRecord, Outcome, StepRecord
from gru_core.run.telemetry import Telemetry
from gru_core.run.trainer import NUM_PREDS, Trainer
from gru_core.sources import load_corpus

EXIT_DONE, EXIT_BAD_ARGS, EXIT_DIVERGED, EXIT_FAILED = 0, 2, 3, 4
PRINT_EVERY = 10  # epochs between progress lines (and evaluations), as d2l's train_ch8


def _optional(kind: type) -> object:
    def parse(text: str) -> object:
        return None if text.lower() in ("none", "off") else kind(text)

    parse.__name__ = kind.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gru_core",
        description="Train d2l's from-scratch GRU (or an RNN/LSTM) on The Time Machine.",
    )
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = int if f.name in INT_FIELDS else float
        help_text = f"{field_help(f.name)} (default: {f.default})"
        if f.name in CHOICES:
            parser.add_argument(flag, choices=CHOICES[f.name], default=f.default, help=help_text)
        elif f.name in OPTIONAL_FIELDS:
            parser.add_argument(flag, type=_optional(kind), default=f.default, help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=f.default, help=help_text)
    parser.add_argument(
        "--corpus", metavar="PATH", help="text file to train on (else cache/download)"
    )
    parser.add_argument("--csv", metavar="OUT", help="write the per-step metrics to this CSV file")
    parser.add_argument(
        "--offline", action="store_true", help="never download; use the cache or the fallback"
    )
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse exits with status 2 on malformed flags
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    try:
        config = TrainConfig(**values)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        corpus = load_corpus(args.corpus, allow_download=not args.offline)
        # It prints no gradient flow: the one-position probes would cost ~4% for nothing.
        trainer = Trainer(config, corpus, eval_every=PRINT_EVERY, probes=False)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGS
    print(f"corpus: {corpus.label} - {corpus.reason}", file=out)
    telemetry = Telemetry() if args.csv else None
    outcome = _train(trainer, telemetry, out)
    if telemetry is not None:
        telemetry.snapshot().steps.to_csv(args.csv, index=False)
    if outcome.status == "diverged":
        print(f"diverged: {outcome.message}", file=out)
        return EXIT_DIVERGED
    if outcome.status != "done":
        print(f"{outcome.status}: {outcome.message}", file=out)
        return EXIT_FAILED
    return EXIT_DONE


def _train(trainer: Trainer, telemetry: Telemetry | None, out: TextIO) -> Outcome:
    last_epoch: EpochRecord | None = None
    started = time.perf_counter()
    for record in trainer.run():
        if isinstance(record, StepRecord):
            if telemetry is not None:
                telemetry.add_step(record)
        elif isinstance(record, EpochRecord):
            last_epoch = record
            if telemetry is not None:
                telemetry.add_epoch(record)
            if record.epoch % PRINT_EVERY == 0:
                print(
                    f"epoch {record.epoch}, perplexity {record.train_perplexity:.2f}: "
                    f"{record.greedy_text}",
                    file=out,
                    flush=True,
                )
        else:
            if record.status == "done" and last_epoch is not None:
                ppl, tps = last_epoch.train_perplexity, last_epoch.tokens_per_sec
                print(f"perplexity {ppl:.1f}, {tps:.1f} tokens/sec on {trainer.device}", file=out)
                prefix = trainer.corpus.prefix  # d2l's 'time traveller' for The Time Machine
                print(trainer.predict(prefix, NUM_PREDS), file=out)
                print(trainer.predict(prefix.split()[-1], NUM_PREDS), file=out)  # 'traveller'
                print(f"wall time {time.perf_counter() - started:.1f} s", file=out)
            return record
    raise AssertionError("Trainer.run ended without an Outcome")
