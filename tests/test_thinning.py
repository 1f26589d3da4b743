"""Tests of the one "stride doubles when full" thinning (telemetry rows, a sweep's curve)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gru_core.run.columns import Columns, Retention
from gru_core.run.thinning import Curve, Thinning, level


def kept_positions(thinning: Thinning) -> list[int]:
    return [thinning.positions[s] for s in thinning.ordered()]


def test_level_is_the_power_of_two_dividing_the_position() -> None:
    assert [level(n) for n in (1, 2, 3, 4, 6, 8, 12, 1024)] == [0, 1, 0, 2, 1, 3, 2, 10]
    assert level(0) > level(2**62)


def test_slots_fill_then_stay_full_and_keep_multiples_of_the_stride() -> None:
    thinning = Thinning(100)
    for n in range(1, 10_001):
        place = thinning.offer(n)
        assert len(thinning) == min(n, 100)
        assert place.slot is None or 0 <= place.slot < 100
    kept = kept_positions(thinning)
    assert kept == sorted(kept) and len(kept) == 100
    # 10,000 points in 100 slots: strides 64 to 128, the finer one at the newest end
    strides = np.diff(kept)
    assert set(strides.tolist()) <= {64, 128} and strides[-1] <= strides[0]
    assert all(n % 64 == 0 for n in kept)


def test_the_oldest_of_the_lowest_level_goes_first() -> None:
    thinning = Thinning(4)
    for n in (1, 2, 3, 4):
        thinning.offer(n)
    place = thinning.offer(5)  # levels 0,1,0,2 kept; 5 is level 0: the oldest level 0 (1) goes
    assert place.dropped is not None and kept_positions(thinning) == [2, 3, 4, 5]
    place = thinning.offer(6)  # level 1; lowest kept level 0: 3 goes
    assert kept_positions(thinning) == [2, 4, 5, 6]
    assert thinning.positions[place.before] == 2  # the point kept before the dropped one
    place = thinning.offer(7)  # level 0: the oldest level 0 is 5
    assert kept_positions(thinning) == [2, 4, 6, 7]
    place = thinning.offer(8)
    assert kept_positions(thinning) == [2, 4, 6, 8]
    place = thinning.offer(9)  # level 0, below every kept level: dropped itself
    assert place.slot is None and thinning.positions[place.before] == 8
    assert kept_positions(thinning) == [2, 4, 6, 8]


def test_zero_capacity_drops_everything() -> None:
    thinning = Thinning(0)
    assert thinning.offer(1).slot is None and len(thinning) == 0
    with pytest.raises(ValueError, match="capacity"):
        Thinning(-1)


def test_curve_folds_dropped_points_into_exact_bucket_means() -> None:
    curve = Curve(10)
    losses = {s: math.log(1.0 + s % 7) for s in range(1, 1001)}
    for step, loss in losses.items():
        curve.add(step, loss)
    steps, ppl = curve.values()
    assert len(steps) == 10 and list(steps) == sorted(steps) and steps[0] >= 1
    # Every step lands in exactly one bucket: the buckets' weighted means give the overall mean.
    total = sum(losses.values()) / len(losses)
    sizes = np.diff([*kept_bucket_starts(curve), 1001])
    assert sizes.sum() == 1000
    assert np.average(np.log(ppl), weights=sizes) == pytest.approx(total)


def kept_bucket_starts(curve: Curve) -> list[int]:
    thinning = curve._thinning  # noqa: SLF001 - the buckets start at the kept positions
    return [thinning.positions[s] + 1 for s in thinning.ordered()]


def test_retention_reuses_slots_and_keeps_landmarks() -> None:
    keep = Retention(head=3, recent=5, middle=8, spikes=2)
    columns = Columns(keep.size)
    columns.define("step", np.int64, 0)
    columns.define("g", np.float64, math.nan)
    for step in range(1, 2001):
        g = 1e6 if step in (777, 1501) else 1.0
        columns.write(keep.admit(step, g), {"step": step, "g": g})
    kept = keep.kept()
    steps = columns.take(kept)["step"]
    assert len(kept) == 3 + 5 + 8 + 2 == keep.size - 1
    assert np.array_equal(steps, keep.steps[kept]) and np.all(np.diff(steps) > 0)
    assert {1, 2, 3, 777, 1501} | set(range(1996, 2001)) <= set(steps.tolist())
    assert columns.take(kept)["g"][steps == 777] == 1e6


def test_columns_widen_with_fill_and_write_fills_what_a_row_lacks() -> None:
    columns = Columns(3)
    columns.define("flow", np.float64, math.nan, (2, 1))
    columns.write(0, {"flow": np.ones((2, 1))})
    columns.define("flow", np.float64, math.nan, (2, 3))
    assert (
        columns.arrays["flow"][0, 0, 0] == 1.0 and np.isnan(columns.arrays["flow"][0, 0, 1:]).all()
    )
    columns.define("x", np.float64, math.nan)
    columns.write(0, {"x": 2.0})  # reuses the slot: no stale flow left behind
    assert np.isnan(columns.arrays["flow"][0]).all() and columns.arrays["x"][0] == 2.0
