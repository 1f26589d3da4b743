"""Widget values <-> TrainConfig, lessons (presets) and the URL's query parameters.

Pure functions and data only (no ``st.*``): the sidebar in ``app.py`` renders the widgets
described here, keyed by ``widget_key(Control.key, generation)`` in ``st.session_state``;
``config_from_values`` turns those values into a frozen, validated ``TrainConfig``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gru_core.config import TrainConfig

# 1-2-5 ladders for the log-scale sliders.
INIT_STDS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0)
CLIPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
LRS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SPEEDS = ("max", 1, 2, 5, 10, 20, 50)  # steps per second; 'max' = as fast as possible
MODELS = {"GRU": "gru", "RNN": "rnn", "LSTM": "lstm"}
VARIANTS = {"d2l": "d2l", "cuDNN": "cudnn"}
SAMPLINGS = ("sequential", "random")

LIVE_FIELDS = ("clip_threshold", "lr")  # reach a running job at its next step


@dataclass(frozen=True)
class Control:
    key: str  # session_state key and URL query parameter name
    label: str
    default: Any
    kind: str  # 'int', 'ladder' (float options), 'choice', 'bool'
    low: float | None = None  # for 'int' and 'ladder' (inclusive)
    high: float | None = None
    options: tuple[Any, ...] = ()


CONTROLS: tuple[Control, ...] = (
    Control("hidden", "Hidden size", 256, "int", 8, 1024),
    Control("init_std", "Init std (log scale)", 0.01, "ladder", 0.001, 3.0, INIT_STDS),
    Control("clip_on", "Clip gradients", True, "bool"),
    Control("clip", "Clip threshold θ (log scale)", 1.0, "ladder", 0.01, 100.0, CLIPS),
    Control("steps", "Sequence length (num_steps)", 35, "int", 5, 500),
    Control("lr", "Learning rate (log scale)", 1.0, "ladder", 0.01, 50.0, LRS),
    Control("batch", "Batch size", 32, "ladder", 1, 256, BATCHES),
    Control("epochs", "Epochs", 500, "int", 1, 100_000),
    Control("model", "Model", "GRU", "choice", options=tuple(MODELS)),
    Control("variant", "GRU variant", "d2l", "choice", options=tuple(VARIANTS)),
    Control("sampling", "Sampling", "sequential", "choice", options=SAMPLINGS),
    Control("seed", "Seed", 0, "int", 0, 2**31 - 1),
    Control("device", "Device", "auto", "choice", options=("auto", "cpu", "cuda", "mps")),
    Control("speed", "Speed (steps per second)", "max", "choice", options=SPEEDS),
)
BY_KEY = {c.key: c for c in CONTROLS}


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


def config_from_values(values: Mapping[str, Any]) -> TrainConfig:
    """Widget values -> TrainConfig (raises ValueError naming the field on a bad value)."""
    v = {**defaults(), **values}
    return TrainConfig(
        model=MODELS[v["model"]],
        gru_variant=VARIANTS[v["variant"]],
        hidden_size=int(v["hidden"]),
        init_std=float(v["init_std"]),
        clip_threshold=float(v["clip"]) if v["clip_on"] else None,
        num_steps=int(v["steps"]),
        batch_size=int(v["batch"]),
        lr=float(v["lr"]),
        num_epochs=int(v["epochs"]),
        sampling=v["sampling"],
        seed=int(v["seed"]),
        device=v["device"],
    )


def speed_value(speed: Any) -> float | None:
    """The speed widget's value as max steps per second (None = as fast as possible)."""
    return None if speed == "max" else float(speed)


# -- lessons ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lesson:
    name: str
    values: dict[str, Any]  # control key -> value; everything else goes back to default
    text: str  # two sentences: what to try, what to look for


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "d2l default",
        {},
        "The book's run: hidden 256, init std 0.01, clip at 1, 35 steps, 500 epochs. Watch "
        "perplexity fall towards 1 and the 'time traveller' text turn into English words.",
    ),
    Lesson(
        "Exploding gradients",
        {"init_std": 0.1, "clip_on": False, "lr": 5.0, "epochs": 15, "hidden": 128},
        "Weights 10x the book's (std 0.1), a learning rate of 5 and no clipping. Within a few "
        "epochs the gradient norm leaps by orders of magnitude and perplexity blows up.",
    ),
    Lesson(
        "Clipping to the rescue",
        {"init_std": 0.1, "clip_on": True, "clip": 1.0, "lr": 5.0, "epochs": 15, "hidden": 128},
        "The same explosive settings with the global gradient norm capped at θ = 1: the first "
        "big steps can no longer throw the weights into the exploding regime, so the norm stays "
        "near θ and perplexity falls. Overlay both runs under Compare runs.",
    ),
    Lesson(
        "Long sequences",
        {"steps": 200, "epochs": 20, "hidden": 128},
        "Backprop through 200 steps instead of 35. Run the GRU, then switch Model to RNN and "
        "run again: the gradient-through-time view shows how far back each one still learns.",
    ),
    Lesson(
        "Small and fast",
        {"hidden": 32, "epochs": 50},
        "Hidden size 32 trains in seconds on any laptop CPU. Good for trying every knob: "
        "move the clip slider while it runs and see the threshold line follow.",
    ),
)
LESSONS_BY_NAME = {lesson.name: lesson for lesson in LESSONS}


def lesson_values(name: str) -> dict[str, Any]:
    """All control values for a lesson: the defaults overlaid with the lesson's own."""
    return {**defaults(), **LESSONS_BY_NAME[name].values}


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
            values[key] = _parse(control, raw)
        except ValueError as exc:
            warnings.append(f"ignored `{key}={raw}` in the URL: {exc}")
    return values, warnings


def _parse(c: Control, raw: str) -> Any:
    text = str(raw).strip()
    if c.kind == "bool":
        if text.lower() in ("1", "true", "on", "yes"):
            return True
        if text.lower() in ("0", "false", "off", "no"):
            return False
        raise ValueError("expected true or false")
    if c.kind == "choice":
        for option in c.options:
            if text.lower() == str(option).lower():
                return option
        raise ValueError("expected one of " + ", ".join(str(o) for o in c.options))
    try:
        number = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    assert c.low is not None and c.high is not None
    if not c.low <= number <= c.high:
        raise ValueError(f"outside {_fmt(c.low)}..{_fmt(c.high)}")
    if c.kind == "int":
        if not number.is_integer():
            raise ValueError("expected a whole number")
        return int(number)
    # ladder: snap to the nearest rung on a log scale
    rung = min(c.options, key=lambda o: abs(math.log(o) - math.log(number)))
    if not math.isclose(rung, number, rel_tol=1e-9):
        raise ValueError(f"not on the slider; nearest is {_fmt(rung)}")
    return rung


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def restart_changes(running: TrainConfig, wanted: TrainConfig) -> list[str]:
    """Human list of the settings that differ and only apply when the run restarts."""
    changes = []
    for name, old in running.to_dict().items():
        new = getattr(wanted, name)
        if name not in LIVE_FIELDS and new != old:
            changes.append(f"{name.replace('_', ' ')} {old} → {new}")
    return changes
