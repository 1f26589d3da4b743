"""A bounded, thread-safe store of training records, read by the UI as DataFrame snapshots.

The training thread calls ``add_step``, ``add_epoch``, ``add_event`` and ``set_probe``; the
UI thread calls ``snapshot()`` a few times a second. Every method takes the same lock, and a
snapshot holds only copies or values that are never mutated again, so the UI cannot see a
half-written state.

Memory stays bounded however long the run. Epoch records are all kept (a run has at most a
few thousand). Step records are flattened to one row dict at add time and kept as:

- ``head``: the first steps of the run (the fast early drop of the loss);
- ``recent``: the latest steps, in full (a deque);
- ``middle``: steps leaving the recent window, kept when ``step % stride == 0``; when it
  outgrows its budget the stride doubles and the rows that are no longer multiples go;
- ``spikes``: the steps with the largest gradient norm among those dropped (a min-heap), so
  a gradient explosion in the middle of a long run stays visible.

So at most ``head + recent + middle + spikes`` rows are retained. Gradient-flow rows
(``||dL/dH_t||`` for t = 1..T, recorded every k-th step) are kept the same way: the latest
``flow_rows`` in full, older ones decimated by a doubling stride, ``flow_cap`` in total; with
each row go the one-position flows ``||d l_T / dH_t||`` and ``||d l_late / dH_t||`` of the same
step (``StepRecord.grad_flow_last`` / ``grad_flow_late``).
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from gru_core.run.records import PARAM_GROUPS, PERCENTILES, EpochRecord, StepRecord, param_group

Row = dict[str, Any]

# Columns every steps frame has, in this order (then gnorm:*, group:*, then gate columns).
BASE_COLUMNS = (
    "step",
    "epoch",
    "loss",
    "perplexity",
    "grad_norm",
    "grad_norm_clipped",
    "clipped",
    "clip_threshold",
    "lr",
    "update_ratio",
    "tokens",
)
GROUP_COLUMNS = tuple(f"group:{g}" for g in PARAM_GROUPS)
# Suffixes of the per-gate columns: G:mean, G:p5 ... G:p95, G:sat.
GATE_SUFFIXES = ("mean", *(f"p{p}" for p in PERCENTILES), "sat")
EVENT_COLUMNS = ("step", "kind", "value")
MAX_EVENTS = 10_000  # live knob changes are rare; the oldest go beyond this


@dataclass(frozen=True)
class Snapshot:
    """A consistent, read-only view of the store at one moment.

    steps: one row per retained step, sorted by step (columns: BASE_COLUMNS, ``gnorm:<name>``
        per parameter, GROUP_COLUMNS, ``<gate>:<suffix>`` per gate and GATE_SUFFIXES).
    epochs: every EpochRecord, one row each, columns named after its fields.
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
    """Column of a parameter's gradient norm and the group it adds to."""
    return f"gnorm:{name}", param_group(name)


@lru_cache(maxsize=256)
def _gate_columns(gate: str) -> tuple[str, ...]:
    """Columns of one gate: mean, the percentiles, saturated fraction (GATE_SUFFIXES order)."""
    return tuple(f"{gate}:{suffix}" for suffix in GATE_SUFFIXES)


def flatten_step(record: StepRecord) -> Row:
    """One StepRecord as a flat row of plain numbers (see Snapshot.steps for the columns)."""
    threshold = record.clip_threshold
    row: Row = {
        "step": int(record.step),
        "epoch": int(record.epoch),
        "loss": float(record.loss),
        "perplexity": float(record.perplexity),
        "grad_norm": float(record.grad_norm),
        "grad_norm_clipped": float(record.grad_norm_clipped),
        "clipped": bool(record.clipped),
        "clip_threshold": math.nan if threshold is None else float(threshold),
        "lr": float(record.lr),
        "update_ratio": float(record.update_ratio),
        "tokens": int(record.tokens),
    }
    squares = dict.fromkeys(PARAM_GROUPS, 0.0)
    for name, norm in record.param_grad_norms.items():
        column, group = _param_columns(name)
        row[column] = norm = float(norm)
        squares[group] += norm * norm
    for group, column in zip(PARAM_GROUPS, GROUP_COLUMNS, strict=True):
        # Group norm = sqrt(sum of squared parameter norms): the L2 norm of the group's grads.
        row[column] = math.sqrt(squares[group])
    for gate, stats in record.gates.items():
        values = (stats.mean, *stats.percentiles, stats.saturated)
        if len(values) != len(GATE_SUFFIXES):
            raise ValueError(f"gate {gate!r}: expected {len(PERCENTILES)} percentiles")
        row.update(zip(_gate_columns(gate), map(float, values), strict=True))
    return row


