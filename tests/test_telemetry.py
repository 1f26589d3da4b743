"""Tests of the bounded, thread-safe telemetry store (synthetic records, no training)."""

from __future__ import annotations

import ast
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from gru_core.run import telemetry
from gru_core.run.records import PARAM_GROUPS, EpochRecord, GateStats, StepRecord
from gru_core.run.telemetry import BASE_COLUMNS, Snapshot, Telemetry, gate_names

GATES = {g: GateStats(0.5, (0.05, 0.25, 0.5, 0.75, 0.95), 0.1) for g in ("Z", "R", "H_tilde")}
PARAMS = dict.fromkeys(("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h"), 0.1)
PARAMS |= {"W_hq": 0.2, "b_q": 0.05}


def make_step(
    step: int,
    grad_norm: float = 1.0,
    clip: float | None = 1.0,
    flow: tuple[float, ...] | None = None,
    params: dict[str, float] | None = None,
    epoch: int = 1,
) -> StepRecord:
    """A synthetic StepRecord; records share their (frozen) gate and parameter dicts."""
    clipped = clip is not None and grad_norm > clip
    return StepRecord(
        step=step,
        epoch=epoch,
        loss=2.0,
        perplexity=math.exp(2.0),
        grad_norm=grad_norm,
        grad_norm_clipped=clip if clipped else grad_norm,
        clipped=clipped,
        clip_threshold=clip,
        lr=1.0,
        param_grad_norms=PARAMS if params is None else params,
        update_ratio=1e-3,
        gates=GATES,
        grad_flow=flow,
        tokens=32 * 35,
    )


def make_epoch(epoch: int, val: float | None = 10.0) -> EpochRecord:
    """A synthetic EpochRecord ending at step 10 * epoch."""
    return EpochRecord(epoch, 10 * epoch, 12.0, val, 5e4, "time traveller ", "the", 1.0 * epoch)


def test_empty_snapshot_has_base_columns() -> None:
    snap = Telemetry().snapshot()
    assert isinstance(snap, Snapshot)
    assert snap.steps.empty and set(BASE_COLUMNS) <= set(snap.steps.columns)
    assert snap.epochs.empty and "val_perplexity" in snap.epochs.columns
    assert list(snap.events.columns) == ["step", "kind", "value"] and snap.events.empty
    assert snap.flow_steps.shape == (0,) and snap.flow.shape[0] == 0
    assert snap.probe is None and snap.last_step is None and snap.last_epoch is None
    assert snap.total_steps == 0 and gate_names(snap) == []


def test_columns_dtypes_and_clip_off_is_nan() -> None:
    tel = Telemetry()
    tel.add_step(make_step(1, grad_norm=5.0, clip=1.0))
    tel.add_step(make_step(2, grad_norm=0.5, clip=None))
    steps = tel.snapshot().steps
    assert list(steps["step"]) == [1, 2]
    assert steps["clipped"].dtype == bool and list(steps["clipped"]) == [True, False]
    assert steps["clip_threshold"].iloc[0] == 1.0 and math.isnan(steps["clip_threshold"].iloc[1])
    assert steps["grad_norm_clipped"].iloc[0] == 1.0
    for column in steps.columns:
        assert np.issubdtype(steps[column].dtype, np.number) or steps[column].dtype == bool
    for suffix in ("mean", "p5", "p25", "p50", "p75", "p95", "sat"):
        assert f"Z:{suffix}" in steps.columns
    assert steps["H_tilde:p95"].iloc[0] == 0.95 and "gnorm:W_hz" in steps.columns
    assert gate_names(tel.snapshot()) == ["Z", "R", "H_tilde"]


def test_group_norms_are_l2_over_parameters() -> None:
    params = {"W_xz": 1.0, "W_xr": 2.0, "W_xh": 2.0, "W_hz": 3.0, "W_hr": 4.0, "W_hq": 6.0}
    params["b_q"] = 8.0
    tel = Telemetry()
    tel.add_step(make_step(1, params=params))
    row = tel.snapshot().steps.iloc[0]
    assert row["group:input weights"] == pytest.approx(3.0)
    assert row["group:recurrent weights"] == pytest.approx(5.0)
    assert row["group:output layer"] == pytest.approx(10.0)
    assert row["group:biases"] == 0.0  # no bias given: present and NaN-free
    assert all(f"group:{g}" in row.index for g in PARAM_GROUPS)


