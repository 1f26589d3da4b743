"""What a trainability map sweeps: two axes of knobs, seeds, models, and how it is split up.

A ``SweepSpec`` names two axes chosen from ``AXES`` (init std, clip threshold theta, learning
rate, sequence length T and hidden size), a list of values for each (log ladders by default:
``default_values``; ``None`` on the clip axis means clipping off, shown as 'off'; T and the
hidden size take integers), a ``TrainConfig`` ``base`` that fixes every other setting,
1-3 seeds per cell (``base.seed``, ``base.seed + 1``, ...) and the models to map side by
side. Every cell is the config ``base.replace(model=m, x_axis=x, y_axis=y,
seed=s)``: validated as TrainConfig validates it, so the errors name the field.

**Groups: one shape and one seed.** The sweep trains the cells of a group at once as one
K-axis ``StepCore``, whose members all read the same minibatch. A single ``Trainer`` run
draws its minibatch order (the sequential iterator's offset each epoch, the random one's
shuffle) from ``random.Random(config.seed)``, so two cells with different seeds would not
see the same minibatches. Grouping by (shape, seed) keeps the promise that *a cell equals the
single run of its config and seed*: within a group every member's data order is the one its
own single run would draw, and each member draws its weights from its own generator seeded
with that same seed. Cells whose shapes differ (``step.SHAPE_FIELDS``: the model, and the hidden
size or T when one is an axis) cannot share a core either: each shape is its own group, with
its own memory estimate.

**Chunks: what fits.** A group of K cells needs ``limits.estimate_bytes(config, V, K)``;
``plan`` splits each group into chunks of at most as many members as fit the memory budget
(``limits.budget_bytes``, GRU_LAB_MEMORY_BUDGET_MB) and, when asked (``max_members``, for
Ray), no more than that. Members are independent, so chunking changes no result. A sweep is
refused only when a single cell does not fit, with the estimate and the budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product

from gru_core.config import MODELS, NUMERIC_RANGES, TrainConfig
from gru_core.i18n import N_, _, format_number
from gru_core.limits import BUDGET_ENV, budget_bytes, estimate_bytes
from gru_core.step.core import SHAPE_FIELDS
from gru_core.step.validation import val_bytes

AXES = ("init_std", "clip_threshold", "lr", "num_steps", "hidden_size")
AXIS_TITLES = {  # marked for the catalogue; the map page words them: _(AXIS_TITLES[axis])
    "init_std": N_("init std"), "clip_threshold": N_("clip θ"), "lr": N_("learning rate"),
    "num_steps": N_("sequence length T"), "hidden_size": N_("hidden size"),
}  # fmt: skip
INT_AXES = frozenset({"num_steps", "hidden_size"})  # shapes: integer values, their own groups
BACKENDS = ("local", "ray")
MAX_SEEDS = 3
MAX_VALUES = 16  # values per axis: a 16 x 16 map is already 256 runs per seed
# Log ladders the default values are drawn from: (low, high), both included.
LADDER_SPANS = {
    "init_std": (1e-3, 1.0), "clip_threshold": (0.1, 10.0), "lr": (0.1, 100.0),
    "num_steps": (35, 280), "hidden_size": (32, 256),
}  # fmt: skip

Value = float | int | None  # an axis value; None only on the clip axis (clipping off)


def log_ladder(low: float, high: float, n: int, integer: bool = False) -> tuple[Value, ...]:
    """n values spaced evenly in log10 from low to high, rounded to 2 significant digits
    (to whole numbers, without repeats, when ``integer``: 32, 64, 128, 256)."""
    step = math.log10(high / low) / (n - 1) if n > 1 else 0.0
    exact = [10 ** (math.log10(low) + i * step) for i in range(n)]
    if integer:
        return tuple(dict.fromkeys(int(round(v)) for v in exact))
    return tuple(float(f"{v:.2g}") for v in exact)


def default_values(axis: str, n: int = 4) -> tuple[Value, ...]:
    """A log ladder of ``n`` values for ``axis`` (``LADDER_SPANS``); the clip axis ends with
    None (off): 4 values give init std 0.001..1, clip 0.1, 1, 10, off, lr 0.1..100,
    T 35, 70, 140, 280 and hidden size 32, 64, 128, 256."""
    check_axis("axis", axis)
    if not 1 <= n <= MAX_VALUES:
        raise ValueError(
            _("n={n!r} must be an integer in [1, {most}]").format(n=n, most=MAX_VALUES)
        )
    if axis == "clip_threshold":
        return (*log_ladder(*LADDER_SPANS[axis], n - 1), None) if n > 1 else (None,)
    return log_ladder(*LADDER_SPANS[axis], n, integer=axis in INT_AXES)


def axis_label(value: Value) -> str:
    """How an axis value reads on a chart or in a table: '0.01', '10', 'off' (clip None)."""
    return "off" if value is None else f"{value:g}"


def check_axis(name: str, axis: object) -> None:
    if axis not in AXES:
        raise ValueError(
            _("{name}={value!r} is not one of {choices}").format(
                name=name, value=axis, choices=", ".join(AXES)
            )
        )


def parse_values(axis: str, text: str) -> tuple[Value, ...]:
    """'0.001,0.01,off' -> (0.001, 0.01, None); 'off'/'none' only on the clip axis;
    '35,70' -> (35, 70) on the integer axes (T, hidden size)."""
    values: list[Value] = []
    for part in (p.strip() for p in text.split(",")):
        if axis == "clip_threshold" and part.lower() in ("off", "none"):
            values.append(None)
            continue
        try:
            values.append(axis_value(axis, float(part)))
        except ValueError as exc:
            raise ValueError(
                _("{axis}: {part!r} is not {kind} ({why})").format(
                    axis=axis, part=part, kind=_kind(axis), why=exc
                )
            ) from None
    return tuple(values)


def _bad(message: str, **fields: object) -> ValueError:
    """A ValueError with ``message`` (an id marked N_) in the language in force."""
    return ValueError(_(message).format(**fields))


def _kind(axis: str) -> str:
    return _("a whole number") if axis in INT_AXES else _("a number")


def axis_value(axis: str, value: object) -> Value:
    """``value`` as ``axis`` holds it: None (clip off), an int on T and hidden size (35.0 ->
    35; ValueError for 35.5), else a float. For values read back from a chart or a URL."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            _("{axis}={value!r} must be {kind}").format(axis=axis, value=value, kind=_kind(axis))
        )
    if axis in INT_AXES:
        if not float(value).is_integer():
            raise ValueError(
                _("{axis}={value!r} must be {kind}").format(
                    axis=axis, value=value, kind=_("a whole number")
                )
            )
        return int(value)
    return float(value)


