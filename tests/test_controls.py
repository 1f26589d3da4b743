"""Widget values <-> TrainConfig, lessons and URL query parameters (pure, no Streamlit)."""

from __future__ import annotations

import dataclasses

import pytest

from dashboard.sidebar import controls as ctl
from dashboard.sidebar import lessons
from gru_core.config import CHOICES, NUMERIC_RANGES, TrainConfig


def test_defaults_are_d2l_defaults() -> None:
    config = ctl.config_from_values(ctl.defaults())
    assert config == TrainConfig()
    # The book's numbers, spelled out so a drift in either place is caught.
    assert (config.hidden_size, config.init_std, config.clip_threshold) == (256, 0.01, 1.0)
    assert (config.num_steps, config.batch_size, config.lr, config.num_epochs) == (35, 32, 1.0, 500)
    assert config.model == "gru" and config.gru_variant == "d2l"


def test_every_control_default_is_on_its_own_widget() -> None:
    """A default the widget cannot show (off a ladder, outside a range) would break the UI."""
    for c in ctl.CONTROLS:
        if c.kind == "ladder":
            assert c.default in c.options, c.key
        if c.kind == "int" or (c.kind == "ladder" and c.field is not None):
            assert c.low is not None and c.high is not None
            assert c.low <= c.default <= c.high, c.key
        if c.kind == "choice":
            assert c.default in c.options, c.key
        if c.kind == "ladder" and c.field is not None:
            assert (min(c.options), max(c.options)) == (c.low, c.high), c.key


def test_every_control_stays_inside_its_config_field() -> None:
    """Bounds and choices come from TrainConfig: a control may show part of a field's range,
    never more, and every choice it offers is one of the field's choices."""
    for c in ctl.CONTROLS:
        if c.field is None:
            assert c.key == "speed"  # the only control that is not a config setting
            continue
        if c.kind in ("int", "ladder") and c.field in NUMERIC_RANGES:
            low, high = NUMERIC_RANGES[c.field]
            assert low <= c.low <= c.high <= high, c.key
        if c.key == "slice":  # numbers of characters, 'all' = the field's upper bound
            low, high = NUMERIC_RANGES[c.field]
            for option in c.options:
                value = ctl.config_from_values({"slice": option}).max_tokens
                assert low <= value <= high and (option == "all") == (value == high)
            continue
        if c.kind == "choice":
            mapped = {"model": ctl.MODELS, "variant": ctl.VARIANTS}.get(c.key)
            offered = [mapped[o] for o in c.options] if mapped else list(c.options)
            assert set(offered) <= set(CHOICES[c.field]), c.key


def test_values_from_config_round_trips() -> None:
    for values in (
        ctl.defaults(),
        lessons.lesson_values("Exploding gradients"),
        {**ctl.defaults(), "model": "LSTM", "variant": "cuDNN", "sampling": "random", "seed": 7},
    ):
        config = ctl.config_from_values(values)
        back = ctl.values_from_config(config)
        assert ctl.config_from_values(back) == config
        assert {k: v for k, v in back.items() if k != "speed"} == {
            k: v for k, v in values.items() if k != "speed"
        }


def test_a_lesson_naming_an_unknown_control_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown controls: hiden"):
        lessons.Lesson("typo", {"hiden": 64}, "text")


def test_every_ladder_rung_is_a_valid_config_value() -> None:
    for std in ctl.INIT_STDS:
        assert ctl.config_from_values({"init_std": std}).init_std == std
    for clip in ctl.CLIPS:
        assert ctl.config_from_values({"clip": clip}).clip_threshold == clip
    for lr in ctl.LRS:
        assert ctl.config_from_values({"lr": lr}).lr == lr
    for batch in ctl.BATCHES:
        assert ctl.config_from_values({"batch": batch}).batch_size == batch


def test_clip_toggle_off_means_no_clipping() -> None:
    assert ctl.config_from_values({"clip_on": False, "clip": 5.0}).clip_threshold is None
    assert ctl.config_from_values({"clip_on": True, "clip": 5.0}).clip_threshold == 5.0


def test_choices_map_to_config_names() -> None:
    config = ctl.config_from_values(
        {"model": "LSTM", "variant": "cuDNN", "sampling": "random", "device": "cpu"}
    )
    assert (config.model, config.gru_variant, config.sampling, config.device) == (
        "lstm",
        "cudnn",
        "random",
        "cpu",
    )


@pytest.mark.parametrize("name", [lesson.name for lesson in lessons.LESSONS])
def test_every_lesson_builds_a_valid_config(name: str) -> None:
    values = lessons.lesson_values(name)
    assert set(values) == {c.key for c in ctl.CONTROLS}
    config = ctl.config_from_values(values)  # raises ValueError if a value is out of range
    lesson = lessons.BY_NAME[name]
    for key, value in lesson.values.items():
        assert values[key] == value
    # Keys the lesson does not name go back to the defaults.
    for key, value in ctl.defaults().items():
        if key not in lesson.values:
            assert values[key] == value, (name, key)
    assert config.hidden_size == values["hidden"] and config.num_steps == values["steps"]


def test_exploding_lesson_turns_clipping_off_and_rescue_turns_it_on() -> None:
    explode = ctl.config_from_values(lessons.lesson_values("Exploding gradients"))
    rescue = ctl.config_from_values(lessons.lesson_values("Clipping to the rescue"))
    assert explode.clip_threshold is None and rescue.clip_threshold == 1.0
    # Otherwise the same run (the rescue runs longer), so the two overlay step for step.
    assert dataclasses.replace(explode, clip_threshold=1.0, num_epochs=15) == rescue


def test_d2l_default_lesson_is_the_defaults() -> None:
    assert lessons.lesson_values("d2l default") == ctl.defaults()