def test_epochs_thinned_like_steps_and_val_none_is_nan() -> None:
    """Epochs were all kept; now (issue 24) a long run keeps ``epochs`` of them: the first
    tenth, the latest 40% in full, the rest thinned; the count stays fixed once full."""
    tel = Telemetry(epochs=1000)
    for e in range(1, 3001):
        tel.add_epoch(make_epoch(e, val=None if e % 2 else 9.0))
        if e == 1000:
            assert list(tel.snapshot().epochs["epoch"]) == list(range(1, 1001))
    snap = tel.snapshot()
    epochs = snap.epochs["epoch"].to_numpy()
    assert len(epochs) == 1000 and np.all(np.diff(epochs) > 0)
    assert set(range(1, 101)) | set(range(2601, 3001)) <= set(epochs.tolist())
    assert list(snap.epochs["val_perplexity"].isna()) == list(epochs % 2 == 1)
    assert snap.epochs["greedy_text"].iloc[-1] == "time traveller "
    assert snap.last_epoch == make_epoch(3000, val=9.0)


def test_events_keep_order_and_none_means_off() -> None:
    tel = Telemetry()
    tel.add_event(10, "clip_threshold", 0.1)
    tel.add_event(20, "lr", 0.5)
    tel.add_event(30, "clip_threshold", None)
    events = tel.snapshot().events
    assert list(events["step"]) == [10, 20, 30]
    assert list(events["kind"]) == ["clip_threshold", "lr", "clip_threshold"]
    assert events["value"].iloc[1] == 0.5 and math.isnan(events["value"].iloc[2])


def test_flow_rows_padded_with_nan() -> None:
    tel = Telemetry()
    tel.add_step(make_step(1, flow=(1.0, 2.0, 3.0)))
    tel.add_step(make_step(2))
    tel.add_step(make_step(3, flow=(1.0, 2.0, 3.0, 4.0, 5.0)))
    snap = tel.snapshot()
    assert list(snap.flow_steps) == [1, 3] and snap.flow_steps.dtype.kind == "i"
    assert snap.flow.shape == (2, 5)
    assert np.isnan(snap.flow[0, 3:]).all() and snap.flow[1, 4] == 5.0


def test_flow_rows_bounded() -> None:
    tel = Telemetry(flow_rows=40, flow_cap=60)
    for s in range(1, 5001):
        tel.add_step(make_step(s, flow=(1.0, 2.0)))
    steps = tel.snapshot().flow_steps
    assert len(steps) <= 60
    assert list(steps[-40:]) == list(range(4961, 5001))
    assert np.all(np.diff(steps) > 0)


def test_probe_is_copied_read_only_and_latest() -> None:
    tel = Telemetry()
    z = np.zeros((4, 3))
    tel.set_probe(5, "time", {"Z": z})
    z[:] = 1.0  # the writer reusing its buffer must not change the stored probe
    probe = tel.snapshot().probe
    assert probe is not None and probe["step"] == 5 and probe["text"] == "time"
    assert probe["gates"]["Z"].sum() == 0.0 and not probe["gates"]["Z"].flags.writeable
    tel.set_probe(6, "trav", {"Z": np.ones((4, 3))})
    assert tel.snapshot().probe["step"] == 6
    with pytest.raises(ValueError, match="expected"):
        tel.set_probe(7, "x", {"Z": np.ones(4)})


def test_clear_forgets_everything() -> None:
    tel = Telemetry()
    tel.add_step(make_step(1, flow=(1.0,)))
    tel.add_epoch(make_epoch(1))
    tel.add_event(1, "lr", 0.1)
    tel.clear()
    snap = tel.snapshot()
    assert snap.total_steps == 0 and snap.steps.empty and snap.epochs.empty
    assert snap.events.empty and snap.flow.size == 0 and snap.last_step is None


def test_snapshot_is_cached_until_next_write() -> None:
    tel = Telemetry()
    tel.add_step(make_step(1))
    first = tel.snapshot()
    assert tel.snapshot() is first
    tel.add_step(make_step(2))
    assert tel.snapshot() is not first and len(tel.snapshot().steps) == 2


def test_a_watcher_may_take_a_recent_snapshot_while_the_run_moves_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """snapshot(max_age) returns the last one built if it is young enough, even after new
    writes; a snapshot is kept even when writes came while it was being built."""
    clock = [100.0]
    monkeypatch.setattr("gru_core.run.telemetry.time.monotonic", lambda: clock[0])
    tel = Telemetry()
    tel.add_step(make_step(1))
    owner = tel.snapshot()
    tel.add_step(make_step(2))
    clock[0] += 1.5
    assert tel.snapshot(max_age=2.0) is owner  # a watcher shares the owner's
    assert tel.snapshot(max_age=1.0) is not owner  # too old for this one
    fresh = tel.snapshot()
    assert len(fresh.steps) == 2 and tel.snapshot(max_age=2.0) is fresh
    # A fast run writes while the frames are built: the snapshot is still kept for others.
    frames = telemetry._steps_frame

    def racing(columns: dict) -> object:
        tel.add_step(make_step(len(columns["step"]) + 1))
        return frames(columns)

    tel.add_step(make_step(3))
    monkeypatch.setattr(telemetry, "_steps_frame", racing)
    raced = tel.snapshot()
    monkeypatch.setattr(telemetry, "_steps_frame", frames)
    assert len(raced.steps) == 3 and tel.snapshot(max_age=2.0) is raced
    assert len(tel.snapshot().steps) == 4


