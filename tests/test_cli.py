"""``python -m gru_core``: d2l's printout, the CSV, exit statuses and error messages."""

from __future__ import annotations

import csv
import dataclasses
import inspect
import io
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gru_core.cli import EXIT_BAD_ARGS, EXIT_CODES, EXIT_DIVERGED, EXIT_DONE, main
from gru_core.config import TrainConfig
from gru_core.run.telemetry import Telemetry
from gru_core.run.verdict import VERDICTS

REPO = Path(__file__).resolve().parents[1]

TINY = [
    "--hidden-size",
    "16",
    "--num-steps",
    "8",
    "--batch-size",
    "4",
    "--max-tokens",
    "2000",
    "--val-tokens",
    "200",
    "--device",
    "cpu",
]
# Diverges at step 1: std 5 weights in a 64-unit GRU over 100 steps overflow float32.
DIVERGING = [
    "--hidden-size",
    "64",
    "--num-steps",
    "100",
    "--batch-size",
    "2",
    "--max-tokens",
    "2000",
    "--val-tokens",
    "0",
    "--init-std",
    "5",
    "--lr",
    "10",
    "--clip-threshold",
    "none",
    "--device",
    "cpu",
]


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_short_run_prints_what_d2l_prints(corpus_path: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "steps.csv"
    code, text = run_cli(
        "--corpus", corpus_path, *TINY, "--num-epochs", "10", "--csv", str(csv_path)
    )
    assert code == EXIT_DONE, text
    lines = text.splitlines()
    assert lines[0].startswith("corpus: ")
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 1  # every 10 epochs, as d2l prints
    assert epoch_lines[0].startswith("epoch 10, perplexity ")
    pattern = r"epoch 10, perplexity [\d.]+, validation perplexity [\d.]+: time traveller"
    assert re.match(pattern, epoch_lines[0])
    final = [i for i, line in enumerate(lines) if line.startswith("perplexity ")]
    assert len(final) == 1
    i = final[0]
    assert re.fullmatch(r"perplexity [\d.]+, [\d.]+ tokens/sec on cpu", lines[i])
    assert float(lines[i].split()[1].rstrip(",")) >= 1.0  # a perplexity is at least 1
    assert lines[i + 1].startswith("time traveller") and len(lines[i + 1]) == 14 + 50
    assert lines[i + 2].startswith("traveller") and len(lines[i + 2]) == 9 + 50
    assert lines[i + 3].startswith("wall time ")
    assert re.fullmatch(r"verdict: learned - It learned: perplexity .*", lines[-1])

    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header[:3] == ["step", "epoch", "loss"]
    assert {"grad_norm", "grad_norm_clipped", "clip_threshold", "lr"} <= set(header)
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))
    assert int(rows[-1]["epoch"]) == 10
    assert all(float(r["grad_norm_clipped"]) <= 1.0 + 1e-5 for r in rows)  # d2l's θ = 1


def test_clipping_can_be_turned_off(corpus_path: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "off.csv"
    code, text = run_cli(
        "--corpus",
        corpus_path,
        *TINY,
        "--num-epochs",
        "1",
        "--clip-threshold",
        "none",
        "--csv",
        str(csv_path),
    )
    assert code == EXIT_DONE, text
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["clip_threshold"] == "" for r in rows)  # NaN: no threshold
    assert all(r["clipped"] == "False" for r in rows)


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [
        ("--hidden-size", "0", "hidden_size"),
        ("--clip-threshold", "-1", "clip_threshold"),
        ("--init-std", "nan", "init_std"),
        ("--lr", "inf", "lr"),
        ("--num-steps", "100000", "num_steps"),
        ("--max-tokens", "10", "max_tokens"),
    ],
)
def test_bad_values_exit_2_naming_the_field(
    corpus_path: str,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    field: str,
) -> None:
    code, text = run_cli("--corpus", corpus_path, *TINY, flag, value)
    assert code == EXIT_BAD_ARGS
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert f"{field}=" in err
    assert "perplexity" not in text  # nothing was trained


def test_malformed_flag_exits_2_through_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--hidden-size", "abc"], out=io.StringIO())
    assert info.value.code == EXIT_BAD_ARGS
    assert "--hidden-size" in capsys.readouterr().err


def test_too_little_text_for_the_batch_shape_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "short.txt"
    path.write_text("the time traveller " * 5)
    code, _ = run_cli("--corpus", str(path), *TINY, "--batch-size", "64", "--num-steps", "100")
    assert code == EXIT_BAD_ARGS
    assert capsys.readouterr().err.startswith("error: ")


def test_missing_corpus_exits_2_with_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-book.txt"
    code, text = run_cli("--corpus", str(missing), *TINY)
    assert code == EXIT_BAD_ARGS
    err = capsys.readouterr().err
    assert str(missing) in err
    assert text == ""


def test_divergence_exits_3(corpus_path: str) -> None:
    code, text = run_cli("--corpus", corpus_path, *DIVERGING, "--num-epochs", "2")
    assert code == EXIT_DIVERGED
    assert "diverged: " in text and "step 1" in text
    assert "tokens/sec" not in text  # no final d2l line after a divergence
    assert text.splitlines()[-1].startswith("verdict: diverged - ")


