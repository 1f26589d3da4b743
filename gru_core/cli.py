"""``python -m gru_core``: train headless and print what d2l's ``train_ch8`` prints, and more.

Every 10 epochs (every epoch for runs under 10 epochs, and always the last): the epoch, the
training and validation perplexities and the prediction after the corpus's prefix ('time
traveller'). At the end, d2l's line ``perplexity 1.1, 23456.7 tokens/sec on cpu``, the
predictions for 'time traveller' and 'traveller' (``NUM_PREDS`` characters each), and the
run's verdict (``run.verdict``: learned, did not learn, blew up, diverged, ...).

``--csv OUT`` streams one row per step, every step; ``--epochs-csv OUT`` one row per epoch
(``exports``). Both paths are opened before training: one that cannot be written is exit 2.
Ctrl-C stops at the next step: the steps trained so far are written, the summary and verdict
printed, exit 130, no traceback (``interrupt``).

Exit status follows the verdict (``EXIT_CODES``, listed in ``--help`` and the README).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TextIO

import torch

from gru_core.config import CHOICES, INT_FIELDS, OPTIONAL_FIELDS, TrainConfig, field_help
from gru_core.exports import EpochCsv, StepCsv, open_output
from gru_core.i18n import LANGUAGES, N_, _, from_environment, language_scope, normalise, worded
from gru_core.interrupt import sigint_requests
from gru_core.run.records import EpochRecord, Outcome, StepRecord
from gru_core.run.trainer import NUM_PREDS, Record, Trainer
from gru_core.run.verdict import (
    BLOW_UP_STEPS,
    LAST_STEPS,
    Evidence,
    Verdict,
    judge,
    kind_words,
)
from gru_core.sources import load_corpus

EXIT_DONE, EXIT_BAD_ARGS, EXIT_DIVERGED, EXIT_FAILED = 0, 2, 3, 4
EXIT_NOT_LEARNED, EXIT_MEMORISED, EXIT_INTERRUPTED = 5, 6, 130  # 130: SIGINT, as a shell says
EXIT_CODES = {  # the verdict -> the exit status (run.verdict's words)
    "learned": EXIT_DONE,
    "blew up": EXIT_DIVERGED,
    "diverged": EXIT_DIVERGED,
    "out of memory": EXIT_FAILED,
    "error": EXIT_FAILED,
    "did not learn": EXIT_NOT_LEARNED,
    "memorised": EXIT_MEMORISED,
    "stopped": EXIT_INTERRUPTED,
}
EXIT_HELP = N_(
    "Exit status (follows the verdict): 0 learned, 2 bad arguments, 3 diverged or blew up, "
    "4 out of memory or another error, 5 did not learn, 6 memorised (it learned its training "
    "text, but validation perplexity ended at or above |V| or over twice its best), "
    "130 interrupted (Ctrl-C)."
)
PRINT_EVERY = 10  # epochs between progress lines (and evaluations), as d2l's train_ch8
VERDICT_STEPS = max(LAST_STEPS, BLOW_UP_STEPS)  # the last steps a verdict reads


def _optional(kind: type) -> object:
    def parse(text: str) -> object:
        return None if text.lower() in ("none", "off") else kind(text)

    parse.__name__ = kind.__name__
    return parse


def language_flag(argv: Sequence[str] | None) -> str:
    """The language of ``--lang`` (else the environment's, ``i18n.from_environment``), read
    before the parser is built so that its help speaks it."""
    args = list(sys.argv[1:] if argv is None else argv)
    chosen = None
    for i, arg in enumerate(args):
        if arg == "--lang" and i + 1 < len(args):
            chosen = args[i + 1]
        elif arg.startswith("--lang="):
            chosen = arg.partition("=")[2]
    return normalise(chosen) or from_environment()


def language_tag(text: str) -> str:
    """``--lang``'s value: a tag ``i18n.normalise`` reads (zh, zh-CN, zh_CN, en, ...)."""
    lang = normalise(text)
    if lang is None:
        raise argparse.ArgumentTypeError(
            _("{tag!r} is not a language here; use one of {languages}").format(
                tag=text, languages=", ".join(LANGUAGES)
            )
        )
    return lang


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gru_core",
        description=_("Train d2l's from-scratch GRU (or an RNN/LSTM) on The Time Machine."),
    )
    parser.add_argument(
        "--lang",
        metavar="LANG",
        type=language_tag,
        help=_("language of help and messages: {languages} (default: from GRU_LAB_LANG or LANG)")
        .format(languages=", ".join(LANGUAGES)),
    )  # fmt: skip
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = int if f.name in INT_FIELDS else float
        help_text = _("{range} (default: {default})").format(
            range=field_help(f.name), default=f.default
        )
        if f.name in CHOICES:
            parser.add_argument(flag, choices=CHOICES[f.name], default=f.default, help=help_text)
        elif f.name in OPTIONAL_FIELDS:
            parser.add_argument(flag, type=_optional(kind), default=f.default, help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=f.default, help=help_text)
    parser.add_argument(
        "--corpus", metavar="PATH", help=_("text file to train on (else cache/download)")
    )
    parser.add_argument(
        "--csv", metavar="OUT", help=_("stream one row per training step to this CSV file")
    )
    parser.add_argument(
        "--offline", action="store_true", help=_("never download; use the cache or the fallback")
    )
    return parser


