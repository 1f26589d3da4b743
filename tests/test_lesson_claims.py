"""The lessons' texts make claims about what happens and when; hold the settings to them.

Each lesson runs here for its own length, on The Time Machine, with its own seed. The step
numbers are the maths of a seeded run, the same on any machine; the seconds in the texts
follow from the lesson's speed (steps per second).
"""

from __future__ import annotations

import numpy as np

from dashboard.sidebar import controls as ctl
from dashboard.sidebar import lessons
from gru_core.data import Corpus
from gru_core.run.records import EpochRecord, StepRecord
from gru_core.run.telemetry import Telemetry
from gru_core.run.trainer import Trainer
from gru_core.run.verdict import Evidence, judge


def run_lesson(name: str, corpus: Corpus) -> tuple[Telemetry, str]:
    config = ctl.config_from_values(lessons.lesson_values(name)).replace(device="cpu")
    telemetry = Telemetry()
    status = "done"
    for record in Trainer(config, corpus).run():
        if isinstance(record, StepRecord):
            telemetry.add_step(record)
        elif isinstance(record, EpochRecord):
            telemetry.add_epoch(record)
        else:
            status = record.status
    return telemetry, status


def test_exploding_gradients_blows_up_around_step_12(time_machine: Corpus) -> None:
    telemetry, status = run_lesson("Exploding gradients", time_machine)
    snap = telemetry.snapshot()
    steps = snap.steps
    first = int(steps.loc[steps["perplexity"] > 1e6, "step"].iloc[0])
    assert 8 <= first <= 16  # "around step 12"
    speed = ctl.speed_value(lessons.lesson_values("Exploding gradients")["speed"])
    assert speed is not None and 5 <= first / speed <= 20  # the key moment after 5-20 s
    assert snap.total_steps == 32
    verdict = judge(status, Evidence.from_columns(steps, snap.epochs), len(time_machine.vocab))
    assert verdict.kind == "blew up"


def test_clipping_rescues_the_same_run(time_machine: Corpus) -> None:
    telemetry, status = run_lesson("Clipping to the rescue", time_machine)
    snap = telemetry.snapshot()
    steps, epochs = snap.steps, snap.epochs
    assert int(steps.loc[steps["clipped"], "step"].iloc[0]) <= 8  # "from step 7"
    assert (steps["grad_norm_clipped"] <= 1.0 + 1e-6).all()
    assert float(epochs.loc[epochs["epoch"] == 10, "train_perplexity"].iloc[0]) < 10
    assert (
        judge(status, Evidence.from_columns(steps, epochs), len(time_machine.vocab)).kind
        == "learned"
    )


def _reach_at(name: str, model: str, corpus: Corpus, step: int) -> np.ndarray:
    """||dl_T/dH_t|| / ||dl_T/dH_T|| at training ``step`` of the lesson's run with ``model``."""
    values = {**lessons.lesson_values(name), "model": model}
    config = ctl.config_from_values(values).replace(device="cpu")
    for record in Trainer(config, corpus).run():
        if isinstance(record, StepRecord) and record.step == step:
            assert record.grad_flow_last is not None
            flow = np.asarray(record.grad_flow_last)
            return flow / flow[-1]
    raise AssertionError(f"the run ended before step {step}")


def test_long_sequences_gru_reaches_further_back_than_the_rnn(time_machine: Corpus) -> None:
    gru = _reach_at("Long sequences", "GRU", time_machine, 41)
    rnn = _reach_at("Long sequences", "RNN", time_machine, 41)
    # "35 characters back the GRU keeps about 1e-5 and the RNN about 3e-7"
    assert 1e-6 < gru[-36] < 1e-4 and 3e-8 < rnn[-36] < 3e-6 and gru[-36] > 10 * rnn[-36]
    # "100 back the GRU still has about 1e-14, the RNN next to nothing (1e-19, then 0)"
    assert 1e-15 < gru[-101] < 1e-13 and rnn[-101] < 1e-17