def test_the_verdict_is_worded_in_the_chosen_language(corpus_path: str) -> None:
    """``--lang zh``: the verdict's kind is worded too (it was the English identifier beside a
    Chinese headline), and so is how the run ended; d2l's own lines stay as d2l prints them."""
    code, text = run_cli("--lang", "zh", "--corpus", corpus_path, *DIVERGING, "--num-epochs", "2")
    assert code == EXIT_DIVERGED
    assert text.splitlines()[-1] == "结论：发散 - 发散了。"
    ending = next(line for line in text.splitlines() if line.startswith("发散："))
    assert "在第 1 步" in ending and "became" not in ending  # the trainer's words, worded here


def test_help_lists_every_config_field() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gru_core", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for f in dataclasses.fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in result.stdout, f.name
    for flag in ("--corpus", "--csv", "--epochs-csv", "--offline"):
        assert flag in result.stdout
    text = " ".join(result.stdout.split())  # argparse wraps the epilog
    documented = ("0 learned", "2 bad arguments", "3 diverged or blew up", "4 out of memory",
                  "5 did not learn", "6 memorised", "130 interrupted")  # fmt: skip
    for words in documented:
        assert words in text, words
    assert set(EXIT_CODES.values()) <= {int(w.split()[0]) for w in documented}
    assert "1..4,096" in result.stdout  # hidden size's range, from config.NUMERIC_RANGES


def test_runs_under_10_epochs_print_every_epoch(corpus_path: str) -> None:
    code, text = run_cli("--corpus", corpus_path, *TINY, "--num-epochs", "3")
    epochs = [line.split(",")[0] for line in text.splitlines() if line.startswith("epoch ")]
    assert epochs == ["epoch 1", "epoch 2", "epoch 3"]
    assert all("validation perplexity" in line for line in text.splitlines() if "epoch " in line)
    assert code == EXIT_CODES[text.splitlines()[-1].split(" - ")[0].removeprefix("verdict: ")]


@pytest.mark.parametrize("where", ["proc", "directory", "missing folder", "same as --csv"])
def test_a_bad_csv_path_exits_2_before_training(
    corpus_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """Found before the first step (it used to be found after training, with a traceback)."""
    good = str(tmp_path / "steps.csv")
    argv = {
        "proc": ["--csv", "/proc/x.csv"],
        "directory": ["--csv", str(tmp_path)],
        "missing folder": ["--epochs-csv", str(tmp_path / "no" / "such" / "epochs.csv")],
        "same as --csv": ["--csv", good, "--epochs-csv", good],
    }[where]
    code, text = run_cli("--corpus", corpus_path, *TINY, "--num-epochs", "1", *argv)
    assert code == EXIT_BAD_ARGS
    err = capsys.readouterr().err
    assert err.startswith("error: --") and "Traceback" not in err
    assert text == ""  # not a step trained
    assert not Path(good).exists() or Path(good).read_text() == ""


def test_the_csv_has_every_step_and_the_epochs_agree(corpus_path: str, tmp_path: Path) -> None:
    """Past the dashboard telemetry's thinning (it keeps head + recent + middle rows, then
    decimates), the CLI's CSV still has one row per step; each epoch's perplexity, recomputed
    from the steps as d2l defines it (exp of the token-weighted mean loss), equals the epoch
    table's."""
    defaults = inspect.signature(Telemetry).parameters
    thinning = sum(defaults[n].default for n in ("head", "recent", "middle"))
    steps_path, epochs_path = tmp_path / "steps.csv", tmp_path / "epochs.csv"
    code, text = run_cli(
        "--corpus", corpus_path, "--hidden-size", "2", "--num-steps", "1", "--batch-size", "1",
        "--max-tokens", "2101", "--val-tokens", "0", "--num-epochs", "2", "--device", "cpu",
        "--csv", str(steps_path), "--epochs-csv", str(epochs_path),
    )  # fmt: skip
    assert code in (EXIT_DONE, EXIT_CODES["did not learn"]), text
    steps = pd.read_csv(steps_path)
    epochs = pd.read_csv(epochs_path)
    assert len(steps) == 2 * 2099 > thinning  # 2,100 tokens: 2,099 (x, y) pairs per epoch
    assert steps["step"].tolist() == list(range(1, len(steps) + 1))
    assert f"{len(steps)} step rows in {steps_path}" in text
    assert epochs["epoch"].tolist() == [1, 2] and epochs["step"].tolist() == [2099, 4198]
    for epoch, group in steps.groupby("epoch"):
        mean_loss = (group["loss"] * group["tokens"]).sum() / group["tokens"].sum()
        row = epochs[epochs["epoch"] == epoch].iloc[0]
        assert math.exp(mean_loss) == pytest.approx(row["train_perplexity"], rel=1e-9)
    assert epochs["val_perplexity"].isna().all()  # --val-tokens 0: nothing held out


def test_every_verdict_has_an_exit_status() -> None:
    assert set(EXIT_CODES) == set(VERDICTS)
    assert EXIT_CODES["learned"] == EXIT_DONE and EXIT_CODES["diverged"] == EXIT_DIVERGED