def gate_names(snapshot: Snapshot) -> list[str]:
    """Gate names present in ``snapshot.steps`` ('Z', 'R', 'H_tilde', ...), in column order."""
    return [c[: -len(":mean")] for c in snapshot.steps.columns if c.endswith(":mean")]


def _spike_key(row: Row) -> float:
    """Heap key of a row: its gradient norm, with NaN ranked as the largest (a divergence)."""
    g = row["grad_norm"]
    return math.inf if math.isnan(g) else g


class _Decimator:
    """Items in step order, keeping those with ``step % stride == 0``; the stride doubles
    whenever more than ``capacity`` are kept."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.stride = 1
        self.items: list[tuple[int, Any]] = []

    def add(self, step: int, item: Any) -> list[tuple[int, Any]]:
        """Offer one item; return the (step, item) pairs dropped, possibly including it."""
        if self.capacity == 0 or step % self.stride != 0:
            return [(step, item)]
        self.items.append((step, item))
        dropped: list[tuple[int, Any]] = []
        while len(self.items) > self.capacity and self.stride < 2**62:
            self.stride *= 2
            dropped += [(s, it) for s, it in self.items if s % self.stride != 0]
            self.items = [(s, it) for s, it in self.items if s % self.stride == 0]
        if len(self.items) > self.capacity:  # only when a step number repeats (e.g. step 0)
            cut = len(self.items) - self.capacity
            dropped += self.items[:cut]
            self.items = self.items[cut:]
        return dropped


class Telemetry:
    """Thread-safe, bounded store of StepRecords, EpochRecords, events and the gate probe."""

    def __init__(
        self,
        head: int = 500,  # first steps kept in full
        recent: int = 1500,  # latest steps kept in full
        middle: int = 1500,  # decimated steps in between, at most
        spikes: int = 100,  # largest-grad-norm steps kept among those dropped
        flow_rows: int = 400,  # latest gradient-flow rows kept in full
        flow_cap: int = 600,  # gradient-flow rows kept in total
    ) -> None:
        for name, value, low in (
            ("head", head, 0),
            ("recent", recent, 1),
            ("middle", middle, 1),
            ("spikes", spikes, 0),
            ("flow_rows", flow_rows, 1),
            ("flow_cap", flow_cap, flow_rows),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"Telemetry {name}={value!r}: expected an integer >= {low}")
        self._sizes = (head, recent, middle, spikes, flow_rows, flow_cap)
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forget everything (a new run)."""
        _, _, middle, _, flow_rows, flow_cap = self._sizes
        with self._lock:
            self._head: list[Row] = []
            self._recent: deque[Row] = deque()
            self._middle = _Decimator(middle)
            self._spikes: list[tuple[float, int, int, Row]] = []  # min-heap: (|g|, step, seq)
            self._seq = itertools.count()  # tie-breaker, so rows are never compared
            self._flow_recent: deque[tuple[int, np.ndarray]] = deque()  # (step, (3, T))
            self._flow_old = _Decimator(flow_cap - flow_rows)
            self._epochs: list[EpochRecord] = []
            self._events: deque[tuple[int, str, float]] = deque(maxlen=MAX_EVENTS)
            self._probe: dict[str, Any] | None = None
            self._last_step: StepRecord | None = None
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
            T = len(record.grad_flow)
            flow = np.full((3, T), np.nan)  # rows: grad_flow, grad_flow_last, grad_flow_late
            flow[0] = record.grad_flow
            for i, extra in ((1, record.grad_flow_last), (2, record.grad_flow_late)):
                if extra is not None:
                    flow[i, : len(extra)] = extra
            flow.setflags(write=False)
        head, recent, _, _, flow_rows, _ = self._sizes
        with self._lock:
            self._total_steps += 1
            self._clipped_steps += bool(record.clipped)
            self._last_step = record
            self._version += 1
            if len(self._head) < head:
                self._head.append(row)
            else:
                self._recent.append(row)
                if len(self._recent) > recent:
                    old = self._recent.popleft()
                    for _, dropped in self._middle.add(old["step"], old):
                        self._keep_if_spike(dropped)
            if flow is not None:
                self._flow_recent.append((row["step"], flow))
                if len(self._flow_recent) > flow_rows:
                    self._flow_old.add(*self._flow_recent.popleft())

    def _keep_if_spike(self, row: Row) -> None:
        """Offer a dropped row to the spike heap (caller holds the lock)."""
        capacity = self._sizes[3]
        if capacity == 0:
            return
        entry = (_spike_key(row), row["step"], next(self._seq), row)
        if len(self._spikes) < capacity:
            heapq.heappush(self._spikes, entry)
        elif entry[:2] > self._spikes[0][:2]:
            heapq.heapreplace(self._spikes, entry)

    def add_epoch(self, record: EpochRecord) -> None:
        """Store one epoch summary (all are kept)."""
        with self._lock:
            self._epochs.append(record)
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

    def snapshot(self, max_age: float = 0.0) -> Snapshot:
        """A consistent view of everything stored (cached until the next write).

        ``max_age``: a snapshot built at most this many seconds ago is good enough even if
        records came since (the watchers of a shared run: they all get the one the owner's
        page drew last, and the figures built for it, instead of each building its own while
        the run moves on every step).

        Rows and arrays are never mutated once stored, so the lock is held only to collect
        references; the frames are built outside it. Treat the result as read-only.
        """
        with self._lock:
            cached = self._cached
            if cached is not None and (
                cached[0] == self._version
                or (max_age > 0 and time.monotonic() - cached[2] <= max_age)
            ):
                return cached[1]
            version = self._version
            rows = [*self._head, *(row for _, row in self._middle.items), *self._recent]
            rows += [entry[-1] for entry in self._spikes]
            flows = [*self._flow_old.items, *self._flow_recent]
            epochs = list(self._epochs)
            events = list(self._events)
            probe = None if self._probe is None else dict(self._probe)
            if probe is not None:
                probe["gates"] = dict(probe["gates"])
            last_step, total, clipped = self._last_step, self._total_steps, self._clipped_steps
        flow_steps, (flow, flow_last, flow_late) = _flow_arrays(flows)
        snap = Snapshot(
            steps=_steps_frame(rows),
            epochs=_epochs_frame(epochs),
            events=_events_frame(events),
            flow_steps=flow_steps,
            flow=flow,
            probe=probe,
            last_step=last_step,
            last_epoch=epochs[-1] if epochs else None,
            total_steps=total,
            clipped_steps=clipped,
            flow_last=flow_last,
            flow_late=flow_late,
        )
        with self._lock:
            if self._cached is None or self._cached[0] <= version:  # the newest one built
                self._cached = (version, snap, time.monotonic())
        return snap


