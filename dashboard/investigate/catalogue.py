"""The investigations: the study note's three questions and d2l's exercise 4, step by step.

An ``Investigation`` is a question, a few ``Step``s and a finding. A step applies its settings
in one click (``page`` LAB: values of the control table, over d2l's defaults, as a lesson
applies them; MAP: the map page's settings), says what to look at and where, and is done when
its check (``checks.py``) passes on the student's own runs and maps. The last step of each
is the answer in the student's words; then ``findings.py`` says what their data says.

Sized for a 2-core CPU at the book's hidden size 256 (``Scale``): a map of 16 runs × 10 epochs
takes about 35 s there (measured: 34.9 s at load average 10), a lab run of 20 epochs 45 s
(50 epochs took 114 s at load average 8; 20 epochs 118 s at load average 10: the estimate
assumes the lighter load).
``GRU_LAB_INVESTIGATE_SCALE=small`` shrinks every step (hidden 16, an epoch or two) for the
browser tests. Pure data and functions: no ``st.*``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dashboard.investigate import checks as ck
from dashboard.investigate.evidence import Evidence
from gru_core.i18n import N_

LAB, MAP = "lab", "map"
SCALE_ENV = "GRU_LAB_INVESTIGATE_SCALE"  # 'small': the browser tests' short walks
RUN_EPOCH_S = 68 / 32 / 10  # one map run, one epoch, hidden 256, T 35, on the 2-core CPU
# One lab epoch at hidden 256, T 35 (10,000 characters, validation and text too): 50 epochs
# took 114 s at load average 8 on the 2-core CPU (python -m gru_core --num-epochs 50).
LAB_EPOCH_S = 2.3
THROUGH_TIME = "Through time"  # the lab's view of the gradient through time
ANSWER_MIN = 20  # characters an answer needs before the data is shown


@dataclass(frozen=True)
class Scale:
    """How big the investigations run: the book's sizes, or the tests' small ones."""

    hidden: int = 256  # the book's hidden size
    small_hidden: int = 32  # where init std 0.1 wins (the old "Why 0.01?" preset)
    map_epochs: int = 10
    lab_epochs: int = 20  # 'learned': perplexity 28 -> 15.4 (measured, seed 0)
    long_epochs: int = 3  # T = 280 on 100,000 characters: 11 minibatches an epoch

    @classmethod
    def small(cls) -> Scale:
        """The browser tests' size: seconds a step on a loaded machine."""
        return cls(hidden=16, small_hidden=8, map_epochs=1, lab_epochs=5, long_epochs=1)

    @classmethod
    def from_env(cls) -> Scale:
        return cls.small() if os.environ.get(SCALE_ENV) == "small" else cls()

    def fields(self) -> dict[str, int]:
        """What a step's text may name: ``{hidden}``, ``{small}``."""
        return {"hidden": self.hidden, "small": self.small_hidden}

    def map_seconds(self, runs: int, hidden: int | None = None) -> float:
        h = self.hidden if hidden is None else hidden
        return runs * self.map_epochs * RUN_EPOCH_S * max(h / 256, 0.1)

    def lab_seconds(self, epochs: int, chars: int = 10_000) -> float:
        return epochs * LAB_EPOCH_S * chars / 10_000 * max(self.hidden / 256, 0.1)


@dataclass(frozen=True)
class Step:
    id: str  # unique across investigations: '<investigation>.<n>'
    title: str  # N_-marked
    text: str  # N_-marked: what to do, what to look at and where
    page: str  # LAB or MAP: where its settings go
    values: Mapping[str, Any]  # lab: control key -> value; map: map_* key -> value
    check: Callable[[Evidence], ck.Check]
    seconds: float  # estimated training time on the 2-core CPU


@dataclass(frozen=True)
class Investigation:
    key: str
    title: str  # N_-marked
    question: str  # N_-marked: the study note's question
    steps: tuple[Step, ...]
    ask: str  # N_-marked: the question for the student's answer

    @property
    def step_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.steps)


