"""``python -m gru_core.sweep``: a trainability map, headless.

    python -m gru_core.sweep --x init_std=0.001,0.01,0.1,1 --y clip_threshold=0.1,1,10,off \\
        --hidden-size 32 --num-epochs 20 [--seeds 2] [--models gru,rnn] [--csv map.csv] \\
        [--backend local|ray] [--num-cpus 2] [--ray-address ADDR]

Every TrainConfig flag of ``python -m gru_core`` sets the base config (the two axes' values
replace their flags). Prints the plan, a progress line as runs finish, and then one table per
model: rows are the y values, columns the x values, each cell the final validation
perplexity (geometric mean over seeds), ``diverged@12`` (the step it diverged at) or
``blew up`` / ``did not learn`` where training went wrong. ``--csv OUT`` writes one row per
cell and seed (``sweep_results.CSV_COLUMNS``). The Ray backend is used with
``--backend ray`` or when ``RAY_ADDRESS`` is set.

Exit status: 0 done (whatever the cells' verdicts), 2 bad arguments (including an over-budget
sweep, a CSV path that cannot be written, Ray not installed or not reachable), 4 a run failed
with an error, 130 interrupted (Ctrl-C; the partial map is printed).

Ctrl-C never raises here: ``interrupt.sigint_requests`` turns SIGINT into an event, and the
main thread, waiting for the job in timed joins, then calls ``SweepJob.stop`` and waits for
the worker to end; on both backends unfinished cells end 'stopped' and finished ones are kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TextIO

import torch

from gru_core.cli import (
    EXIT_BAD_ARGS,
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    build_parser,
    corpus_line,
    language_flag,
)
from gru_core.config import TrainConfig
from gru_core.exports import open_output
from gru_core.i18n import _, language_scope, pgettext
from gru_core.interrupt import sigint_requests
from gru_core.sources import load_corpus
from gru_core.sweep.job import THEORY_MISSING, SweepJob, SweepSnapshot
from gru_core.sweep.results import grid_table, results_frame, summarize
from gru_core.sweep.spec import AXES, AXIS_TITLES, BACKENDS, MAX_SEEDS, SweepSpec, parse_values

POLL_S = 0.5  # seconds between progress checks


def parse_axis(text: str) -> tuple[str, tuple[float | None, ...]]:
    """'init_std=0.001,0.01' -> ('init_std', (0.001, 0.01)); 'clip-threshold' works too."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or name not in AXES:
        raise argparse.ArgumentTypeError(
            _("{text!r}: expected AXIS=V1,V2,... with AXIS one of {axes}").format(
                text=text, axes=", ".join(AXES)
            )
        )
    try:
        return name, parse_values(name, values)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """An integer >= 1 (``--num-cpus 0`` would start a Ray that never runs a task)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("{text!r} is not an integer").format(text=text)
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(_("{value} is not at least 1").format(value=value))
    return value


def sweep_parser() -> argparse.ArgumentParser:
    """``cli.build_parser``'s TrainConfig flags, --corpus and --offline, plus the sweep's."""
    parser = build_parser()
    parser.prog = "python -m gru_core.sweep"
    parser.description = _("Train a grid of runs (a trainability map) as one batched sweep.")
    parser.epilog = _(
        "Exit status: 0 done (whatever the cells' verdicts), 2 bad arguments, 4 a run failed, "
        "130 interrupted (Ctrl-C: unfinished cells are 'stopped', finished ones kept)."
    )
    for action in parser._actions:  # the same flag, a sweep's meaning
        if "--csv" in action.option_strings:
            action.help = _("write one row per cell and seed to this CSV file")
    group = parser.add_argument_group(_("sweep"))
    group.add_argument(
        "--x",
        type=parse_axis,
        required=True,
        metavar="AXIS=V1,V2,...",
        help=_("the map's columns: one of {axes} and its values").format(axes=", ".join(AXES)),
    )
    group.add_argument(
        "--y",
        type=parse_axis,
        required=True,
        metavar="AXIS=V1,V2,...",
        help=_("the map's rows ('off' is clipping off on the clip_threshold axis)"),
    )
    group.add_argument(
        "--seeds",
        type=int,
        default=1,
        help=_("runs per cell, 1..{most}: seeds --seed, --seed + 1, ...").format(most=MAX_SEEDS),
    )
    group.add_argument(
        "--models",
        default=None,
        help=_("comma-separated models to map side by side (default: --model)"),
    )
    group.add_argument(
        "--target-perplexity",
        type=float,
        default=10.0,
        help=_("report the steps to reach this training perplexity (default 10)"),
    )
    group.add_argument(
        "--eval-every",
        type=int,
        default=1,
        help=_("epochs between validation perplexities (default 1)"),
    )
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help=_("'local' (one process) or 'ray' (default: ray if RAY_ADDRESS is set)"),
    )
    group.add_argument(
        "--num-cpus",
        type=positive_int,
        default=None,
        help=_("CPUs of a local Ray started for this sweep, at least 1 (default: all)"),
    )
    group.add_argument("--ray-address", default=None, help=_("a Ray cluster (else RAY_ADDRESS)"))
    return parser  # fmt: skip


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The SweepSpec the flags describe (ValueError naming the field when one is bad)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    (x_axis, x_values), (y_axis, y_values) = args.x, args.y
    base = TrainConfig(**values)
    models = tuple(m.strip() for m in args.models.split(",")) if args.models else (base.model,)
    backend = args.backend or ("ray" if os.environ.get("RAY_ADDRESS") else "local")
    return SweepSpec(
        x_axis, x_values, y_axis, y_values, base, args.seeds, models,
        args.target_perplexity, args.eval_every, backend,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Sweep as the flags say, in the language of ``--lang`` (only for this call)."""
    with language_scope(language_flag(argv)):
        return _main(argv, out or sys.stdout)