# -- URL query parameters -----------------------------------------------------------------


def test_to_query_of_defaults_is_empty() -> None:
    assert ctl.to_query(ctl.defaults()) == {}


def test_query_round_trip_of_every_non_default_value() -> None:
    values = {
        "hidden": 64,
        "init_std": 0.002,
        "clip_on": False,
        "clip": 5.0,
        "steps": 100,
        "lr": 0.05,
        "batch": 8,
        "epochs": 20,
        "model": "RNN",
        "variant": "cuDNN",
        "sampling": "random",
        "seed": 2**31 - 1,
        "device": "cpu",
        "speed": 5,
        "slice": "all",
    }
    assert set(values) == {c.key for c in ctl.CONTROLS}
    query = ctl.to_query(values)
    assert all(isinstance(v, str) for v in query.values())
    assert query["clip"] == "5" and query["clip_on"] == "false" and query["model"] == "RNN"
    parsed, warnings = ctl.from_query(query)
    assert warnings == []
    assert parsed == values
    assert ctl.config_from_values(parsed) == ctl.config_from_values(values)


@pytest.mark.parametrize("name", [lesson.name for lesson in lessons.LESSONS])
def test_query_round_trip_of_lessons(name: str) -> None:
    values = lessons.lesson_values(name)
    parsed, warnings = ctl.from_query(ctl.to_query(values))
    assert warnings == []
    assert {**ctl.defaults(), **parsed} == values


def test_query_parsing_is_lenient_about_spelling() -> None:
    parsed, warnings = ctl.from_query(
        {"hidden": " 64 ", "clip": "0.1", "clip_on": "OFF", "model": "lstm", "steps": "50.0"}
    )
    assert warnings == []
    assert parsed == {"hidden": 64, "clip": 0.1, "clip_on": False, "model": "LSTM", "steps": 50}
    assert isinstance(parsed["hidden"], int) and isinstance(parsed["steps"], int)


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("hidden", "abc"),  # not a number
        ("hidden", "1e9"),  # huge
        ("hidden", "7"),  # below the slider
        ("hidden", "64.5"),  # not whole
        ("seed", "-1"),  # negative
        ("epochs", "nan"),
        ("lr", "inf"),
        ("init_std", "-inf"),
        ("steps", "1e400"),  # overflows to inf
        ("clip", "3"),  # between rungs of the ladder
        ("clip", "0"),  # below the ladder (and log(0) would fail)
        ("clip", "-5"),
        ("init_std", "0.0"),
        ("batch", "3"),
        ("model", "xyz"),
        ("variant", "keras"),
        ("speed", "fast"),
        ("clip_on", "maybe"),
        ("device", "tpu"),
    ],
)
def test_bad_query_values_are_dropped_with_a_warning_naming_the_key(key: str, raw: str) -> None:
    parsed, warnings = ctl.from_query({key: raw, "steps" if key != "steps" else "hidden": "50"})
    assert key not in parsed
    assert len(warnings) == 1
    assert f"`{key}={raw}`" in warnings[0]
    # The other, valid parameter still applies.
    assert parsed == ({"steps": 50} if key != "steps" else {"hidden": 50})


def test_off_ladder_warning_names_the_nearest_rung() -> None:
    _, warnings = ctl.from_query({"clip": "3"})
    assert "nearest is 2" in warnings[0]


def test_unknown_query_keys_are_ignored() -> None:
    parsed, warnings = ctl.from_query({"utm_source": "newsletter", "hidden": "32", "x": "nan"})
    assert parsed == {"hidden": 32}
    assert warnings == []


def test_speed_value() -> None:
    assert ctl.speed_value("max") is None
    assert ctl.speed_value(5) == 5.0


# -- what a restart would change ----------------------------------------------------------


def test_restart_changes_lists_only_settings_that_need_a_restart() -> None:
    running = ctl.config_from_values(ctl.defaults())
    assert ctl.restart_changes(running, running) == []
    live_only = running.replace(clip_threshold=0.1, lr=0.5)
    assert ctl.restart_changes(running, live_only) == []
    assert ctl.restart_changes(running, running.replace(clip_threshold=None)) == []
    wanted = running.replace(hidden_size=64, num_steps=100, lr=0.5, clip_threshold=5.0)
    changes = ctl.restart_changes(running, wanted)
    assert changes == ["hidden size 256 → 64", "num steps 35 → 100"]


def test_restart_changes_covers_every_non_live_field() -> None:
    running = TrainConfig()
    other = {
        "model": "rnn",
        "gru_variant": "cudnn",
        "hidden_size": 8,
        "init_std": 0.1,
        "num_steps": 5,
        "batch_size": 4,
        "num_epochs": 3,
        "max_tokens": 2000,
        "val_tokens": 100,
        "sampling": "random",
        "seed": 1,
        "device": "cpu",
        "flow_every": 5,
        "num_threads": 1,
    }
    assert set(other) | set(ctl.LIVE_FIELDS) == {f.name for f in dataclasses.fields(TrainConfig)}
    changes = ctl.restart_changes(running, running.replace(**other))
    assert len(changes) == len(other)
    for name in other:
        assert any(c.startswith(name.replace("_", " ") + " ") for c in changes), name


def test_widget_keys_per_generation_map_back_to_their_control() -> None:
    assert ctl.widget_key("hidden", 0) == "hidden"  # plain keys until a lesson is applied
    keys = {ctl.widget_key(c.key, g) for c in ctl.CONTROLS for g in range(3)}
    assert len(keys) == 3 * len(ctl.CONTROLS)
    for c in ctl.CONTROLS:
        for generation in (0, 1, 12):
            assert ctl.control_key(ctl.widget_key(c.key, generation)) == c.key