def _map(x: str, xv: list[Any], y: str, yv: list[Any], models: list[str], **size: int) -> dict:
    return {
        "map_x": x, "map_xv": xv, "map_y": y, "map_yv": yv, "map_models": models,
        "map_steps": 35, "map_seeds": 1, **size,
    }  # fmt: skip


def _clip(s: Scale) -> Investigation:
    axes = ("clip_threshold", "init_std")
    return Investigation(
        "clip",
        N_("Does a GRU need a higher clip threshold than an RNN?"),
        N_("The GRU has three times the RNN's weights: does its gradient need a looser cap?"),
        (
            Step(
                "clip.1", N_("Map θ against init std, GRU and RNN"),
                N_("On the Trainability map, press Start. Each cell is one run; read across a "
                   "row: at which θ does each model still train, and where does it blow up?"),
                MAP, _map("clip_threshold", [0.1, 1.0, 10.0, None], "init_std", [0.01, 0.1],
                          ["GRU", "RNN"], map_hidden=s.hidden, map_epochs=s.map_epochs),
                lambda ev: ck.maps_exist(ev, ("gru", "rnn"), axes, s.hidden, (3, 2)),
                s.map_seconds(16),
            ),
            Step(
                "clip.2", N_("Find where clipping stops saving the RNN"),
                N_("In the Lab: the RNN at init std 0.1 with θ = 10. Press Start, then move "
                   "θ (and Clip gradients) and start again until one θ trains and another "
                   "does not. Watch the gradient norm chart and the verdict under it."),
                LAB, {"model": "RNN", "init_std": 0.1, "clip": 10.0, "hidden": s.hidden,
                      "epochs": s.lab_epochs},
                lambda ev: ck.theta_boundary(ev, "rnn", 0.1, s.hidden),
                3 * s.lab_seconds(s.lab_epochs),
            ),
            Step(
                "clip.3", N_("The same for the GRU"),
                N_("The GRU at init std 0.1, clipping off. Then try θ = 10 and θ = 1: does it "
                   "need the cap the RNN needed?"),
                LAB, {"model": "GRU", "init_std": 0.1, "clip_on": False, "hidden": s.hidden,
                      "epochs": s.lab_epochs},
                lambda ev: ck.clips_tried(ev, "gru", 0.1, s.hidden),
                3 * s.lab_seconds(s.lab_epochs),
            ),
        ),
        N_("So: does a GRU need a higher clip threshold than an RNN? Why?"),
    )  # fmt: skip


def _init(s: Scale) -> Investigation:
    axes = ("init_std", "clip_threshold")
    return Investigation(
        "init",
        N_("Why init std 0.01?"),
        N_("d2l multiplies every weight by 0.01. Is that a magic number?"),
        (
            Step(
                "init.1", N_("Map init std against θ at the book's size"),
                N_("On the Trainability map, press Start: init std from 0.001 to 1, clipping "
                   "at 1 and off, GRU and RNN at hidden {hidden}. Which column trains best? "
                   "The dashed line is the theory's edge of chaos (λ = 0)."),
                MAP, _map("init_std", [0.001, 0.01, 0.1, 1.0], "clip_threshold", [1.0, None],
                          ["GRU", "RNN"], map_hidden=s.hidden, map_epochs=s.map_epochs),
                lambda ev: ck.maps_exist(ev, ("gru", "rnn"), axes, s.hidden, (3, 2)),
                s.map_seconds(16),
            ),
            Step(
                "init.2", N_("The same map on a small network"),
                N_("Now hidden {small}, the size the old preset used. Does the best init std "
                   "move? Compare where the edge of chaos sits."),
                MAP, _map("init_std", [0.001, 0.01, 0.1, 1.0], "clip_threshold", [1.0, None],
                          ["GRU", "RNN"], map_hidden=s.small_hidden, map_epochs=s.map_epochs),
                lambda ev: ck.maps_exist(ev, ("gru",), axes, s.small_hidden, (3, 1)),
                s.map_seconds(16, s.small_hidden),
            ),
        ),
        N_("So: why does the book use init std 0.01? Would it at every hidden size?"),
    )  # fmt: skip


