r"""The step's statistics buffer: a (K, S) device tensor with a named column layout, and the
gate statistics computed on the device.

Every number a ``StepRecord`` needs is written by the step into one row per configuration,
so the host can copy the whole buffer at once, one step late, without a sync inside the step.
Columns (``StatsLayout.columns``), per configuration k:

- ``loss``, ``grad_norm`` (global L2 norm before clipping), ``grad_norm_clipped``,
  ``clipped`` (1/0), ``clip_threshold`` (+inf = off), ``lr``, ``weight_norm`` (after the
  update), ``diverged`` (1 once a loss or norm was not finite: sticky);
- ``gnorm:<name>``: each parameter's gradient norm, pre-clip;
- ``<gate>:mean``, ``<gate>:p5`` .. ``<gate>:p95``, ``<gate>:sat`` per gate (GATE_SUFFIXES);
- ``flow:t``, ``flow_last:t``, ``flow_late:t`` for t = 1..T: ``||dL/dH_t||``,
  ``||d l_T / dH_t||``, ``||d l_late / dH_t||`` (NaN on steps that record no flow).

Gate statistics (as the records always took them): over every k-th sequence of the batch, k
chosen so at most ``SAMPLE_VALUES`` values per gate and configuration are read; percentiles
from a 1000-bin histogram over the gate's range (``gates.GATES``), linearly interpolated in
the cumulative counts (exact to 0.001 for sigmoid gates, 0.002 for tanh-valued ones);
saturation by the registry's rule, counted on the bins' centres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from .gates import GATES
from .records import PERCENTILES

SAMPLE_VALUES = 36_000  # at most this many values per gate feed the statistics
HIST_BINS = 1000  # resolution of the gate percentiles: 0.001 (sigmoid) / 0.002 (tanh)
HEAD = (
    "loss",
    "grad_norm",
    "grad_norm_clipped",
    "clipped",
    "clip_threshold",
    "lr",
    "weight_norm",
    "diverged",
)
GATE_SUFFIXES = ("mean", *(f"p{p}" for p in PERCENTILES), "sat")
FLOWS = ("flow", "flow_last", "flow_late")


@dataclass(frozen=True)
class StatsLayout:
    """Where each statistic lives in a (K, S) stats row; see the module docstring."""

    params: tuple[str, ...]  # parameter names, in the step's order
    gates: tuple[str, ...]  # gate names ('Z', 'R', 'H_tilde'; none for the RNN)
    num_steps: int  # T

    @cached_property
    def columns(self) -> tuple[str, ...]:
        cols = [*HEAD, *(f"gnorm:{n}" for n in self.params)]
        cols += [f"{g}:{s}" for g in self.gates for s in GATE_SUFFIXES]
        cols += [f"{f}:{t}" for f in FLOWS for t in range(1, self.num_steps + 1)]
        return tuple(cols)

    @cached_property
    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.columns)}

    @property
    def width(self) -> int:
        return len(self.columns)

    def span(self, first: str, count: int) -> slice:
        start = self.index[first]
        return slice(start, start + count)


class GateTable:
    """Per-gate constants on the device: histogram edges and saturated-bin masks."""

    def __init__(self, names: tuple[str, ...], device: str, dtype: torch.dtype) -> None:
        self.names = names
        self.ranges = [GATES[n].range for n in names]
        edges, masks = [], []
        for name, (lo, hi) in zip(names, self.ranges, strict=True):
            e = np.linspace(lo, hi, HIST_BINS + 1)
            centres = (e[:-1] + e[1:]) / 2  # a bin is saturated when its centre is
            edges.append(e)
            masks.append(GATES[name].saturated(centres).astype(np.float64))
        self.edges = torch.tensor(np.array(edges), dtype=dtype, device=device)  # (G, bins+1)
        self.sat = torch.tensor(np.array(masks), dtype=dtype, device=device)  # (G, bins)
        self.p = torch.tensor([p / 100 for p in PERCENTILES], dtype=dtype, device=device)

    def stats(self, gates: dict[str, Tensor], acc: torch.dtype) -> Tensor:
        """(K, G * len(GATE_SUFFIXES)) statistics of gates given as (T, K, B, H) tensors."""
        parts = [
            self._one(gates[n], i, lo, hi, acc)
            for i, (n, (lo, hi)) in enumerate(zip(self.names, self.ranges, strict=True))
        ]
        return torch.cat(parts, dim=1)

    def _one(self, gate: Tensor, i: int, lo: float, hi: float, acc: torch.dtype) -> Tensor:
        T, K, B, H = gate.shape
        stride = max(1, math.ceil(T * B * H / SAMPLE_VALUES))
        g = gate[:, :, ::stride].transpose(0, 1).reshape(K, -1).to(torch.float32)
        mean = g.mean(dim=1, keepdim=True).to(acc)
        # histc's binning: bin = floor((v - lo) / (hi - lo) * bins), v == hi in the last bin
        bins = ((g - lo) / (hi - lo) * HIST_BINS).long().clamp_(0, HIST_BINS - 1)
        hist = torch.zeros(K, HIST_BINS, dtype=acc, device=g.device)
        hist.scatter_add_(1, bins, torch.ones_like(g, dtype=acc))
        n = hist.sum(dim=1, keepdim=True).clamp_min(1.0)
        cdf = torch.cat([hist.new_zeros(K, 1), hist.cumsum(dim=1)], dim=1) / n  # (K, bins+1)
        # Linear interpolation of the inverse CDF (numpy.interp(p, cdf, edges)).
        p = self.p.to(acc).expand(K, -1).contiguous()
        j = torch.searchsorted(cdf, p, right=True).clamp_(1, HIST_BINS)
        x0, x1 = cdf.gather(1, j - 1), cdf.gather(1, j)
        edges = self.edges[i].to(acc)
        e0, e1 = edges[j - 1], edges[j]
        frac = ((p - x0) / (x1 - x0).clamp_min(torch.finfo(acc).tiny)).clamp_(0.0, 1.0)
        pct = e0 + frac * (e1 - e0)
        sat = (hist @ self.sat[i].to(acc))[:, None] / n
        return torch.cat([mean, pct, sat], dim=1)
