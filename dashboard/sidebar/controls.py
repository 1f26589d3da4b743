"""The control table: one row per sidebar control, read by the widgets, the URL, the lessons
and the config.

Each ``Control`` holds everything said about a control: its key (the ``st.session_state`` key
and the URL query parameter), label, help, the widget that shows it, its default, and its
allowed values. Bounds and choices come from ``TrainConfig``'s ``NUMERIC_RANGES`` and
``CHOICES`` (a control may show a narrower, classroom-sized part of a range, never a wider
one; a test holds every control to its field). ``config_from_values`` turns the widget values
into a frozen, validated ``TrainConfig``; ``values_from_config`` goes back.

Pure functions and data only (no ``st.*``): ``panel.py`` renders these rows, in the reader's
language (labels, help, sections and option names are English marked ``N_``; ids stay English).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gru_core.config import (
    CHOICES,
    FIELD_NAMES,
    GRU_MODELS,
    LIVE_KNOBS,
    MODEL_TITLES,
    NUMERIC_RANGES,
    TrainConfig,
)
from gru_core.i18n import N_, _

# 1-2-5 ladders for the log-scale sliders.
INIT_STDS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0)
CLIPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
LRS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SPEEDS = ("max", 1, 2, 5, 10, 20, 50)  # steps per second; 'max' = as fast as possible
SLICES = (10_000, 100_000, "all")  # training characters; 'all' = the whole text
ALL_TOKENS = int(NUMERIC_RANGES["max_tokens"][1])
# Display label -> config value, for the choice fields.
MODEL_LABELS = tuple(MODEL_TITLES[m] for m in CHOICES["model"])
MODELS = dict(zip(MODEL_LABELS, CHOICES["model"], strict=True))
GRU_LABELS = tuple(label for label, model in MODELS.items() if model in GRU_MODELS)
VARIANTS = dict(zip(("d2l", "cuDNN"), CHOICES["gru_variant"], strict=True))
SAMPLINGS = CHOICES["sampling"]
DEVICES = CHOICES["device"]

# Widgets: 'slider' (int range), 'number' (int box), 'ladder' (select_slider over options),
# 'toggle' (bool), 'radio' and 'select' (choices).
_KIND = {
    "slider": "int",
    "number": "int",
    "ladder": "ladder",
    "toggle": "bool",
    "radio": "choice",
    "select": "choice",
}


@dataclass(frozen=True)
class Control:
    key: str  # session_state key and URL query parameter name
    label: str
    default: Any
    widget: str  # see _KIND
    field: str | None = None  # the TrainConfig field it sets (None: not a config setting)
    options: tuple[Any, ...] = ()  # ladder rungs or choice labels, in display order
    low: float | None = None  # int widgets: bounds (default: the field's NUMERIC_RANGES)
    high: float | None = None
    step: int = 1  # int widgets
    help: str = ""
    live: bool = False  # reaches a running job at its next step: a field in LIVE_KNOBS, speed
    enabled_if: Callable[[Mapping[str, Any]], bool] | None = None  # greyed out otherwise
    section: str = N_("Training")  # the sidebar heading it sits under
    labels: tuple[tuple[Any, str], ...] = ()  # option -> how the widget shows it (English id)

    def show(self, option: Any) -> str:
        shown = dict(self.labels).get(option, option)
        return _(shown) if isinstance(shown, str) else str(shown)

    @property
    def kind(self) -> str:
        """'int', 'ladder' (numeric options), 'choice' or 'bool': how values parse."""
        return _KIND[self.widget]

    def enabled(self, values: Mapping[str, Any]) -> bool:
        return self.enabled_if is None or self.enabled_if(values)

    def __post_init__(self) -> None:
        if self.field in LIVE_KNOBS:  # gru_core's table says which settings are live
            object.__setattr__(self, "live", True)


def _range(field: str, low: float | None = None, high: float | None = None) -> dict[str, float]:
    lo, hi = NUMERIC_RANGES[field]
    return {"low": lo if low is None else low, "high": hi if high is None else high}


def _ladder(options: tuple[Any, ...]) -> dict[str, Any]:
    return {"options": options, "low": min(options), "high": max(options)}


CONTROLS: tuple[Control, ...] = (
    Control(
        "model", N_("Model"), "GRU", "radio", "model", options=tuple(MODELS),
        section=N_("Model"),
        help=N_("half a GRU (d2l's exercise 4): reset gate only fixes Z = 0, so H_t = H̃_t; "
                "update gate only fixes R = 1, so the whole old state feeds H̃_t"),
    ),
    Control(
        "variant", N_("GRU variant"), "d2l", "radio", "gru_variant", options=tuple(VARIANTS),
        help=N_("d2l: reset before W_hh; cuDNN / torch.nn.GRU: reset after W_hh"),
        enabled_if=lambda v: v.get("model", "GRU") in GRU_LABELS, section=N_("Model"),
    ),
    Control(
        "hidden", N_("Hidden size"), 256, "slider", "hidden_size", step=8, section=N_("Model"),
        help=N_("units in the hidden state H_t (d2l: 256)"), **_range("hidden_size", 8, 1024),
    ),
    Control(
        "init_std", N_("Init std (log scale)"), 0.01, "ladder", "init_std", section=N_("Model"),
        help=N_("weights ~ N(0, std²); d2l multiplies randn by 0.01"), **_ladder(INIT_STDS),
    ),
    Control(
        "slice", N_("Training text (characters)"), 10_000, "radio", "max_tokens",
        options=SLICES, labels=((10_000, "10,000 (d2l)"), (100_000, "100,000"), ("all", N_("all"))),
        help=N_("train on the first N characters, as d2l does with 10,000; validation uses the "
                "5,000 after them (with 'all', the last 5,000)"),
    ),
    Control(
        "steps", N_("Sequence length (num_steps)"), 35, "slider", "num_steps",
        help=N_("BPTT window T (d2l: 35)"), **_range("num_steps", 5, 500),
    ),
    Control(
        "clip_on", N_("Clip gradients"), True, "toggle", "clip_threshold",
        help=N_("off: the gradient is used as it is, however long"),
    ),
    Control(
        "clip", N_("Clip threshold θ (log scale)"), 1.0, "ladder", "clip_threshold",
        help=N_("global L2 norm cap (d2l: 1); changes reach a running job at its next step"),
        enabled_if=lambda v: bool(v.get("clip_on", True)), **_ladder(CLIPS),
    ),
    Control(
        "lr", N_("Learning rate (log scale)"), 1.0, "ladder", "lr",
        help=N_("SGD step size (d2l: 1); changes reach a running job at its next step"),
        **_ladder(LRS),
    ),
    Control(
        "batch", N_("Batch size"), 32, "ladder", "batch_size",
        help=N_("sequences per minibatch B (d2l: 32)"), **_ladder(BATCHES),
    ),
    Control(
        "epochs", N_("Epochs"), 500, "number", "num_epochs", step=10,
        help=N_("passes over the training text (d2l: 500)"), **_range("num_epochs"),
    ),
    Control(
        "sampling", N_("Sampling"), "sequential", "radio", "sampling", options=SAMPLINGS,
        labels=(("sequential", N_("sequential")), ("random", N_("random"))),
        help=N_("sequential: each row continues the last minibatch and the state carries over; "
                "random: shuffled windows, fresh state"),
    ),
    Control("seed", N_("Seed"), 0, "number", "seed", help=N_("weights and minibatch order"),
            **_range("seed")),
    Control("device", N_("Device"), "auto", "select", "device", options=DEVICES,
            labels=(("auto", N_("auto")),), section=N_("Run")),
    Control(
        "speed", N_("Speed (steps per second)"), "max", "ladder", options=SPEEDS, live=True,
        help=N_("slow a run down so a class can watch it unfold; 'max' = as fast as possible"),
        labels=(("max", N_("max")),), section=N_("Run"),
    ),
)  # fmt: skip
BY_KEY = {c.key: c for c in CONTROLS}
LIVE_FIELDS = tuple(LIVE_KNOBS)


def widget_key(key: str, generation: int) -> str:
    """The ``st.session_state`` key of control ``key``'s widget in widget generation
    ``generation`` (generation 0 uses the plain key).

    Applying a lesson starts a new generation. New keys make new widgets, so the values a
    browser sends for the old widgets (it had not yet been shown the lesson's values) are
    ignored rather than overwriting the lesson; a click that lands in that moment is
    dropped, visibly, instead of silently reverting every control the lesson set."""
    return key if generation == 0 else f"{key}~{generation}"


def control_key(key_of_widget: str) -> str:
    """Inverse of ``widget_key``: the control a widget key belongs to."""
    return key_of_widget.split("~", 1)[0]


def defaults() -> dict[str, Any]:
    return {c.key: c.default for c in CONTROLS}


def clip_threshold(values: Mapping[str, Any]) -> float | None:
    """The clip threshold the two clip controls mean: θ, or None when clipping is off."""
    return float(values["clip"]) if values["clip_on"] else None


def config_from_values(values: Mapping[str, Any]) -> TrainConfig:
    """Widget values -> TrainConfig (raises ValueError naming the field on a bad value)."""
    v = {**defaults(), **values}
    return TrainConfig(
        model=MODELS[v["model"]],
        gru_variant=VARIANTS[v["variant"]],
        hidden_size=int(v["hidden"]),
        init_std=float(v["init_std"]),
        clip_threshold=clip_threshold(v),
        num_steps=int(v["steps"]),
        batch_size=int(v["batch"]),
        lr=float(v["lr"]),
        num_epochs=int(v["epochs"]),
        max_tokens=ALL_TOKENS if v["slice"] == "all" else int(v["slice"]),
        sampling=v["sampling"],
        seed=int(v["seed"]),
        device=v["device"],
    )


def values_from_config(config: TrainConfig) -> dict[str, Any]:
    """The control values that show ``config`` (inverse of ``config_from_values`` on the
    settings the sidebar has). A value off a ladder snaps to the nearest rung."""
    label = {value: name for name, value in MODELS.items()}
    variant = {value: name for name, value in VARIANTS.items()}
    clip = config.clip_threshold
    return {
        **defaults(),
        "hidden": config.hidden_size,
        "init_std": _nearest(INIT_STDS, config.init_std),
        "clip_on": clip is not None,
        "clip": _nearest(CLIPS, clip) if clip is not None else BY_KEY["clip"].default,
        "steps": config.num_steps,
        "lr": _nearest(LRS, config.lr),
        "batch": _nearest(BATCHES, config.batch_size),
        "epochs": config.num_epochs,
        "slice": _slice(config.max_tokens),
        "model": label[config.model],
        "variant": variant[config.gru_variant],
        "sampling": config.sampling,
        "seed": config.seed,
        "device": config.device,
    }


def _slice(max_tokens: int) -> Any:
    """The training-slice option closest to ``max_tokens`` (``'all'`` for the whole text)."""
    if max_tokens >= ALL_TOKENS:
        return "all"
    return _nearest(tuple(o for o in SLICES if o != "all"), max_tokens)


def _nearest(options: tuple[float, ...], value: float) -> float:
    return min(options, key=lambda o: abs(math.log(o) - math.log(value)))


def speed_value(speed: Any) -> float | None:
    """The speed widget's value as max steps per second (None = as fast as possible)."""
    return None if speed == "max" else float(speed)


# -- URL query parameters --------------------------------------------------------------------
def to_query(values: Mapping[str, Any]) -> dict[str, str]:
    """Control values that differ from the defaults, as query-parameter strings."""
    out = {}
    for c in CONTROLS:
        value = values.get(c.key, c.default)
        if value != c.default:
            out[c.key] = _fmt(value)
    return out


def from_query(params: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Parse query parameters into control values. Unknown keys are left alone (other
    parameters may share the URL); bad values are dropped and described in the warnings."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, raw in params.items():
        control = BY_KEY.get(key)
        if control is None:
            continue
        try:
            values[key] = parse(control, raw)
        except ValueError as exc:
            ignored = _("ignored `{key}={raw}` in the URL: {reason}")
            warnings.append(ignored.format(key=key, raw=raw, reason=exc))
    return values, warnings


def parse(c: Control, raw: str) -> Any:
    """One control's value from its URL text (ValueError saying what was expected)."""
    text = str(raw).strip()
    if c.kind == "bool":
        if text.lower() in ("1", "true", "on", "yes"):
            return True
        if text.lower() in ("0", "false", "off", "no"):
            return False
        raise ValueError(_("expected true or false"))
    numeric = [o for o in c.options if isinstance(o, int | float) and not isinstance(o, bool)]
    for option in c.options:  # an option as the URL writes it ('GRU', 'max', '100000')
        if text.lower() == _fmt(option).lower():
            return option
    if c.kind == "choice" or (c.options and not numeric):
        options = ", ".join(str(o) for o in c.options)
        raise ValueError(_("expected one of {options}").format(options=options))
    try:
        number = float(text)
    except ValueError:
        raise ValueError(_("not a number")) from None
    if not math.isfinite(number):
        raise ValueError(_("not a finite number"))
    if c.kind == "int":
        assert c.low is not None and c.high is not None
        if not c.low <= number <= c.high:
            raise ValueError(_outside(c.low, c.high))
        if not number.is_integer():
            raise ValueError(_("expected a whole number"))
        return int(number)
    # ladder: the rung it names, on a log scale
    if number <= 0:
        raise ValueError(_outside(min(numeric), max(numeric)))
    rung = _nearest(tuple(numeric), number)
    if not math.isclose(rung, number, rel_tol=1e-9):
        if not min(numeric) <= number <= max(numeric):
            raise ValueError(_outside(min(numeric), max(numeric)))
        raise ValueError(_("not on the slider; nearest is {rung}").format(rung=_fmt(rung)))
    return rung


def _outside(low: float, high: float) -> str:
    return _("outside {low}..{high}").format(low=_fmt(low), high=_fmt(high))


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def restart_changes(running: TrainConfig, wanted: TrainConfig) -> list[str]:
    """The settings that differ and apply only on a restart, in words ('hidden size 256 → 64')."""
    changes = []
    for name, old in running.to_dict().items():
        new = getattr(wanted, name)
        if name not in LIVE_FIELDS and new != old:
            changes.append(f"{_(FIELD_NAMES[name])} {old} → {new}")
    return changes