def training_parser() -> argparse.ArgumentParser:
    """``build_parser``'s flags (shared with the sweep), the epoch table and the exit codes."""
    parser = build_parser()
    parser.epilog = _(EXIT_HELP)
    parser.add_argument(
        "--epochs-csv", metavar="OUT", help=_("stream one row per epoch to this CSV file")
    )
    return parser


def print_every(num_epochs: int) -> int:
    """Epochs between progress lines: d2l's 10, or every epoch for a run under 10 epochs."""
    return PRINT_EVERY if num_epochs >= PRINT_EVERY else 1


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Train as the flags say, in the language of ``--lang`` (only for this call)."""
    with language_scope(language_flag(argv)):
        return _main(argv, out)


def _main(argv: Sequence[str] | None, out: TextIO) -> int:
    args = training_parser().parse_args(argv)  # argparse exits with status 2 on malformed flags
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    with sigint_requests() as interrupted, ExitStack() as files:
        try:
            config = TrainConfig(**values)
            if config.num_threads:
                torch.set_num_threads(config.num_threads)
            corpus = load_corpus(args.corpus, allow_download=not args.offline)
            # It prints no gradient flow: the one-position probes would cost ~4% for nothing.
            every = print_every(config.num_epochs)
            trainer = Trainer(config, corpus, eval_every=every, probes=False)
            run = Run(trainer, every, out)
            if args.csv and args.epochs_csv == args.csv:
                raise ValueError(_("--epochs-csv must name another file than --csv"))
            if args.csv:
                run.steps_csv = StepCsv(files.enter_context(open_output("--csv", args.csv)))
            if args.epochs_csv:
                file = files.enter_context(open_output("--epochs-csv", args.epochs_csv))
                run.epochs_csv = EpochCsv(file)
        except ValueError as exc:
            print(_("error: {message}").format(message=exc), file=sys.stderr)
            return EXIT_BAD_ARGS
        print(corpus_line(corpus.label, corpus.reason), file=out, flush=True)
        outcome = run.train(interrupted)
        verdict = run.summary(outcome)
    if args.csv:
        rows = run.steps_csv.rows if run.steps_csv else 0
        print(_("{rows} step rows in {path}").format(rows=rows, path=args.csv), file=out)
    print(
        _("verdict: {kind} - {headline}").format(
            kind=kind_words(verdict.kind), headline=verdict.headline
        ),
        file=out,
        flush=True,
    )
    return EXIT_CODES.get(verdict.kind, EXIT_FAILED)


class Run:
    """One training run as the command line drives it: records in, lines and rows out."""

    def __init__(self, trainer: Trainer, every: int, out: TextIO) -> None:
        self.trainer, self.every, self.out = trainer, every, out
        self.steps_csv: StepCsv | None = None
        self.epochs_csv: EpochCsv | None = None
        self.first: StepRecord | None = None  # the verdict's start perplexity
        self.last_steps: deque[StepRecord] = deque(maxlen=VERDICT_STEPS)
        self.last_epoch: EpochRecord | None = None
        self.train_ppl: list[float] = []  # every epoch's training perplexity
        self.val_ppl: list[float | None] = []  # ... and validation's (None: not evaluated)
        self.started = time.perf_counter()

    def train(self, interrupted: threading.Event) -> Outcome:
        """Train to the end, or until ``interrupted`` is set: then the steps already launched
        (applied on the device) are read and kept, and the run ends 'stopped'."""
        try:
            for record in self.trainer.run():
                if isinstance(record, Outcome):
                    return record
                self.take(record)
                if interrupted.is_set():
                    break
            for record in self.trainer.flush():
                if isinstance(record, Outcome):
                    return record
                self.take(record)
        except Exception as exc:  # a bug or a device error: keep what was written, say why
            return Outcome("error", self.trainer.step, f"{type(exc).__name__}: {exc}")
        return Outcome("stopped", self.trainer.step, _("interrupted (Ctrl-C)"))

    def take(self, record: Record) -> None:
        if isinstance(record, StepRecord):
            self.first = self.first or record
            self.last_steps.append(record)
            if self.steps_csv is not None:
                self.steps_csv.add(record)
        elif isinstance(record, EpochRecord):
            self.last_epoch = record
            self.train_ppl.append(record.train_perplexity)
            self.val_ppl.append(record.val_perplexity)
            if self.steps_csv is not None:
                self.steps_csv.flush()
            if self.epochs_csv is not None:
                self.epochs_csv.add(record)
            last = record.epoch >= self.trainer.config.num_epochs
            if record.epoch % self.every == 0 or last:
                print(epoch_line(record), file=self.out, flush=True)

    def summary(self, outcome: Outcome) -> Verdict:
        """Print how the run ended (d2l's closing lines when it trained) and judge it."""
        trainer, out = self.trainer, self.out
        if outcome.status in ("done", "stopped"):
            if outcome.status == "stopped":
                epoch = self.last_steps[-1].epoch if self.last_steps else 0
                print(_("stopped at step {step} (epoch {epoch}): {why}").format(
                      step=outcome.step, epoch=epoch, why=worded(outcome.message)),
                  file=out)  # fmt: skip
            if self.last_epoch is not None:
                ppl, tps = self.last_epoch.train_perplexity, self.last_epoch.tokens_per_sec
                print(f"perplexity {ppl:.1f}, {tps:.1f} tokens/sec on {trainer.device}", file=out)
            prefix = trainer.corpus.prefix  # d2l's 'time traveller' for The Time Machine
            print(trainer.predict(prefix, NUM_PREDS), file=out)
            print(trainer.predict(prefix.split()[-1], NUM_PREDS), file=out)  # 'traveller'
            seconds = time.perf_counter() - self.started
            print(_("wall time {seconds:.1f} s").format(seconds=seconds), file=out)
        else:
            status = kind_words(outcome.status)  # 'error', 'out of memory': an identifier
            message = worded(outcome.message)
            print(_("{status}: {message}").format(status=status, message=message), file=out)
        return self.verdict(outcome.status)

    def verdict(self, status: str) -> Verdict:
        """``verdict.judge`` on the first step, the last ``VERDICT_STEPS`` and every epoch."""
        steps = ([self.first] if self.first else []) + [
            r for r in self.last_steps if self.first is None or r.step != self.first.step
        ]
        ppl, norms = [r.perplexity for r in steps], [r.grad_norm for r in steps]
        evidence = Evidence.of(ppl, norms, self.train_ppl, self.val_ppl)
        return judge(status, evidence, len(self.trainer.vocab))


def corpus_line(label: str, reason: str) -> str:
    """``corpus: The Time Machine (cached) - read from ...`` (both command lines print it)."""
    return _("corpus: {label} - {reason}").format(label=label, reason=reason)


def epoch_line(record: EpochRecord) -> str:
    """``epoch 10, perplexity 9.81, validation perplexity 10.42: time traveller ...``."""
    line = f"epoch {record.epoch}, perplexity {record.train_perplexity:.2f}"
    if record.val_perplexity is not None:
        line += f", validation perplexity {record.val_perplexity:.2f}"
    return f"{line}: {record.greedy_text}" if record.greedy_text else line
