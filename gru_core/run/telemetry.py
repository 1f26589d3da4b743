"""A bounded, thread-safe store of training records, read by the UI as DataFrame snapshots.

The training thread calls ``add_step``, ``add_epoch``, ``add_event`` and ``set_probe``; the
UI thread calls ``snapshot()`` a few times a second. Every method takes the same lock; a
snapshot copies what it shows under it, so the UI cannot see a half-written state.

Kept columnar, at a fixed size. Each step record is written once, as one row, into
preallocated numpy arrays (one per column of ``stats.step_columns``), at a slot that
``columns.Retention`` names: the first ``head`` steps, the latest ``recent`` in full, a
``middle`` thinned by a doubling stride (``thinning.Thinning``), and the ``spikes`` of largest
gradient norm among the steps thinned out. Epoch records are kept the same way (``epochs``
in all, without spikes), and so are gradient-flow rows (``||dL/dH_t||`` for t = 1..T, recorded
every k-th step, with the one-position flows ``||d l_T / dH_t||`` and ``||d l_late / dH_t||``
of the same step): the latest ``flow_rows`` in full, ``flow_cap`` in total.

So memory is fixed from the first record, and once a run outgrew the sizes the count of rows
kept stays the same: a snapshot copies the kept rows out of the arrays, in time proportional
to the rows shown, whether the run is at step 4,000 or 400,000.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from gru_core.run.columns import Columns, Retention
from gru_core.run.records import EpochRecord, StepRecord
from gru_core.step.stats import (
    BASE_COLUMNS,
    BOOLEAN_COLUMNS,
    CLIP_THRESHOLD,
    CLIPPED,
    FLOWS,
    GATE_SUFFIXES,
    GRAD_NORM,
    INTEGER_COLUMNS,
    MEAN,
    PARAM_GROUPS,
    STEP,
    gate_column,
    gnorm_column,
    group_column,
    param_group,
    step_columns,
)

__all__ = ["BASE_COLUMNS", "EVENT_COLUMNS", "Snapshot", "Telemetry", "flatten_step", "gate_names"]

Row = dict[str, Any]
EVENT_COLUMNS = ("step", "kind", "value")
MAX_EVENTS = 10_000  # live knob changes are rare; the oldest go beyond this
FLOW = "flows"  # the flow store's one column: (3, T) per row, in FLOWS order


@dataclass(frozen=True)
class Snapshot:
    """A consistent, read-only view of the store at one moment.

    steps: one row per retained step, sorted by step; columns ``stats.step_columns``
        (BASE_COLUMNS, ``gnorm:<name>`` per parameter, ``group:<group>`` per parameter group,
        ``<gate>:<suffix>`` per gate and GATE_SUFFIXES).
    epochs: one row per retained EpochRecord (thinned like the steps), columns named after
        its fields.
    events: live knob changes (step, kind, value); value NaN means "off".
    flow_steps: (K,) steps of the retained gradient-flow rows, ascending.
    flow: (K, T_max) ``||dL/dH_t||``, padded with NaN where a row has fewer time steps.
    flow_last, flow_late: (K, T_max) ``||d l_T / dH_t||`` and ``||d l_late / dH_t||`` of the
        same steps, aligned with flow_steps (NaN where a record had none).
    probe: {'step', 'text', 'gates': {name: (T, H) read-only array}} of the latest probe.
    """

    steps: pd.DataFrame
    epochs: pd.DataFrame
    events: pd.DataFrame
    flow_steps: np.ndarray
    flow: np.ndarray
    probe: dict[str, Any] | None
    last_step: StepRecord | None
    last_epoch: EpochRecord | None
    total_steps: int
    clipped_steps: int = 0  # of all total_steps (exact, unlike a count over retained rows)
    flow_last: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    flow_late: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


@lru_cache(maxsize=1024)
def _param_columns(name: str) -> tuple[str, str]:
    """Column of a parameter's gradient norm and its group's column."""
    return gnorm_column(name), group_column(param_group(name))


@lru_cache(maxsize=256)
def _gate_columns(gate: str) -> tuple[str, ...]:
    """Columns of one gate: mean, the percentiles, saturated fraction (GATE_SUFFIXES order)."""
    return tuple(gate_column(gate, suffix) for suffix in GATE_SUFFIXES)


def _dtype(column: str) -> tuple[type, Any]:
    """A steps column's dtype and the fill of a row that lacks it."""
    if column in INTEGER_COLUMNS:
        return np.int64, 0
    if column in BOOLEAN_COLUMNS:
        return np.bool_, False
    return np.float64, math.nan