def _bptt(s: Scale) -> Investigation:
    long = {"steps": 280, "slice": 100_000, "hidden": s.hidden, "epochs": s.long_epochs}
    return Investigation(
        "bptt",
        N_("Is ~100 steps the practical limit of BPTT?"),
        N_("The note guesses that a GRU handles about 100 characters. What do your runs say?"),
        (
            Step(
                "bptt.1", N_("The book's window: T = 35"),
                N_("In the Lab, press Start (the GRU at T = 35), and open the “Through time” "
                   "view: how much of the last character's gradient reaches t = 1?"),
                LAB, {"hidden": s.hidden, "epochs": s.lab_epochs},
                lambda ev: ck.view_opened(ev, THROUGH_TIME, "gru", 35),
                s.lab_seconds(s.lab_epochs),
            ),
            Step(
                "bptt.2", N_("A long window: T = 280"),
                N_("The GRU at T = 280 on 100,000 characters. Start, then open “Through "
                   "time” again: how many steps back does the gradient still count?"),
                LAB, long,
                lambda ev: ck.view_opened(ev, THROUGH_TIME, "gru", 280),
                s.lab_seconds(s.long_epochs, 100_000),
            ),
            Step(
                "bptt.3", N_("The RNN at T = 280"),
                N_("The same window with the RNN. Open “Through time”: where does its "
                   "gradient fall under float32's resolution (1e-7 of its size)?"),
                LAB, {**long, "model": "RNN"},
                lambda ev: ck.view_opened(ev, THROUGH_TIME, "rnn", 280),
                s.lab_seconds(s.long_epochs, 100_000),
            ),
        ),
        N_("So: is about 100 steps the practical limit of BPTT for a GRU? What sets it?"),
    )  # fmt: skip


def _half(s: Scale) -> Investigation:
    axes = ("init_std", "clip_threshold")
    halves = ["GRU", "GRU (reset gate only)", "GRU (update gate only)", "RNN"]
    return Investigation(
        "half",
        N_("Half a GRU (d2l's exercise 4)"),
        N_("What happens with only a reset gate (Z = 0), or only an update gate (R = 1)?"),
        (
            Step(
                "half.1", N_("Map the GRU, its halves and the RNN"),
                N_("On the Trainability map, press Start: four maps side by side on one "
                   "colour scale. Which half is closer to the full GRU?"),
                MAP, _map("init_std", [0.01, 0.1], "clip_threshold", [1.0, None], halves,
                          map_hidden=s.hidden, map_epochs=s.map_epochs),
                lambda ev: ck.maps_exist(
                    ev, ("gru", "gru_reset_only", "gru_update_only"), axes, s.hidden
                ),
                s.map_seconds(16),
            ),
            Step(
                "half.2", N_("Each half in the Lab"),
                N_("Run the update-gate-only GRU (set here), then switch Model to reset gate "
                   "only and run again. Open “Gates” to see the one gate each has."),
                LAB, {"model": "GRU (update gate only)", "hidden": s.hidden,
                      "epochs": s.lab_epochs},
                lambda ev: ck.runs_exist(
                    ev, ("gru_update_only", "gru_reset_only"), hidden=s.hidden
                ),
                2 * s.lab_seconds(s.lab_epochs),
            ),
        ),
        N_("So: what does each gate do for the GRU? Which one matters more here?"),
    )  # fmt: skip


def investigations(scale: Scale | None = None) -> tuple[Investigation, ...]:
    s = scale or Scale.from_env()
    return (_clip(s), _init(s), _bptt(s), _half(s))


def progress_of(inv: Investigation, done: Mapping[str, str], answer: str) -> tuple[int, int]:
    """(steps done, steps in all), the answer counting as one step."""
    finished = sum(step.id in done for step in inv.steps) + (len(answer.strip()) >= ANSWER_MIN)
    return finished, len(inv.steps) + 1
