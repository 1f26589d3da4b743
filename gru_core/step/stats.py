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

This layout is the only list of the statistics' names: ``StepRecord``'s fields, the trainer's
records, the telemetry's columns (``step_columns``) and the dashboard's charts read the names
defined here.

Gate statistics, sampled: every s-th sequence of the batch, the same sequences for every
member, with one budget shared by the K members: ``s = ceil(K * T * B * H / SAMPLE_VALUES)``
(at most B, so each member keeps at least its first sequence). So at most ``SAMPLE_VALUES``
values per gate are read in all, whatever K is: a run (K = 1) reads what the records always
read (every s-th sequence, at most 36,000 values per gate), and each of K members reads
about 1/K of that, ``T * ceil(B / s) * H`` values (a member of a large batch can therefore
differ from its single run by the sampling, not by the maths). Percentiles from a 1000-bin
histogram over the gate's range (``gates.GATES``), linearly interpolated in the cumulative
counts (exact to 0.001 for sigmoid gates, 0.002 for tanh-valued ones); saturation by the
registry's rule, counted on the bins' centres. All of it is device work: the values are
binned with a few elementwise ops into one histogram of all gates and members
(``scatter_add_``), and the percentiles of every gate and member come from one batched search.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from gru_core.model.gates import GATES

SAMPLE_VALUES = 36_000  # at most this many values per gate feed the statistics
HIST_BINS = 1000  # resolution of the gate percentiles: 0.001 (sigmoid) / 0.002 (tanh)

# The step's statistics, one name each: the head of a row, in buffer order. Each is a
# StepRecord field and a steps-table column of the same name (``step_columns``), except the
# ones the host only reads (HOST_ONLY). Adding one here makes it a field, a column and a row
# value (tests/test_schema.py fails until StepRecord has the field).
LOSS = "loss"  # mean cross-entropy over the B*T target tokens
GRAD_NORM = "grad_norm"  # global L2 norm of all gradients before clipping
GRAD_NORM_CLIPPED = "grad_norm_clipped"  # the same after clipping
CLIPPED = "clipped"  # 1 when clipping rescaled the gradients, else 0
CLIP_THRESHOLD = "clip_threshold"  # the threshold in force (+inf = off)
LR = "lr"  # the learning rate in force
WEIGHT_NORM = "weight_norm"  # ||W|| after the update
DIVERGED = "diverged"  # 1 once a loss or norm was not finite (sticky)
HEAD = (LOSS, GRAD_NORM, GRAD_NORM_CLIPPED, CLIPPED, CLIP_THRESHOLD, LR, WEIGHT_NORM, DIVERGED)
HOST_ONLY = (WEIGHT_NORM, DIVERGED)  # read for the update ratio and the guard; not recorded
RECORDED = tuple(name for name in HEAD if name not in HOST_ONLY)
# What the host adds to each recorded row: where it is in the run, and what it derives.
STEP, EPOCH, TOKENS = "step", "epoch", "tokens"  # 1-based step and epoch; B*T target tokens
PERPLEXITY = "perplexity"  # exp(loss)
UPDATE_RATIO = "update_ratio"  # lr * grad_norm_clipped / weight_norm
BASE_COLUMNS = (STEP, EPOCH, *RECORDED, PERPLEXITY, UPDATE_RATIO, TOKENS)
INTEGER_COLUMNS, BOOLEAN_COLUMNS = (STEP, EPOCH, TOKENS), (CLIPPED,)  # the rest are float64
# Percentiles reported for every gate (in percent), and the suffixes of a gate's columns.
PERCENTILES = (5, 25, 50, 75, 95)
MEAN, SATURATED = "mean", "sat"
FLOWS = ("flow", "flow_last", "flow_late")  # StepRecord.grad_<flow>: (T,) per recorded step
# Parameter groups: each one's gradient norm is the L2 norm of its parameters' (param_group).
INPUT_WEIGHTS, RECURRENT_WEIGHTS = "input weights", "recurrent weights"
BIASES, OUTPUT_LAYER = "biases", "output layer"
PARAM_GROUPS = (INPUT_WEIGHTS, RECURRENT_WEIGHTS, BIASES, OUTPUT_LAYER)


def percentile_suffix(p: int) -> str:
    """The suffix of a gate's p-th percentile column: 'p95'."""
    return f"p{p}"


GATE_SUFFIXES = (MEAN, *map(percentile_suffix, PERCENTILES), SATURATED)


def gate_column(gate: str, suffix: str) -> str:
    """A gate statistic's column: 'Z:mean', 'Z:p95', 'Z:sat'."""
    return f"{gate}:{suffix}"


def gnorm_column(param: str) -> str:
    """A parameter's gradient-norm column: 'gnorm:W_hz'."""
    return f"gnorm:{param}"


def group_column(group: str) -> str:
    """A parameter group's gradient-norm column: 'group:recurrent weights'."""
    return f"group:{group}"


def flow_column(flow: str, t: int) -> str:
    """The stats-buffer column of one flow (FLOWS) at time step t (1-based): 'flow:35'."""
    return f"{flow}:{t}"


def param_group(name: str) -> str:
    """Which of PARAM_GROUPS a parameter belongs to, from its mathematical name:
    W_hq/b_q -> output layer, b_* -> biases, W_x* -> input weights, W_h* -> recurrent."""
    if name in ("W_hq", "b_q"):
        return OUTPUT_LAYER
    if name.startswith("b_"):
        return BIASES
    if name.startswith("W_x"):
        return INPUT_WEIGHTS
    return RECURRENT_WEIGHTS


