"""The frozen, validated training configuration.

Defaults are d2l's GRU chapter: hidden 256, weights N(0, 0.01^2), clip at global norm 1,
35 steps, batch 32, lr 1, 500 epochs on the first 10,000 character tokens of The Time Machine.

Every field is checked against its documented range in ``__post_init__``; a bad value raises
``ValueError`` naming the field, the value and the range. Build changed copies with
``dataclasses.replace(cfg, field=value)`` (validated again) or ``TrainConfig.from_dict``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from gru_core.i18n import N_, _, format_int, ngettext

MODELS = ("gru", "rnn", "lstm", "gru_reset_only", "gru_update_only")
# The GRU and its halves (d2l's exercise 4): 'gru_reset_only' fixes Z = 0 (H_t = H_tilde_t),
# 'gru_update_only' fixes R = 1; both run the GRU's step core and hand BPTT, in either
# gru_variant convention (with R = 1 the two conventions differ only by the bias split).
GRU_MODELS = ("gru", "gru_reset_only", "gru_update_only")
# How each model is named on screen, in tables and in a run's name (no commas: a map's URL
# lists models separated by commas). These English titles are identifiers too (widget options,
# saved runs' names); the page shows ``model_title(model)``, in the reader's language.
MODEL_TITLES = {
    "gru": "GRU",
    "rnn": "RNN",
    "lstm": "LSTM",
    "gru_reset_only": N_("GRU (reset gate only)"),
    "gru_update_only": N_("GRU (update gate only)"),
}
GRU_VARIANTS = ("d2l", "cudnn")
SAMPLINGS = ("sequential", "random")
DEVICES = ("auto", "cpu", "cuda", "mps")

# field -> (low, high) inclusive; the single source of truth for ranges (CLI help, UI, errors).
NUMERIC_RANGES: dict[str, tuple[float, float]] = {
    "hidden_size": (1, 4096),
    "init_std": (1e-6, 10.0),
    "clip_threshold": (1e-6, 1e6),
    "num_steps": (1, 2000),
    "batch_size": (1, 4096),
    "lr": (1e-6, 1000.0),
    "num_epochs": (1, 100_000),
    "max_tokens": (100, 10_000_000),
    "val_tokens": (0, 10_000_000),
    "seed": (0, 2**31 - 1),
    "flow_every": (1, 100_000),
    "num_threads": (1, 256),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "model": MODELS,
    "gru_variant": GRU_VARIANTS,
    "sampling": SAMPLINGS,
    "device": DEVICES,
}
INT_FIELDS = {
    "hidden_size",
    "num_steps",
    "batch_size",
    "num_epochs",
    "max_tokens",
    "val_tokens",
    "seed",
    "flow_every",
    "num_threads",
}
# Every TrainConfig field's name in words, as a page names it ('hidden size 256 → 64').
FIELD_NAMES: dict[str, str] = {
    "model": N_("model"),
    "gru_variant": N_("gru variant"),
    "hidden_size": N_("hidden size"),
    "init_std": N_("init std"),
    "clip_threshold": N_("clip threshold"),
    "num_steps": N_("num steps"),
    "batch_size": N_("batch size"),
    "lr": N_("lr"),
    "num_epochs": N_("num epochs"),
    "max_tokens": N_("max tokens"),
    "val_tokens": N_("val tokens"),
    "sampling": N_("sampling"),
    "seed": N_("seed"),
    "device": N_("device"),
    "flow_every": N_("flow every"),
    "num_threads": N_("num threads"),
}
# Fields that may be None, and what None means.
OPTIONAL_FIELDS = {
    "clip_threshold": N_("clipping off"),
    "num_threads": N_("torch's default thread count"),
}


@dataclass(frozen=True)
class LiveKnob:
    """A setting that reaches a running job at its next step, without a restart."""

    name: str  # the TrainConfig field
    label: str  # short label: chart markers and run names ('clip 0.5', 'lr 0.25'); N_-marked
    title: str  # what the status line calls its value in force; N_-marked, shown as _(title)
    off: str | None  # how None reads (None = off), or None where None is not allowed


# The live knobs: the job, the sidebar's live controls, the charts' markers and the saved
# runs' names read this table. Clipping off is None in configs, records, events and CSVs
# (``format_knob`` writes 'off'); only the device tensor holds +inf (``device_clip``), and
# a float column holds NaN where a value is None (a table's missing value).
LIVE_KNOBS: dict[str, LiveKnob] = {
    k.name: k
    for k in (
        LiveKnob("clip_threshold", N_("clip"), N_("Clip θ in force"), N_("off")),
        LiveKnob("lr", N_("lr"), N_("Learning rate in force"), None),
    )
}


def model_title(model: str) -> str:
    """How the page names ``model``, in the language in force; ``MODEL_TITLES[model]`` is the
    same name in English, as identifiers and saved runs write it."""
    return _(MODEL_TITLES[model])


def format_knob(name: str, value: float | None) -> str:
    """How a live knob's value reads everywhere: '0.5', '1e-05', or the knob's 'off' for
    None (and for NaN, a table's None)."""
    off = LIVE_KNOBS[name].off
    if value is None or (off is not None and math.isnan(value)):
        if off is None:
            raise ValueError(_("{name} cannot be None").format(name=name))
        return off
    return f"{value:g}"


def device_clip(clip_threshold: float | None) -> float:
    """The clip threshold as the step's device tensor holds it: +inf for None (off), so
    ``min(1, theta / ||g||)`` is 1 and clipping never applies."""
    return math.inf if clip_threshold is None else float(clip_threshold)


def host_clip(theta: float) -> float | None:
    """The inverse of ``device_clip``: a threshold read back from the device."""
    return None if math.isinf(theta) else theta


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how. Defaults reproduce d2l's from-scratch GRU."""

    model: str = "gru"  # 'gru', 'rnn' (tanh), 'lstm', 'gru_reset_only' or 'gru_update_only'
    gru_variant: str = "d2l"  # 'd2l': reset before W_hh; 'cudnn': reset after W_hh (nn.GRU)
    hidden_size: int = 256  # units in H_t, 1..4096
    init_std: float = 0.01  # weights ~ N(0, init_std^2); biases are zero
    clip_threshold: float | None = 1.0  # global L2 norm cap on all gradients; None = off
    num_steps: int = 35  # sequence length T of each minibatch (truncated BPTT window)
    batch_size: int = 32  # sequences per minibatch B
    lr: float = 1.0  # SGD learning rate
    num_epochs: int = 500  # passes over the training tokens
    max_tokens: int = 10_000  # training slice: the first max_tokens character tokens
    val_tokens: int = 5_000  # held-out slice right after the training slice (0 = none)
    sampling: str = "sequential"  # 'sequential' (state carries over) or 'random' (reset)
    seed: int = 0  # seeds torch's and the iterators' random generators
    device: str = "auto"  # 'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda', 'mps'
    flow_every: int = 10  # record ||dL/dH_t|| for every t on every flow_every-th step
    num_threads: int | None = None  # torch intra-op threads for this run; None = default

    def __post_init__(self) -> None:
        for name in INT_FIELDS:  # 16.0 (from a float widget or JSON) means 16
            value = getattr(self, name)
            if isinstance(value, float) and value.is_integer():
                object.__setattr__(self, name, int(value))
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(
                    _("{name}={value!r} is not one of {choices}").format(
                        name=name, value=value, choices=", ".join(choices)
                    )
                )
        for name, (low, high) in NUMERIC_RANGES.items():
            value = getattr(self, name)
            if value is None and name in OPTIONAL_FIELDS:
                continue
            _check_number(name, value, low, high, integer=name in INT_FIELDS)

    # -- conversions ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a mapping, rejecting unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(_("unknown config field(s): {names}").format(names=", ".join(unknown)))
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _check_number(name: str, value: Any, low: float, high: float, *, integer: bool) -> None:
    not_a_number = isinstance(value, bool) or not isinstance(value, int | float)
    if not_a_number or (integer and not (isinstance(value, int) or float(value).is_integer())):
        raise ValueError(
            _("{name}={value!r} must be {allowed}").format(
                name=name, value=value, allowed=_allowed(name, low, high, integer)
            )
        )
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(
            _("{name}={value!r} is out of range: must be {allowed}").format(
                name=name, value=value, allowed=_allowed(name, low, high, integer)
            )
        )


def _allowed(name: str, low: float, high: float, integer: bool) -> str:
    """'an integer in [1, 4,096]': worded only for a message (a config is made often: a
    saved run's name reads the defaults, and formatting every range cost the page)."""
    kind = _("an integer in [{low}, {high}]") if integer else _("a number in [{low}, {high}]")
    allowed = kind.format(low=_fmt(low), high=_fmt(high))
    if name in OPTIONAL_FIELDS:
        allowed += _(", or None ({meaning})").format(meaning=_(OPTIONAL_FIELDS[name]))
    return allowed


def _fmt(x: float) -> str:
    return format_int(int(x)) if float(x).is_integer() else f"{x:g}"


def field_help(name: str) -> str:
    """A one-line description of a field's range, for CLI help and UI tooltips."""
    if name in CHOICES:
        return _("one of {choices}").format(choices=", ".join(CHOICES[name]))
    low, high = NUMERIC_RANGES[name]
    text = f"{_fmt(low)}..{_fmt(high)}"
    if name in OPTIONAL_FIELDS:
        text += _("; none = {meaning}").format(meaning=_(OPTIONAL_FIELDS[name]))
    return text


def available_devices() -> tuple[str, ...]:
    """The device names that work on this machine: 'auto', 'cpu', then 'cuda' / 'mps'."""
    import torch

    found = ["auto", "cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append("mps")
    return tuple(found)


def resolve_device(name: str) -> str:
    """Map a config device name to a concrete torch device string.

    'auto' picks CUDA, then Apple's MPS, then the CPU. Asking for a device that is not
    available raises ValueError with what is available instead.
    """
    if name not in DEVICES:
        raise ValueError(
            _("{name}={value!r} is not one of {choices}").format(
                name="device", value=name, choices=", ".join(DEVICES)
            )
        )
    found = available_devices()
    if name == "auto":
        return "cuda" if "cuda" in found else "mps" if "mps" in found else "cpu"
    if name not in found:
        why = {
            "cuda": N_("device={name!r} but no CUDA GPU is available; use 'auto' or 'cpu'"),
            "mps": N_("device={name!r} but Apple's MPS is not available; use 'auto' or 'cpu'"),
        }[name]
        raise ValueError(_(why).format(name=name))
    return name


def describe_device(device: str) -> str:
    """Human name for a resolved device: the CUDA card's name, 'Apple MPS' or 'CPU'."""
    import torch

    if device.startswith("cuda"):
        return f"CUDA: {torch.cuda.get_device_name(torch.device(device))}"
    if device == "mps":
        return "Apple MPS"
    n = torch.get_num_threads()
    return ngettext("CPU ({n} thread)", "CPU ({n} threads)", n).format(n=n)