def test_100k_step_run_stays_bounded_and_keeps_landmarks() -> None:
    head, recent, middle, spikes = 500, 1500, 1500, 100
    tel = Telemetry(head=head, recent=recent, middle=middle, spikes=spikes)
    n, spike_step = 100_000, 50_001  # odd: the decimated middle would have dropped it
    for s in range(1, n + 1):
        flow = (1.0,) * 35 if s % 10 == 0 else None
        tel.add_step(
            make_step(s, grad_norm=1e6 if s == spike_step else 1.0 + (s % 7) / 100, flow=flow)
        )
    snap = tel.snapshot()
    steps = snap.steps["step"].to_numpy()
    assert snap.total_steps == n and snap.last_step is not None and snap.last_step.step == n
    assert len(steps) <= head + recent + middle + spikes
    assert np.all(np.diff(steps) > 0)
    assert {1, head, spike_step, n} <= set(steps.tolist())
    assert set(range(n - recent + 1, n + 1)) <= set(steps.tolist())  # recent window in full
    assert snap.steps.loc[snap.steps["step"] == spike_step, "grad_norm"].item() == 1e6
    assert len(snap.flow_steps) <= 600 and snap.flow_steps[-1] == n
    assert not snap.steps[[f"group:{g}" for g in PARAM_GROUPS]].isna().any().any()


def test_memory_fixed_and_snapshot_size_independent_of_run_length() -> None:
    """Issue 24: the arrays are sized once; past head + recent + middle steps (and as many
    spikes thinned out), a snapshot holds the same number of rows at any run length."""
    tel = Telemetry(flow_rows=400, flow_cap=600)
    sizes, counts = {}, {}
    for s in range(1, 20_001):
        tel.add_step(
            make_step(s, grad_norm=1.0 + (s % 11) / 10, flow=(1.0,) * 35 if s % 5 == 0 else None)
        )
        if s % 2 == 0:
            tel.add_epoch(make_epoch(s // 2))
        if s in (100, 4000, 20_000):
            snap = tel.snapshot()
            sizes[s] = tel.nbytes()
            counts[s] = (len(snap.steps), len(snap.flow_steps), len(snap.epochs))
    assert sizes[100] == sizes[4000] == sizes[20_000]
    assert counts[100] == (100, 20, 50)
    assert counts[4000] == counts[20_000] == (500 + 1500 + 1500 + 100, 600, 1000)
    steps = tel.snapshot().steps["step"].to_numpy()
    assert steps[0] == 1 and steps[-1] == 20_000 and np.all(np.diff(steps) > 0)
    # 18,000 steps thinned into 1,500 slots: every 8th or 16th (and spikes between)
    middle = steps[(steps > 500) & (steps <= 20_000 - 1500)]
    assert len(middle) == 1500 + 100
    gaps = np.diff(middle[middle % 8 == 0])
    assert gaps.min() >= 8 and gaps.max() <= 16


def test_concurrent_writer_and_reader() -> None:
    tel = Telemetry(head=100, recent=300, middle=300, spikes=20)
    n = 20_000
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for s in range(1, n + 1):
                tel.add_step(make_step(s, flow=(1.0, 2.0) if s % 5 == 0 else None))
                if s % 1000 == 0:
                    tel.add_epoch(make_epoch(s // 1000))
        except BaseException as e:  # noqa: BLE001 - reported to the main thread
            errors.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    snapshots = 0
    last_total = 0
    while writer.is_alive() or snapshots == 0:
        snap = tel.snapshot()
        steps = snap.steps["step"].to_numpy()
        assert np.all(np.diff(steps) > 0)
        assert snap.total_steps >= last_total
        assert len(snap.flow_steps) == snap.flow.shape[0]
        if len(steps):
            assert steps[-1] == snap.last_step.step == snap.total_steps
        last_total = snap.total_steps
        snapshots += 1
    writer.join()
    assert not errors and snapshots > 1
    assert tel.snapshot().total_steps == n and len(tel.snapshot().epochs) == n // 1000


def test_bad_sizes_raise() -> None:
    with pytest.raises(ValueError, match="recent"):
        Telemetry(recent=0)
    with pytest.raises(ValueError, match="flow_cap"):
        Telemetry(flow_rows=400, flow_cap=100)


def imported_modules(path: str) -> set[str]:
    """Top-level names of the modules a source file imports."""
    names = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_gru_core_telemetry_never_imports_streamlit() -> None:
    import gru_core.run.telemetry as module

    imported = imported_modules(module.__file__)
    assert "streamlit" not in imported and "dashboard" not in imported