@dataclass(frozen=True)
class Cell:
    """One run of the sweep: a point of the map for one model and one seed."""

    model: str
    x: Value  # the x axis value
    y: Value  # the y axis value
    seed: int
    config: TrainConfig  # base with the model, both axis values and the seed applied

    @property
    def key(self) -> tuple[str, Value, Value, int]:
        return (self.model, self.x, self.y, self.seed)


@dataclass(frozen=True)
class SweepSpec:
    """A trainability map (see the module docstring). Validated on construction."""

    x_axis: str = "init_std"  # one of AXES
    x_values: tuple[Value, ...] = default_values("init_std")  # columns of the map
    y_axis: str = "clip_threshold"  # one of AXES, not x_axis
    y_values: tuple[Value, ...] = default_values("clip_threshold")  # rows of the map
    base: TrainConfig = field(default_factory=TrainConfig)  # every other setting
    seeds: int = 1  # runs per cell, 1..3: seeds base.seed, base.seed + 1, ...
    models: tuple[str, ...] = ("gru",)  # one map per model, side by side
    target_perplexity: float = 10.0  # steps_to_target: the first epoch at or below this
    eval_every: int = 1  # epochs between validation perplexities (and always the last)
    backend: str = "local"  # 'local' (one process) or 'ray'

    def __post_init__(self) -> None:
        check_axis("x_axis", self.x_axis)
        check_axis("y_axis", self.y_axis)
        if self.x_axis == self.y_axis:
            raise ValueError(
                _("x_axis and y_axis are both {axis!r}: choose two axes").format(axis=self.x_axis)
            )
        if not isinstance(self.base, TrainConfig):
            raise ValueError(_("base={base!r} must be a TrainConfig").format(base=self.base))
        for name in ("x", "y"):
            object.__setattr__(self, f"{name}_values", self._check_values(name))
        seeds = self.seeds
        if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
            raise ValueError(
                _("seeds={seeds!r} must be an integer in [1, {most}]").format(
                    seeds=self.seeds, most=MAX_SEEDS
                )
            )
        top = self.base.seed + self.seeds - 1
        if top > NUMERIC_RANGES["seed"][1]:
            raise ValueError(
                _("seeds={seeds} from base seed {seed} passes {top}").format(
                    seeds=self.seeds, seed=self.base.seed, top=top
                )
            )
        models = tuple(self.models) if not isinstance(self.models, str) else (self.models,)
        if not models or len(set(models)) != len(models) or not set(models) <= set(MODELS):
            raise ValueError(
                _("models={models!r} must be distinct names from {choices}").format(
                    models=self.models, choices=", ".join(MODELS)
                )
            )
        object.__setattr__(self, "models", models)
        t = self.target_perplexity
        if isinstance(t, bool) or not isinstance(t, int | float) or not 1 <= t < math.inf:
            raise ValueError(_("target_perplexity={value!r} must be a number >= 1").format(value=t))
        every = self.eval_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(_("eval_every={value!r} must be an integer >= 1").format(value=every))
        if self.backend not in BACKENDS:
            raise ValueError(
                _("{name}={value!r} is not one of {choices}").format(
                    name="backend", value=self.backend, choices=", ".join(BACKENDS)
                )
            )

    def _check_values(self, name: str) -> tuple[Value, ...]:
        """The axis values as a tuple, each checked by TrainConfig (so range errors name the
        axis field), non-empty, without repeats."""
        axis, values = getattr(self, f"{name}_axis"), getattr(self, f"{name}_values")
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise _bad(N_("{name}_values={values!r} must be a list of {axis} values"), **locals())
        values = tuple(values)
        if not values:
            raise _bad(N_("{name}_values is empty: give at least one {axis} value"), **locals())
        if len(values) > MAX_VALUES:
            message = N_("{name}_values has {n} values; at most {most}")
            raise _bad(message, name=name, n=len(values), most=MAX_VALUES)
        if len(set(values)) != len(values):
            raise _bad(N_("{name}_values={values} repeats a value"), name=name, values=list(values))
        out = []
        for i, v in enumerate(values):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                message = N_("{name}_values[{i}]: {axis}={value!r} must be {kind}")
                raise _bad(message, name=name, i=i, axis=axis, value=v, kind=_kind(axis))
            if v is not None and not v > 0:
                message = N_("{name}_values[{i}]: {axis}={value!r} must be positive")
                raise _bad(message, name=name, i=i, axis=axis, value=v)
            try:
                out.append(axis_value(axis, v))
                self.base.replace(**{axis: out[-1]})
            except ValueError as exc:
                raise _bad(N_("{name}_values[{i}]: {why}"), name=name, i=i, why=exc) from None
        return tuple(out)

    # -- what it runs ----------------------------------------------------------------------
    def seed_values(self) -> tuple[int, ...]:
        return tuple(self.base.seed + i for i in range(self.seeds))

    def cells(self) -> list[Cell]:
        """Every run, ordered by model, seed, y, x (the order of the CSV rows)."""
        out = []
        for model, seed, y, x in product(
            self.models, self.seed_values(), self.y_values, self.x_values
        ):
            config = self.base.replace(model=model, seed=seed, **{self.x_axis: x, self.y_axis: y})
            out.append(Cell(model, x, y, seed, config))
        return out

    def groups(self) -> list[list[Cell]]:
        """Cells that can share one StepCore: same shape and same seed (module docstring)."""
        found: dict[tuple, list[Cell]] = {}
        for cell in self.cells():
            key = (*(getattr(cell.config, f) for f in SHAPE_FIELDS), cell.seed)
            found.setdefault(key, []).append(cell)
        return list(found.values())


