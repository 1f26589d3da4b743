"""Advice and captions claim only what applies (issue 18): no gates for an RNN, and no
answer to the study note's question before the class has runs to read it from."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dashboard.views.compare import gru_rnn_reading
from dashboard.views.teaching import CAPTIONS, outcome_advice
from gru_core.config import TrainConfig
from gru_core.run.records import Outcome
from gru_core.run.verdict import Verdict

STALLED = Verdict("did not learn", "It did not learn.", 28.0, 27.5)
DONE = Outcome("done", 100)


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_stall_advice_for_a_gated_cell_names_its_gates(model: str) -> None:
    text = outcome_advice(STALLED, DONE, TrainConfig(model=model, init_std=0.5))
    assert "with 0.5 the gates saturate" in text


def test_stall_advice_for_an_rnn_never_mentions_gates() -> None:
    text = outcome_advice(STALLED, DONE, TrainConfig(model="rnn", init_std=0.5))
    assert "gate" not in text.lower()
    assert "with 0.5 the tanh units saturate" in text and "lower the init std" in text


def test_every_rnn_advice_is_free_of_gates() -> None:
    """Whatever the RNN's verdict and settings, its advice speaks of no gate."""
    outcomes = {"diverged": Outcome("diverged", 7, "", 3.0, 1e9), "blew up": DONE}
    for kind in ("did not learn", "diverged", "blew up", "learned"):
        verdict = Verdict(kind, f"{kind}.", 28.0, 27.0)
        for std, lr, clip in ((0.5, 0.1, None), (0.001, 5.0, 100.0), (0.01, 1.0, 0.01)):
            config = TrainConfig(model="rnn", init_std=std, lr=lr, clip_threshold=clip)
            text = outcome_advice(verdict, outcomes.get(kind, DONE), config)
            assert "gate" not in text.lower(), (kind, std, text)


def _run(name: str, model: str, norms: list[float], clipped: list[bool]) -> SimpleNamespace:
    steps = pd.DataFrame({"step": np.arange(1, len(norms) + 1), "grad_norm": norms})
    steps["clipped"] = clipped
    return SimpleNamespace(name=name, title=name, config=TrainConfig(model=model), steps=steps)


def test_compares_caption_states_no_answer_before_the_data() -> None:
    caption = CAPTIONS["compare"]
    assert "answer" not in caption and "study note" not in caption
    assert "Does a GRU need a higher clip threshold than an RNN?" in caption


def test_the_explanation_comes_only_with_a_gru_and_an_rnn_run_and_their_numbers() -> None:
    gru = _run("#1 GRU", "gru", [0.5, 2.0, np.nan, 4.0], [False, True, False, True])
    rnn = _run("#2 RNN", "rnn", [10.0, 20.0, 30.0], [True, True, True])
    old_rnn = _run("#0 RNN", "rnn", [1.0], [False])
    assert gru_rnn_reading([]) is None
    assert gru_rnn_reading([gru]) is None  # type: ignore[list-item]
    assert gru_rnn_reading([old_rnn, rnn]) is None  # type: ignore[list-item]
    text = gru_rnn_reading([old_rnn, gru, rnn])  # type: ignore[list-item]
    assert text is not None and text.endswith(CAPTIONS["compare_explain"])
    assert "#1 GRU: median ‖g‖ 2 before clipping, 50% of steps clipped" in text
    assert "#2 RNN: median ‖g‖ 20 before clipping, 100% of steps clipped" in text
    assert "#0 RNN" not in text  # the newest run of each model
