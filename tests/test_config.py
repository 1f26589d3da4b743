"""TrainConfig: d2l's defaults, frozen, every field validated at the boundary.

ARCHITECTURE.md, rule 1.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from gru_core.config import (
    CHOICES,
    INT_FIELDS,
    NUMERIC_RANGES,
    OPTIONAL_FIELDS,
    TrainConfig,
    resolve_device,
)
from gru_core.model.cells import build_model

# d2l section 10.2 / 9.5: GRU, num_hiddens 256, weights N(0, 0.01^2), grad_clipping(theta=1),
# num_steps 35, batch_size 32, lr 1, num_epochs 500, the first 10,000 character tokens.
D2L_DEFAULTS = {
    "model": "gru",
    "gru_variant": "d2l",
    "hidden_size": 256,
    "init_std": 0.01,
    "clip_threshold": 1.0,
    "num_steps": 35,
    "batch_size": 32,
    "lr": 1.0,
    "num_epochs": 500,
    "max_tokens": 10_000,
    "sampling": "sequential",
    "device": "auto",
}


def _spellings(x: float) -> set[str]:
    """Ways an error message may reasonably write a range bound."""
    forms = {repr(x), str(x), f"{x:g}"}
    if float(x).is_integer():
        forms |= {str(int(x)), f"{int(x):,}"}
    return forms


def _bad_values(name: str) -> list[object]:
    low, high = NUMERIC_RANGES[name]
    integer = name in INT_FIELDS
    below = low - 1 if integer else low / 10
    above = high + 1 if integer else high * 10
    return [below, above, math.nan, math.inf, "3", True]


NUMERIC_CASES = [
    pytest.param(name, value, id=f"{name}={value!r}")
    for name in NUMERIC_RANGES
    for value in _bad_values(name)
]


def test_defaults_are_d2l() -> None:
    cfg = TrainConfig()
    for name, expected in D2L_DEFAULTS.items():
        assert getattr(cfg, name) == expected, name
    assert isinstance(cfg.hidden_size, int) and isinstance(cfg.num_steps, int)


def test_config_is_frozen() -> None:
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 2.0  # type: ignore[misc]
    assert cfg.lr == 1.0


@pytest.mark.parametrize(("name", "value"), NUMERIC_CASES)
def test_numeric_field_rejects_bad_value(name: str, value: object) -> None:
    low, high = NUMERIC_RANGES[name]
    with pytest.raises(ValueError) as info:
        TrainConfig(**{name: value})
    msg = str(info.value)
    assert name in msg
    assert repr(value) in msg, f"bad value {value!r} not named in: {msg}"
    assert any(s in msg for s in _spellings(low)), f"low bound {low} missing from: {msg}"
    assert any(s in msg for s in _spellings(high)), f"high bound {high} missing from: {msg}"


@pytest.mark.parametrize("name", sorted(NUMERIC_RANGES))
def test_numeric_field_accepts_its_bounds(name: str) -> None:
    low, high = NUMERIC_RANGES[name]
    cast = int if name in INT_FIELDS else float
    for value in (cast(low), cast(high)):
        assert getattr(TrainConfig(**{name: value}), name) == value


@pytest.mark.parametrize("name", sorted(INT_FIELDS))
def test_integer_field_rejects_fraction(name: str) -> None:
    low, _ = NUMERIC_RANGES[name]
    with pytest.raises(ValueError, match=name):
        TrainConfig(**{name: low + 0.5})


def test_integer_field_given_integral_float_is_rejected_or_made_int() -> None:
    try:
        cfg = TrainConfig(hidden_size=16.0, num_steps=8.0)  # type: ignore[arg-type]
    except ValueError:
        return  # rejecting is fine too
    assert type(cfg.hidden_size) is int and type(cfg.num_steps) is int
    build_model(cfg, vocab_size=10)


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_choice_fields_reject_unknown_strings(name: str) -> None:
    for bad in ("nope", CHOICES[name][0].upper(), ""):
        with pytest.raises(ValueError) as info:
            TrainConfig(**{name: bad})
        msg = str(info.value)
        assert name in msg and repr(bad) in msg
        assert all(choice in msg for choice in CHOICES[name])
    for good in CHOICES[name]:
        assert getattr(TrainConfig(**{name: good}), name) == good


@pytest.mark.parametrize("name", sorted(OPTIONAL_FIELDS))
def test_optional_fields_accept_none(name: str) -> None:
    assert getattr(TrainConfig(**{name: None}), name) is None


def test_clip_threshold_none_means_off() -> None:
    assert TrainConfig(clip_threshold=None).clip_threshold is None


def test_non_optional_field_rejects_none() -> None:
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=None)  # type: ignore[arg-type]


def test_from_dict_round_trips_and_rejects_unknown_keys() -> None:
    cfg = TrainConfig(hidden_size=32, lr=0.5, clip_threshold=None, sampling="random")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1, "lr": 0.1})
    with pytest.raises(ValueError, match="hidden_size"):
        TrainConfig.from_dict({"hidden_size": 0})


def test_replace_validates_and_copies() -> None:
    cfg = TrainConfig()
    changed = cfg.replace(hidden_size=64, lr=0.1)
    assert (changed.hidden_size, changed.lr) == (64, 0.1)
    assert (cfg.hidden_size, cfg.lr) == (256, 1.0)
    with pytest.raises(ValueError, match="hidden_size"):
        cfg.replace(hidden_size=0)
    with pytest.raises(ValueError, match="clip_threshold"):
        cfg.replace(clip_threshold=-1.0)
    with pytest.raises(ValueError, match="model"):
        dataclasses.replace(cfg, model="transformer")


def test_resolve_device_auto_and_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else None
    if expected is None:
        has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
        expected = "mps" if has_mps else "cpu"
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="tpu"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_resolve_device_cuda_without_gpu_raises() -> None:
    assert resolve_device("auto") in ("cpu", "mps")
    with pytest.raises(ValueError, match="cuda"):
        resolve_device("cuda")
