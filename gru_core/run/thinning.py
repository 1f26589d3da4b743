"""Keeping a fixed number of points of a stream that grows without end: the stride doubles
when the slots are full.

``Thinning`` decides which points stay (slot bookkeeping, no data): the telemetry keeps its
rows' values in arrays at the slots it names (``columns.Retention``), and ``Curve`` (a sweep
cell's perplexity curve) folds each dropped point into the one kept before it.

The rule. A point at position n (a step number) has level ``v(n)``, the number of times 2
divides n (n = 0 is above every level). While slots are free every point is kept. Once they
are full, each new point drops the kept point of the lowest level, the oldest among equals,
or itself when its level is below every kept one's. So what stays is the points with
``n % stride == 0``, and the stride doubles as the stream grows, as when every other point
goes at once; but here the stride doubles one point at a time: the slots stay full (the
count of kept points is the same at any length past the first ``capacity``), the newest
points sit at the finer stride, and no kept point moves.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np

from gru_core.perplexity import perplexity

TOP = 64  # the level of position 0 (no step number is divisible by 2**64)


def level(position: int) -> int:
    """How many times 2 divides ``position`` (TOP for 0)."""
    n = abs(int(position))
    return TOP if n == 0 else min(TOP, (n & -n).bit_length() - 1)


class Placement(NamedTuple):
    """What one offer did. ``slot``: where the new point is to be written (None: it was
    dropped itself). ``dropped``: the slot whose point was dropped to make room (its values
    are still there until the new point is written; None when the new point was the one
    dropped, or nothing was). ``before``: the slot of the point kept just before the one
    dropped (None when nothing was dropped or it had none)."""

    slot: int | None
    dropped: int | None
    before: int | None


class Thinning:
    """Which points of a stream, offered in position order, to keep in ``capacity`` slots
    (see the module docstring). An offer costs a few list operations and a look over at
    most 65 levels, whatever the stream's length: no array is scanned or moved."""

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"Thinning capacity={capacity!r}: expected an integer >= 0")
        self.capacity = capacity
        self.positions: list[int] = []  # per slot: the position of the point kept there
        self._levels: list[deque[int]] = [deque() for _ in range(TOP + 1)]  # oldest first
        self._prev: list[int] = []  # per slot: the slot kept just before (-1: none)
        self._next: list[int] = []  # per slot: the slot kept just after (-1: none)
        self._first = self._last = -1

    def __len__(self) -> int:
        """Slots in use (== capacity once the stream outgrew it)."""
        return len(self.positions)

    def offer(self, position: int) -> Placement:
        """Offer the next point (positions in non-decreasing order)."""
        lv = level(position)
        if len(self.positions) < self.capacity:
            slot = len(self.positions)
            self.positions.append(position)
            self._prev.append(-1)
            self._next.append(-1)
            self._link(slot, lv)
            return Placement(slot, None, None)
        if self.capacity == 0:
            return Placement(None, None, None)
        low = next(i for i, slots in enumerate(self._levels) if slots)
        if lv < low:  # finer than every kept point: the new one goes
            return Placement(None, None, self._last)
        slot = self._levels[low].popleft()
        before = self._prev[slot]
        self._unlink(slot)
        self.positions[slot] = position
        self._link(slot, lv)
        return Placement(slot, slot, None if before < 0 else before)

    def ordered(self) -> list[int]:
        """The slots in use, oldest point first."""
        out, slot = [], self._first
        while slot >= 0:
            out.append(slot)
            slot = self._next[slot]
        return out

    def _link(self, slot: int, lv: int) -> None:
        """Append ``slot`` as the newest kept point, of level ``lv``."""
        self._levels[lv].append(slot)
        self._prev[slot], self._next[slot] = self._last, -1
        if self._last >= 0:
            self._next[self._last] = slot
        else:
            self._first = slot
        self._last = slot

    def _unlink(self, slot: int) -> None:
        """Take ``slot`` out of the time order (its level queue already let it go)."""
        before, after = self._prev[slot], self._next[slot]
        if before >= 0:
            self._next[before] = after
        else:
            self._first = after
        if after >= 0:
            self._prev[after] = before
        else:
            self._last = before


class Curve:
    """At most ``points`` (step, perplexity) points over any number of steps, each the
    geometric mean of the batch perplexities of consecutive steps (the exp of their mean
    loss) at their mean step: a point that ``Thinning`` drops is folded into the one kept
    before it. Steps are 1, 2, 3, ... (step 1 is never dropped)."""

    def __init__(self, points: int) -> None:
        self._thinning = Thinning(points)
        self._sums = np.zeros((points, 3))  # per slot: sum of steps, sum of losses, count

    def add(self, step: int, loss: float) -> None:
        place = self._thinning.offer(step - 1)
        sums = self._sums
        if place.dropped is not None and place.before is not None:
            sums[place.before] += sums[place.dropped]
        if place.slot is None:
            if place.before is not None:
                sums[place.before] += (step, loss, 1.0)
        else:
            sums[place.slot] = (step, loss, 1.0)

    def values(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The curve's steps and perplexities, in step order."""
        rows = self._sums[self._thinning.ordered()]
        steps = rows[:, 0] / rows[:, 2]
        logs = rows[:, 1] / rows[:, 2]
        return tuple(steps.tolist()), tuple(perplexity(v) for v in logs.tolist())