def step_columns(params: Iterable[str], gates: Iterable[str]) -> tuple[str, ...]:
    """The columns of a table of recorded steps (``Telemetry``'s frame, saved runs), derived
    from the layout: BASE_COLUMNS, a gradient norm per parameter and per group, and the
    GATE_SUFFIXES of every gate. The one place these names are made."""
    cols = [*BASE_COLUMNS, *(gnorm_column(p) for p in params)]
    cols += [group_column(g) for g in PARAM_GROUPS]
    cols += [gate_column(g, s) for g in gates for s in GATE_SUFFIXES]
    return tuple(cols)


@dataclass(frozen=True)
class StatsLayout:
    """Where each statistic lives in a (K, S) stats row; see the module docstring."""

    params: tuple[str, ...]  # parameter names, in the step's order
    gates: tuple[str, ...]  # gate names ('Z', 'R', 'H_tilde'; none for the RNN)
    num_steps: int  # T

    @cached_property
    def columns(self) -> tuple[str, ...]:
        cols = [*HEAD, *(gnorm_column(n) for n in self.params)]
        cols += [gate_column(g, s) for g in self.gates for s in GATE_SUFFIXES]
        cols += [flow_column(f, t) for f in FLOWS for t in range(1, self.num_steps + 1)]
        return tuple(cols)

    @cached_property
    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.columns)}

    @property
    def step_columns(self) -> tuple[str, ...]:
        """The columns of the recorded steps table these rows become (``step_columns``)."""
        return step_columns(self.params, self.gates)

    @property
    def width(self) -> int:
        return len(self.columns)

    def span(self, first: str, count: int) -> slice:
        start = self.index[first]
        return slice(start, start + count)


class GateTable:
    """Per-gate constants on the device (histogram edges, saturated-bin masks) and the
    buffers the statistics are computed in (kept between steps: no fresh memory per step)."""

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
        self.lo = torch.tensor([lo for lo, _ in self.ranges], dtype=dtype, device=device)
        self.width = (
            torch.tensor([hi for _, hi in self.ranges], dtype=dtype, device=device) - self.lo
        ) / HIST_BINS  # a bin's width per gate
        self._buffers: dict[tuple, Tensor] = {}

    def _buffer(self, name: str, shape: tuple[int, ...], like: Tensor) -> tuple[Tensor, bool]:
        """A buffer kept between calls, and whether it was just made (to fill it once)."""
        key = (name, shape, like.dtype, like.device)
        buf = self._buffers.get(key)
        if buf is not None:
            return buf, False
        buf = self._buffers[key] = like.new_empty(shape)
        return buf, True

    def stats(self, gates: dict[str, Tensor], acc: torch.dtype) -> Tensor:
        """(K, G * len(GATE_SUFFIXES)) statistics of gates given as (T, K, B, H) tensors."""
        G, first = len(self.names), gates[self.names[0]]
        T, K, B, H = first.shape
        stride = min(B, max(1, math.ceil(K * T * B * H / SAMPLE_VALUES)))
        shape = (G, T, K, len(range(0, B, stride)), H)
        x, _ = self._buffer("x", shape, first)
        bins, _ = self._buffer("bins", shape, first.new_empty(0, dtype=torch.long))
        ones, new = self._buffer("ones", (x.numel(),), first)
        if new:
            ones.fill_(1.0)
        # gate i of member k counts into hist[k, i]: bin + offsets[i, k]
        offsets, new = self._buffer("offsets", (G, 1, K, 1, 1), bins)
        if new:
            k_i = torch.arange(K * G, device=bins.device).view(K, G).T  # [i, k] = k * G + i
            offsets.copy_(k_i[:, None, :, None, None]).mul_(HIST_BINS)
        for i, (name, (lo, hi)) in enumerate(zip(self.names, self.ranges, strict=True)):
            g = gates[name][:, :, ::stride]  # (T, K, b, H): every stride-th sequence
            # histc's binning: bin = floor((v - lo) / (hi - lo) * bins), v == hi in the last
            # bin. (hi - lo) is 1 or 2, so (v - lo) * (bins / (hi - lo)) rounds alike.
            torch.sub(g, lo, out=x[i]).mul_(HIST_BINS / (hi - lo))
        means = x.mean(dim=(1, 3, 4)).T.to(acc)  # (K, G), in bin units from lo
        bins.copy_(x).clamp_(0, HIST_BINS - 1)  # copy_ truncates toward zero, as .long()
        hist, _ = self._buffer("hist", (K * G * HIST_BINS,), first)
        hist.zero_().scatter_add_(0, bins.add_(offsets).view(-1), ones)
        counts = hist.view(K, G, HIST_BINS).to(acc)
        n = counts.sum(dim=2, keepdim=True).clamp_min(1.0)
        cdf = torch.cat([counts.new_zeros(K, G, 1), counts.cumsum(dim=2)], dim=2) / n
        # Linear interpolation of the inverse CDF (numpy.interp(p, cdf, edges)).
        p = self.p.to(acc).expand(K, G, -1).contiguous()
        j = torch.searchsorted(cdf, p, right=True).clamp_(1, HIST_BINS)
        x0, x1 = cdf.gather(2, j - 1), cdf.gather(2, j)
        edges = self.edges.to(acc).expand(K, -1, -1)
        e0, e1 = edges.gather(2, j - 1), edges.gather(2, j)
        frac = ((p - x0) / (x1 - x0).clamp_min(torch.finfo(acc).tiny)).clamp_(0.0, 1.0)
        pct = e0 + frac * (e1 - e0)  # (K, G, len(PERCENTILES))
        sat = (counts * self.sat.to(acc)).sum(dim=2, keepdim=True) / n
        mean = (means * self.width.to(acc) + self.lo.to(acc))[..., None]  # back to values
        return torch.cat([mean, pct, sat], dim=2).view(K, -1)
