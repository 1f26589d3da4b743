"""Lessons: presets of the control table with the text that says what to watch.

A lesson sets some controls (everything it does not name goes back to d2l's default) and
tells the class what to look at. Pure data and functions; ``sidebar.py`` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboard.controls import BY_KEY, defaults


@dataclass(frozen=True)
class Lesson:
    name: str
    values: dict[str, Any]  # control key -> value; everything else goes back to default
    text: str  # what to try, what to look for

    def __post_init__(self) -> None:
        unknown = sorted(set(self.values) - set(BY_KEY))
        if unknown:
            raise ValueError(f"lesson {self.name!r} sets unknown controls: {', '.join(unknown)}")


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
BY_NAME = {lesson.name: lesson for lesson in LESSONS}


def lesson_values(name: str) -> dict[str, Any]:
    """All control values for a lesson: the defaults overlaid with the lesson's own."""
    return {**defaults(), **BY_NAME[name].values}
