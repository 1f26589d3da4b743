"""The command lines' CSV files: opened before any training, written as records arrive.

``open_output`` opens (creates or truncates) a file the user named, up front, so a path that
cannot be written (``/proc/x.csv``, a directory, a missing folder) is a ValueError with the
reason before a single step is trained, never a traceback after the run.

``StepCsv`` writes one row per training step, every step, as each ``StepRecord`` arrives: the
columns of ``telemetry.flatten_step`` (``step, epoch, loss, perplexity, grad_norm,
grad_norm_clipped, clipped, clip_threshold, lr, update_ratio, tokens``, then ``gnorm:<W>`` per
parameter, ``group:<group>`` per parameter group and ``<gate>:<stat>`` per gate); an empty
``clip_threshold`` means clipping off. Unlike the dashboard's step table it is never thinned,
so statistics recomputed from it (an epoch's perplexity as the token-weighted mean loss) are
exact. ``EpochCsv`` writes one row per epoch: ``EPOCH_COLUMNS``, an empty ``val_perplexity``
on epochs that were not evaluated. Both flush at every epoch's end and when closed, so an
interrupted run keeps every row it trained.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, TextIO

from gru_core.i18n import _
from gru_core.run.records import EpochRecord, StepRecord
from gru_core.run.telemetry import flatten_step

EPOCH_COLUMNS = (
    "epoch",  # 1-based
    "step",  # global step at the epoch's end
    "train_perplexity",  # exp(token-mean loss over the epoch), d2l's definition
    "val_perplexity",  # on the held-out slice; empty when not evaluated this epoch
    "tokens_per_sec",  # training throughput over the epoch
    "elapsed",  # seconds since the run started
    "greedy_text",  # the prediction after the corpus's prefix; empty when not evaluated
)


def open_output(flag: str, path: str) -> TextIO:
    """``path`` opened for writing (UTF-8, newline='' as the csv module wants), or a
    ValueError naming the flag, the path and why it cannot be written."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(
            _("{flag} {path}: is a directory; give a file name").format(flag=flag, path=path)
        )
    if not p.parent.is_dir():
        raise ValueError(
            _("{flag} {path}: the folder {folder!r} does not exist").format(
                flag=flag, path=path, folder=str(p.parent)
            )
        )
    try:
        return p.open("w", newline="", encoding="utf-8")
    except OSError as err:
        raise ValueError(
            _("{flag} {path}: cannot write it ({why})").format(
                flag=flag, path=path, why=err.strerror or err
            )
        ) from None


def _cell(value: Any) -> Any:
    """NaN and None as an empty cell (pandas' ``to_csv`` convention), other values as is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


class StepCsv:
    """One row per StepRecord, written as it arrives (module docstring)."""

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self.rows = 0
        self._writer: csv.DictWriter | None = None

    def add(self, record: StepRecord) -> None:
        row = flatten_step(record)
        if self._writer is None:  # the first row fixes the columns: parameters and gates
            self._writer = csv.DictWriter(self.file, fieldnames=list(row), restval="")
            self._writer.writeheader()
        self._writer.writerow({k: _cell(v) for k, v in row.items()})
        self.rows += 1

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class EpochCsv:
    """One row per EpochRecord (``EPOCH_COLUMNS``), written and flushed as it arrives."""

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self._writer = csv.writer(file)
        self._writer.writerow(EPOCH_COLUMNS)

    def add(self, record: EpochRecord) -> None:
        self._writer.writerow([_cell(getattr(record, name)) for name in EPOCH_COLUMNS])
        self.file.flush()

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()
