"""Rows of a run kept in preallocated numpy arrays, one per column, in a fixed number of slots.

``Retention`` decides which rows stay and in which slot (bookkeeping only); ``Columns`` holds
their values. A row is written once, into a free slot, and never moves: a row that is no
longer kept frees its slot for a later one. So memory is fixed from the first row on, and
reading the kept rows in step order costs O(slots), however long the run.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from gru_core.run.thinning import Thinning


class Retention:
    """Which rows of a stream (in step order) stay, in ``size`` slots:

    - ``head``: the first rows (the fast early drop of the loss);
    - ``recent``: the latest rows, in full;
    - ``middle``: rows leaving the recent window, thinned by a doubling stride (``Thinning``:
      the slots stay full, the stride doubles one row at a time);
    - ``spikes``: among the rows the middle drops, those of largest key (a gradient norm: a
      gradient explosion in the middle of a long run stays visible).

    Past ``head + recent + middle`` rows, and ``spikes`` rows dropped from the middle, every
    slot is in use and the count of rows kept stays the same.
    """

    def __init__(self, head: int, recent: int, middle: int, spikes: int = 0) -> None:
        self.size = head + recent + middle + spikes + 1  # the kept rows and the one arriving
        self._caps = (head, recent, spikes)
        self.steps = np.zeros(self.size, dtype=np.int64)  # per slot: its row's step
        self._seq = np.zeros(self.size, dtype=np.int64)  # per slot: order of arrival
        self._kept = np.zeros(self.size, dtype=bool)
        self._free = list(range(self.size - 1, -1, -1))
        self._arrivals = 0
        self._head: list[int] = []
        self._recent: deque[int] = deque()
        self._middle = Thinning(middle)
        self._middle_slots = [0] * middle  # the middle's slot -> this store's slot
        self._spikes: list[tuple[float, int, int]] = []  # min-heap: (key, step, slot)
        self._keys = np.zeros(self.size)  # per slot: its row's spike key

    def admit(self, step: int, key: float = 0.0) -> int:
        """The slot to write the next row to (rows in step order; ``key``: its spike key,
        NaN ranked as the largest). Other rows may leave to make room."""
        slot = self._free.pop()
        self.steps[slot], self._seq[slot] = step, self._arrivals
        self._keys[slot] = math.inf if math.isnan(key) else key
        self._kept[slot] = True
        self._arrivals += 1
        head, recent, _ = self._caps
        if len(self._head) < head:
            self._head.append(slot)
            return slot
        self._recent.append(slot)
        if len(self._recent) > recent:
            self._to_middle(self._recent.popleft())
        return slot

    def kept(self) -> np.ndarray:
        """The slots of the kept rows in step order, one per step (a repeated step number
        keeps its latest row)."""
        slots = np.flatnonzero(self._kept)
        slots = slots[np.lexsort((self._seq[slots], self.steps[slots]))]
        steps = self.steps[slots]
        latest = np.ones(len(slots), dtype=bool)
        latest[:-1] = steps[1:] != steps[:-1]
        return slots[latest]

    def _to_middle(self, slot: int) -> None:
        place = self._middle.offer(int(self.steps[slot]))
        if place.slot is None:
            self._drop(slot)
            return
        if place.dropped is not None:
            self._drop(self._middle_slots[place.dropped])
        self._middle_slots[place.slot] = slot

    def _drop(self, slot: int) -> None:
        """A row the middle let go: kept as a spike, or its slot freed."""
        capacity, gone = self._caps[2], slot
        if capacity:
            entry = (float(self._keys[slot]), int(self.steps[slot]), slot)
            if len(self._spikes) < capacity:
                heapq.heappush(self._spikes, entry)
                return
            if entry[:2] > self._spikes[0][:2]:
                gone = heapq.heapreplace(self._spikes, entry)[2]
        self._kept[gone] = False
        self._free.append(gone)


class Columns:
    """Named columns of ``size`` rows each in preallocated arrays (a column may have more
    axes: a flow's (3, T)). A row writes every column (those it lacks get their fill)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.arrays: dict[str, np.ndarray] = {}
        self._fills: dict[str, Any] = {}

    def define(self, name: str, dtype: Any, fill: Any, shape: tuple[int, ...] = ()) -> None:
        """Add a column (no-op if it exists with this shape); widen a multi-axis one to
        ``shape`` (new cells hold ``fill``)."""
        old = self.arrays.get(name)
        if old is not None and old.shape[1:] == shape:
            return
        array = np.full((self.size, *shape), fill, dtype=dtype)
        if old is not None:
            array[(slice(None), *(slice(0, n) for n in old.shape[1:]))] = old
        self.arrays[name], self._fills[name] = array, fill

    def reorder(self, names: tuple[str, ...]) -> None:
        """Put the columns named in ``names`` first, in that order (the others after)."""
        first = {n: self.arrays[n] for n in names if n in self.arrays}
        self.arrays = first | {n: a for n, a in self.arrays.items() if n not in first}

    def write(self, slot: int, row: Mapping[str, Any]) -> None:
        """Write one row into ``slot``: its values, and the fill where it has none."""
        fills = self._fills
        for name, array in self.arrays.items():
            array[slot] = row.get(name, fills[name])

    def take(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """Copies of the columns at ``slots`` (in that order)."""
        return {name: array[slots] for name, array in self.arrays.items()}