def _steps_frame(rows: list[Row]) -> pd.DataFrame:
    """Rows -> DataFrame sorted by step, base columns first, numeric dtypes."""
    if not rows:
        frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in BASE_COLUMNS + GROUP_COLUMNS})
        ints = {"step": "int64", "epoch": "int64", "tokens": "int64", "clipped": "bool"}
        return frame.astype(ints)
    frame = pd.DataFrame.from_records(rows)
    frame = frame.drop_duplicates("step", keep="last").sort_values("step", kind="stable")
    return frame.reset_index(drop=True)


def _epochs_frame(epochs: list[EpochRecord]) -> pd.DataFrame:
    """EpochRecords -> DataFrame (val_perplexity None -> NaN)."""
    names = [f.name for f in fields(EpochRecord)]
    if not epochs:
        frame = pd.DataFrame({n: pd.Series(dtype="float64") for n in names})
        texts = {"greedy_text": object, "sampled_text": object}
        return frame.astype({"epoch": "int64", "step": "int64", **texts})
    frame = pd.DataFrame([asdict(e) for e in epochs], columns=names)
    frame["val_perplexity"] = pd.to_numeric(frame["val_perplexity"], errors="coerce")
    return frame.astype({"val_perplexity": "float64"})


def _events_frame(events: list[tuple[int, str, float]]) -> pd.DataFrame:
    """Events -> DataFrame with columns step (int), kind (str), value (float, NaN = off)."""
    return pd.DataFrame(
        {
            "step": np.array([e[0] for e in events], dtype=np.int64),
            "kind": pd.Series([e[1] for e in events], dtype=object),
            "value": np.array([e[2] for e in events], dtype=np.float64),
        }
    )


def _flow_arrays(flows: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Gradient-flow rows (step, (3, T)) -> steps (K,) and a (3, K, T_max) array, padded with
    NaN: grad_flow, grad_flow_last, grad_flow_late."""
    if not flows:
        return np.zeros(0, dtype=np.int64), np.zeros((3, 0, 0), dtype=np.float64)
    steps = np.array([s for s, _ in flows], dtype=np.int64)
    width = max(f.shape[1] for _, f in flows)
    flow = np.full((3, len(flows), width), np.nan)
    for i, (_, f) in enumerate(flows):
        flow[:, i, : f.shape[1]] = f
    order = np.argsort(steps, kind="stable")
    return steps[order], flow[:, order]