def flatten_step(record: StepRecord) -> Row:
    """One StepRecord as a flat row of plain numbers (see Snapshot.steps for the columns)."""
    row: Row = {name: getattr(record, name) for name in BASE_COLUMNS}
    row[CLIPPED] = bool(record.clipped)
    threshold = record.clip_threshold
    row[CLIP_THRESHOLD] = math.nan if threshold is None else float(threshold)
    squares = dict.fromkeys(map(group_column, PARAM_GROUPS), 0.0)
    for name, norm in record.param_grad_norms.items():
        column, group = _param_columns(name)
        row[column] = norm = float(norm)
        squares[group] += norm * norm
    for column, square in squares.items():
        # Group norm = sqrt(sum of squared parameter norms): the L2 norm of the group's grads.
        row[column] = math.sqrt(square)
    for gate, stats in record.gates.items():
        values = (stats.mean, *stats.percentiles, stats.saturated)
        if len(values) != len(GATE_SUFFIXES):
            raise ValueError(f"gate {gate!r}: expected {len(GATE_SUFFIXES) - 2} percentiles")
        row.update(zip(_gate_columns(gate), map(float, values), strict=True))
    return row


def gate_names(snapshot: Snapshot) -> list[str]:
    """Gate names present in ``snapshot.steps`` ('Z', 'R', 'H_tilde', ...), in column order."""
    end = gate_column("", MEAN)
    return [c[: -len(end)] for c in snapshot.steps.columns if c.endswith(end)]


def _epoch_dtypes() -> dict[str, tuple[type, Any]]:
    """EpochRecord's fields -> (dtype, fill): int64, object for text, float64 (None -> NaN)."""
    kinds = {"int": (np.int64, 0), "str": (object, "")}
    return {f.name: kinds.get(str(f.type), (np.float64, math.nan)) for f in fields(EpochRecord)}


