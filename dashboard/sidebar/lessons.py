"""Lessons: presets of the control table with the text that says what to watch.

A lesson sets some controls (everything it does not name goes back to d2l's default) and
tells the class what to look at. Pure data and functions; ``panel.py`` applies them.

A lesson's name is its identifier (the lesson picker's value, a link's lesson) and its English
title: both it and the text are marked for the message catalogue (``N_``) and shown in the
reader's language (``title``, ``words``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from dashboard.sidebar.controls import BY_KEY, defaults
from gru_core.i18n import N_, _


@dataclass(frozen=True)
class Lesson:
    name: str  # identifier and English title
    values: dict[str, Any]  # control key -> value; everything else goes back to default
    text: str  # what to try, what to look for (English)
    hide: tuple[str, ...] = ()  # controls a student link for this lesson leaves out
    lock: tuple[str, ...] = ()  # controls it shows greyed out

    def __post_init__(self) -> None:
        unknown = sorted((set(self.values) | set(self.hide) | set(self.lock)) - set(BY_KEY))
        if unknown:
            said = _("lesson {name} sets unknown controls: {keys}")
            raise ValueError(said.format(name=repr(self.name), keys=", ".join(unknown)))

    @property
    def title(self) -> str:
        """The lesson's name in the language in force."""
        return _(self.name)

    @property
    def words(self) -> str:
        """The lesson's text in the language in force."""
        return _(self.text)


# Paces measured on a 2-core CPU (seed 0, The Time Machine): 8 steps an epoch at batch 32.
LESSONS: tuple[Lesson, ...] = (
    Lesson(
        N_("d2l default"),
        {},
        N_("The book's run: hidden 256, init std 0.01, clip at 1, 35 steps, 500 epochs, as fast "
           "as the machine goes. Watch training perplexity fall from about 28 (guessing) towards "
           "1.05, and the 'time traveller' text below the charts turn into English words over the "
           "first few hundred epochs. Watch validation too: it is best, about 7, near step 2,000, "
           "then climbs to about 77 while training still falls, so the run ends 'memorised': it "
           "learned these 10,000 characters by heart, not the language."),
    ),
    Lesson(
        N_("Exploding gradients"),
        {
            "init_std": 0.1, "clip_on": False, "lr": 5.0, "epochs": 4, "hidden": 128,
            "speed": 2,
        },
        N_("Weights 10x the book's (std 0.1), a learning rate of 5 and no clipping, at 2 steps a "
           "second. Watch the gradient norm: around step 12 (6 s in) it leaps by orders of "
           "magnitude and perplexity shoots past a million. The run ends after 32 steps (16 s) "
           "as 'blew up'."),
        hide=("variant", "sampling", "seed", "device", "slice"),
        lock=("init_std", "lr", "clip_on"),
    ),
    Lesson(
        N_("Clipping to the rescue"),
        {
            "init_std": 0.1, "clip_on": True, "clip": 1.0, "lr": 5.0, "epochs": 15,
            "hidden": 128, "speed": 2,
        },
        N_("The same explosive settings with the gradient norm capped at θ = 1, at 2 steps a "
           "second. From step 7 'before clipping' rises above the red θ line while 'after' stays "
           "on it; at step 12 (6 s), where the unclipped run blew up, this one goes on, and by "
           "epoch 10 (40 s) perplexity is under 10. Overlay both runs under Compare runs."),
        hide=("variant", "sampling", "seed", "device", "slice"),
        lock=("init_std", "lr"),
    ),
    Lesson(
        N_("Long sequences"),
        {"steps": 200, "epochs": 5, "hidden": 128, "slice": 100_000, "init_std": 0.05},
        N_("Backprop through 200 steps (on 100,000 characters: 15 minibatches an epoch). Open "
           "'Through time': the line is how much the last character's loss still reaches each "
           "earlier step (1 at t = T). Run the GRU, then switch Model to RNN and run again. Both "
           "fall fast, which is the vanishing gradient, but not alike: at step 41, 35 characters "
           "back the GRU keeps about 1e-5 and the RNN about 3e-7; 100 back the GRU still has "
           "about 1e-14, the RNN next to nothing (1e-19, then 0)."),
        hide=("variant", "sampling", "seed", "device"),
        lock=("steps", "slice"),
    ),
    Lesson(
        N_("Small and fast"),
        {"hidden": 32, "epochs": 50, "speed": 10},
        N_("Hidden size 32 at 10 steps a second: 50 epochs take 40 s. Move the clip threshold to "
           "0.05 while it runs: a dotted line marks the change, the red θ line steps down, and "
           "'after clipping' drops onto it."),
    ),
)  # fmt: skip
BY_NAME = {lesson.name: lesson for lesson in LESSONS}


def lesson_values(name: str) -> dict[str, Any]:
    """All control values for a lesson: the defaults overlaid with the lesson's own."""
    return {**defaults(), **BY_NAME[name].values}


def respect_locks(
    wanted: Mapping[str, Any], current: Mapping[str, Any], locked: Collection[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``wanted`` with every control a teacher's link locks (``?lock=``) kept at its
    ``current`` value, and the locked controls whose value a preset (a lesson, an
    investigation's step, a fork) would have changed. A preset never undoes a lock."""
    kept = tuple(k for k in wanted if k in locked and k in current and wanted[k] != current[k])
    return {k: current[k] if k in kept else v for k, v in wanted.items()}, kept
