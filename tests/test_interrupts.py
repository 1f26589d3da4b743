"""Ctrl-C and bad input, as a user meets them: real subprocesses of both command lines.

Ctrl-C (SIGINT) stops a training run at the next step (the steps trained are in the CSV, the
summary and a 'stopped' verdict printed, exit 130) and a local sweep between steps (finished
cells kept, the others 'stopped', exit 130); never a traceback, never the C++ abort the
local sweep once died with. The Ray backend's Ctrl-C runs on a real cluster in
``test_ray_cluster.py``. A bad memory budget variable is exit 2 naming it, in both.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gru_core.cli import EXIT_BAD_ARGS, EXIT_INTERRUPTED
from gru_core.limits import BUDGET_ENV
from gru_core.sweep.cli import main as sweep_main
from tests.clirun import REPO, Cli, cli_env

TINY = ["--hidden-size", "16", "--num-steps", "8", "--batch-size", "4", "--max-tokens", "2000",
        "--val-tokens", "200", "--device", "cpu", "--num-threads", "1"]  # fmt: skip
MAP = ["--x", "init_std=0.01,0.1", "--y", "clip_threshold=1,off"]


def no_crash(text: str) -> None:
    assert "Traceback" not in text and "terminate called" not in text, text


def test_ctrl_c_stops_training_and_keeps_what_was_trained(corpus_path: str, tmp_path: Path):
    steps_csv, epochs_csv = tmp_path / "steps.csv", tmp_path / "epochs.csv"
    cli = Cli(tmp_path, "gru_core", "--corpus", corpus_path, *TINY, "--num-epochs", "1000",
              "--csv", str(steps_csv), "--epochs-csv", str(epochs_csv))  # fmt: skip
    cli.wait_until(lambda: epochs_csv.exists() and len(epochs_csv.read_text().splitlines()) > 1)
    cli.interrupt()  # an epoch has ended: training is under way
    code = cli.finish()
    out = cli.out
    assert code == EXIT_INTERRUPTED, out + cli.err
    no_crash(out + cli.err)
    stopped = [line for line in out.splitlines() if line.startswith("stopped at step ")]
    assert len(stopped) == 1, out
    step = int(stopped[0].split()[3])
    steps = pd.read_csv(steps_csv)
    assert steps["step"].tolist() == list(range(1, step + 1))  # every step trained, written
    epochs = pd.read_csv(epochs_csv)
    last_steps = steps.groupby("epoch")["step"].max()
    assert len(epochs) >= 1
    assert epochs["step"].tolist() == last_steps[epochs["epoch"]].tolist()
    assert "wall time" in out  # the summary
    assert out.splitlines()[-1].startswith("verdict: stopped - Stopped: perplexity ")


def test_ctrl_c_stops_a_local_sweep_keeping_finished_cells(corpus_path: str, tmp_path: Path):
    """Two chunks (seeds 0 and 1) run one after another; Ctrl-C during the second keeps the
    first's four cells and marks the second's 'stopped'."""
    out_csv = tmp_path / "map.csv"
    cli = Cli(tmp_path, "gru_core.sweep", "--corpus", corpus_path, *TINY, *MAP, "--seeds", "2",
              "--num-epochs", "40", "--backend", "local", "--csv", str(out_csv))  # fmt: skip
    cli.wait_for("4/8 runs finished")
    cli.interrupt()
    code = cli.finish()
    assert code == EXIT_INTERRUPTED, cli.out + cli.err
    no_crash(cli.out + cli.err)
    assert "stopping (Ctrl-C)" in cli.out and "\nstopped in " in cli.out
    rows = pd.read_csv(out_csv)
    assert len(rows) == 8
    assert set(rows[rows["seed"] == 0]["status"]) <= {"done", "diverged"}  # kept
    assert set(rows[rows["seed"] == 1]["status"]) == {"stopped"}


@pytest.mark.parametrize("value", ["inf", "nan", "-5", "lots"])
@pytest.mark.parametrize("module", ["gru_core", "gru_core.sweep"])
def test_a_bad_memory_budget_exits_2_naming_the_variable(
    corpus_path: str, module: str, value: str
) -> None:
    args = [*TINY, "--num-epochs", "1"] + (MAP if module.endswith("sweep") else [])
    result = subprocess.run(
        [sys.executable, "-m", module, "--corpus", corpus_path, *args],
        cwd=REPO,
        env=cli_env(**{BUDGET_ENV: value}),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == EXIT_BAD_ARGS, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and BUDGET_ENV in result.stderr
    no_crash(result.stderr)
    assert "perplexity" not in result.stdout  # nothing trained


def test_a_corpus_that_is_a_fifo_exits_2_at_once(tmp_path: Path) -> None:
    """It used to block for ever, waiting for a writer."""
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    result = subprocess.run(
        [sys.executable, "-m", "gru_core", "--corpus", str(fifo), *TINY],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == EXIT_BAD_ARGS
    assert "named pipe" in result.stderr and str(fifo) in result.stderr


@pytest.mark.parametrize("where", ["/proc/x.csv", "{tmp}", "{tmp}/no/such/map.csv"])
def test_a_sweep_with_a_bad_csv_path_exits_2_before_training(
    corpus_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    out = io.StringIO()
    path = where.format(tmp=tmp_path)
    code = sweep_main(["--corpus", corpus_path, *TINY, *MAP, "--csv", path], out=out)
    assert code == EXIT_BAD_ARGS
    assert capsys.readouterr().err.startswith(f"error: --csv {path}: ")
    assert out.getvalue() == ""  # no sweep started