class Telemetry:
    """Thread-safe, bounded store of StepRecords, EpochRecords, events and the gate probe."""

    def __init__(
        self,
        head: int = 500,  # first steps kept in full
        recent: int = 1500,  # latest steps kept in full
        middle: int = 1500,  # thinned steps in between
        spikes: int = 100,  # largest-grad-norm steps kept among those thinned out
        flow_rows: int = 400,  # latest gradient-flow rows kept in full
        flow_cap: int = 600,  # gradient-flow rows kept in total
        epochs: int = 1000,  # epochs kept: the first tenth, the latest 40% in full, thinned
    ) -> None:
        for name, value, low in (
            ("head", head, 0), ("recent", recent, 1), ("middle", middle, 1), ("spikes", spikes, 0),
            ("flow_rows", flow_rows, 1), ("flow_cap", flow_cap, flow_rows), ("epochs", epochs, 3),
        ):  # fmt: skip
            if not isinstance(value, int) or value < low:
                raise ValueError(f"Telemetry {name}={value!r}: expected an integer >= {low}")
        self._sizes = (head, recent, middle, spikes, flow_rows, flow_cap, epochs)
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forget everything (a new run)."""
        head, recent, middle, spikes, flow_rows, flow_cap, epochs = self._sizes
        e_head, e_recent = max(1, epochs // 10), max(1, 2 * epochs // 5)
        with self._lock:
            self._steps = Retention(head, recent, middle, spikes)
            self._step_columns = Columns(self._steps.size)
            for column in step_columns((), ()):
                self._step_columns.define(column, *_dtype(column))
            self._epochs = Retention(e_head, e_recent, epochs - e_head - e_recent)
            self._epoch_columns = Columns(self._epochs.size)
            for column, (dtype, fill) in _epoch_dtypes().items():
                self._epoch_columns.define(column, dtype, fill)
            self._flows = Retention(0, flow_rows, flow_cap - flow_rows)
            self._flow_columns = Columns(self._flows.size)
            self._flow_columns.define(FLOW, np.float64, math.nan, (len(FLOWS), 0))
            self._events: deque[tuple[int, str, float]] = deque(maxlen=MAX_EVENTS)
            self._probe: dict[str, Any] | None = None
            self._last_step: StepRecord | None = None
            self._last_epoch: EpochRecord | None = None
            self._total_steps = 0
            self._clipped_steps = 0
            self._version = 0
            self._cached: tuple[int, Snapshot, float] | None = None  # version, snap, built

    # ----- writer side (training thread) ---------------------------------------------------

    def add_step(self, record: StepRecord) -> None:
        """Store one step (flattened once here, outside the lock)."""
        row = flatten_step(record)
        flow = None
        if record.grad_flow is not None:
            flow = [record.grad_flow, record.grad_flow_last, record.grad_flow_late]
        with self._lock:
            self._total_steps += 1
            self._clipped_steps += bool(record.clipped)
            self._last_step = record
            self._version += 1
            columns = self._step_columns
            if len(row) != len(columns.arrays) or not row.keys() <= columns.arrays.keys():
                for name in row.keys() - columns.arrays.keys():  # a parameter or gate
                    columns.define(name, *_dtype(name))
                columns.reorder(step_columns(record.param_grad_norms, record.gates))
            columns.write(self._steps.admit(row[STEP], row[GRAD_NORM]), row)
            if flow is not None:
                self._add_flow(row[STEP], flow)

    def _add_flow(self, step: int, flows: list[tuple[float, ...] | None]) -> None:
        """Store one step's flows (caller holds the lock), widening the rows to a longer T."""
        columns = self._flow_columns
        width = max(len(f) for f in flows if f is not None)
        if width > columns.arrays[FLOW].shape[2]:
            columns.define(FLOW, np.float64, math.nan, (len(FLOWS), width))
        values = np.full(columns.arrays[FLOW].shape[1:], math.nan)
        for i, f in enumerate(flows):
            if f is not None:
                values[i, : len(f)] = f
        columns.write(self._flows.admit(step), {FLOW: values})

    def add_epoch(self, record: EpochRecord) -> None:
        """Store one epoch summary (the epochs are thinned like the steps)."""
        row = {f.name: getattr(record, f.name) for f in fields(EpochRecord)}
        row = {k: math.nan if v is None else v for k, v in row.items()}
        with self._lock:
            self._epoch_columns.write(self._epochs.admit(record.epoch), row)
            self._last_epoch = record
            self._version += 1

    def add_event(self, step: int, kind: str, value: float | None) -> None:
        """Record a live knob change, e.g. ('clip_threshold', 0.1) or ('lr', 0.5); None = off."""
        entry = (int(step), str(kind), math.nan if value is None else float(value))
        with self._lock:
            self._events.append(entry)
            self._version += 1

    def set_probe(self, step: int, text: str, gates: dict[str, np.ndarray]) -> None:
        """Replace the probe: gate name -> (T, H) activations on ``text`` at ``step``."""
        copies = {}
        for name, values in gates.items():
            array = np.array(values, dtype=np.float64, copy=True)
            if array.ndim != 2:
                raise ValueError(f"probe gate {name!r} has shape {array.shape}; expected (T, H)")
            array.setflags(write=False)
            copies[name] = array
        with self._lock:
            self._probe = {"step": int(step), "text": str(text), "gates": copies}
            self._version += 1

    # ----- reader side (UI thread) ---------------------------------------------------------

    def nbytes(self) -> int:
        """Bytes of the arrays the records are kept in (fixed but for a new column or T)."""
        with self._lock:
            stores = (self._step_columns, self._epoch_columns, self._flow_columns)
            return sum(a.nbytes for c in stores for a in c.arrays.values())

    def clipped_counts(self) -> tuple[int, int]:
        """(steps, clipped steps) of the whole run, exact, without a snapshot's frames."""
        with self._lock:
            return self._total_steps, self._clipped_steps

    def snapshot(self, max_age: float = 0.0) -> Snapshot:
        """A consistent view of everything stored (cached until the next write).

        ``max_age``: a snapshot built at most this many seconds ago is good enough even if
        records came since (the watchers of a shared run: they all get the one the owner's
        page drew last, and the figures built for it, instead of each building its own while
        the run moves on every step).

        The kept rows are copied out of the arrays under the lock (in step order: time
        proportional to the rows kept, which stop growing), the frames built outside it.
        Treat the result as read-only.
        """
        with self._lock:
            cached = self._cached
            if cached is not None and (
                cached[0] == self._version
                or (max_age > 0 and time.monotonic() - cached[2] <= max_age)
            ):
                return cached[1]
            version = self._version
            steps = self._step_columns.take(self._steps.kept())
            epochs = self._epoch_columns.take(self._epochs.kept())
            kept = self._flows.kept()
            flow_steps, flows = self._flows.steps[kept], self._flow_columns.take(kept)[FLOW]
            events = list(self._events)
            probe = None if self._probe is None else dict(self._probe)
            if probe is not None:
                probe["gates"] = dict(probe["gates"])
            last_step, total, clipped = self._last_step, self._total_steps, self._clipped_steps
            last_epoch = self._last_epoch
        flow, flow_last, flow_late = np.moveaxis(flows, 1, 0)
        snap = Snapshot(
            steps=_steps_frame(steps),
            epochs=_epochs_frame(epochs),
            events=_events_frame(events),
            flow_steps=flow_steps,
            flow=flow,
            probe=probe,
            last_step=last_step,
            last_epoch=last_epoch,
            total_steps=total,
            clipped_steps=clipped,
            flow_last=flow_last,
            flow_late=flow_late,
        )
        with self._lock:
            if self._cached is None or self._cached[0] <= version:  # the newest one built
                self._cached = (version, snap, time.monotonic())
        return snap


def _steps_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Kept columns (copies, in step order) -> the steps DataFrame, base columns first."""
    return pd.DataFrame(columns, copy=False)


def _epochs_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Kept epoch columns -> the epochs DataFrame; the texts stay ``object`` (pandas 3 would
    otherwise convert every text to an Arrow string on every snapshot)."""
    return pd.DataFrame(
        {
            name: pd.Series(values, dtype=object, copy=False) if values.dtype == object else values
            for name, values in columns.items()
        },
        copy=False,
    )


def _events_frame(events: list[tuple[int, str, float]]) -> pd.DataFrame:
    """Events -> DataFrame with columns step (int), kind (str), value (float, NaN = off)."""
    return pd.DataFrame(
        {
            "step": np.array([e[0] for e in events], dtype=np.int64),
            "kind": pd.Series([e[1] for e in events], dtype=object),
            "value": np.array([e[2] for e in events], dtype=np.float64),
        }
    )