def _main(argv: Sequence[str] | None, out: TextIO) -> int:
    args = sweep_parser().parse_args(argv)  # argparse exits with status 2 on malformed flags
    with sigint_requests() as interrupted, ExitStack() as files:
        try:
            spec = spec_from_args(args)
            if spec.base.num_threads:
                torch.set_num_threads(spec.base.num_threads)
            csv_file = files.enter_context(open_output("--csv", args.csv)) if args.csv else None
            corpus = load_corpus(args.corpus, allow_download=not args.offline)
            job = SweepJob(spec, corpus, num_cpus=args.num_cpus, address=args.ray_address)
        except ValueError as exc:
            print(_("error: {message}").format(message=exc), file=sys.stderr)
            return EXIT_BAD_ARGS
        print(corpus_line(corpus.label, corpus.reason), file=out)
        cpus = job.cluster_cpus
        where = _("ray, {cpus} CPUs").format(cpus=cpus) if cpus else spec.backend
        plan = _("sweep: {plan} on {device} ({where})").format(
            plan=job.plan.describe(), device=job.device, where=where
        )
        print(plan, file=out, flush=True)
        snap = _run(job, interrupted, out)
        for model in spec.models:
            cells = summarize(r for r in snap.results if r.model == model)
            print("\n" + _("{model}: final validation perplexity").format(model=model), file=out)
            x_title, y_title = _(AXIS_TITLES[spec.x_axis]), _(AXIS_TITLES[spec.y_axis])
            print(grid_table(cells, spec.x_values, spec.y_values, x_title, y_title), file=out)
        state = {
            "done": pgettext("sweep state", "done"),
            "stopped": pgettext("sweep state", "stopped"),
            "error": pgettext("sweep state", "error"),
        }.get(snap.state, snap.state)
        if snap.theory_error:
            print(_(THEORY_MISSING).format(error=snap.theory_error), file=out)
        ended = _("{state} in {seconds:.1f} s").format(state=state, seconds=snap.elapsed)
        print("\n" + ended, file=out, flush=True)
        if csv_file is not None:
            results_frame(snap.results).to_csv(csv_file, index=False)
    if snap.state == "error":
        print(_("error: {message}").format(message=snap.message), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_INTERRUPTED if snap.state == "stopped" else EXIT_DONE


def _run(job: SweepJob, interrupted: threading.Event, out: TextIO) -> SweepSnapshot:
    """Start ``job`` and wait for it in timed waits, printing progress; on Ctrl-C (the
    ``interrupted`` event, never a KeyboardInterrupt) ask it to stop and wait for its worker
    to end: the cells not finished end 'stopped', the finished ones are kept."""
    job.start()
    shown, stopping = -1, False
    while job.alive:
        if interrupted.is_set() and not stopping:
            print(_("stopping (Ctrl-C): finished cells are kept"), file=out, flush=True)
            job.stop(wait=False)
            stopping = True
        job.join(POLL_S)
        snap = job.snapshot()
        if snap.finished != shown:
            shown = snap.finished
            line = _("{done}/{total} runs finished, {seconds:.1f} s").format(
                done=shown, total=snap.total, seconds=snap.elapsed
            )
            print(line, file=out, flush=True)
    return job.snapshot()