@dataclass(frozen=True)
class Plan:
    """The chunks a sweep runs as (each one StepCore), with the memory behind the split."""

    chunks: tuple[tuple[Cell, ...], ...]
    estimates: tuple[int, ...]  # bytes each chunk needs (limits.estimate_bytes)
    budget: int  # bytes allowed (limits.budget_bytes)

    def describe(self) -> str:
        sizes = ", ".join(str(len(c)) for c in self.chunks)
        cells = sum(len(c) for c in self.chunks)
        return _(
            "{cells} runs in {chunks} batch(es) of {sizes}; largest needs about "
            "{need} of a {budget} budget"
        ).format(
            cells=cells,
            chunks=len(self.chunks),
            sizes=sizes,
            need=mb(max(self.estimates)),
            budget=mb(self.budget),
        )


def _need(config: TrainConfig, vocab_size: int, k: int) -> int:
    """limits' estimate for k members stepped together, plus validating them together."""
    parts = estimate_bytes(config, vocab_size, configs=k)
    return sum(parts.values()) + val_bytes(config, config.val_tokens, k)


def plan(spec: SweepSpec, vocab_size: int, device: str, max_members: int | None = None) -> Plan:
    """Split every group into chunks that fit the memory budget (and ``max_members``).
    ValueError with the estimate and the budget when one cell alone does not fit."""
    budget = budget_bytes(device)
    chunks, estimates = [], []
    for group in spec.groups():
        config = group[0].config
        one = _need(config, vocab_size, 1)
        if one > budget:
            raise ValueError(
                _(
                    "one run of this sweep ({model}, hidden {hidden}, batch {batch}, T {steps}) "
                    "needs about {need} of memory, over the budget of {budget} on {device}; "
                    "the whole map would need about {total}. Lower the hidden size, batch size "
                    "or sequence length (the budget is set by {env})."
                ).format(
                    model=config.model,
                    hidden=config.hidden_size,
                    batch=config.batch_size,
                    steps=config.num_steps,
                    need=mb(one),
                    budget=mb(budget),
                    device=device,
                    total=mb(_need(config, vocab_size, len(group))),
                    env=BUDGET_ENV,
                )
            )
        per_member = _need(config, vocab_size, 2) - one
        fit = len(group) if per_member <= 0 else 1 + (budget - one) // per_member
        size = max(1, min(len(group), fit, max_members or len(group)))
        count = math.ceil(len(group) / size)
        size = math.ceil(len(group) / count)  # even chunks: 64 over 3 -> 22, 21, 21
        for start in range(0, len(group), size):
            chunk = tuple(group[start : start + size])
            chunks.append(chunk)
            estimates.append(_need(config, vocab_size, len(chunk)))
    return Plan(tuple(chunks), tuple(estimates), budget)


def mb(n: int) -> str:
    """Bytes as '12 MB' (or '1.5 GB')."""
    return f"{format_number(n / 2**20, 0)} MB" if n < 2**30 else f"{format_number(n / 2**30, 1)} GB"
