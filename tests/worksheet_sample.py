"""A realistic worksheet for the worksheet tests (unit and e2e): three investigations, six
saved runs of 4,000 steps each (d2l's 500 epochs of 8 minibatches), two GRU-and-RNN maps of
init std × clip θ (4 × 4 cells each), built through ``dashboard.worksheet.build``."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from dashboard.runs.saved import SavedRun
from dashboard.worksheet import (
    Investigation,
    Worksheet,
    WorksheetStep,
    worksheet_map,
    worksheet_run,
)
from gru_core.config import TrainConfig
from gru_core.i18n import language_scope
from gru_core.run.records import Outcome
from gru_core.run.verdict import Verdict
from gru_core.sweep.results import CellResult
from gru_core.sweep.spec import SweepSpec

STEPS, PER_EPOCH = 4000, 8


def saved_run(number: int, seed: int, **settings: object) -> SavedRun:
    """A finished run whose perplexity falls from 28 towards 1.5 with noise, 4,000 steps."""
    rng = np.random.default_rng(seed)
    step = np.arange(1, STEPS + 1)
    ppl = 1.5 + 26.5 * np.exp(-step / (600 + 100 * seed)) * np.exp(rng.normal(0, 0.05, STEPS))
    norm = np.exp(rng.normal(0.0, 0.6, STEPS))
    clip = settings.get("clip_threshold", 1.0)
    limit = math.inf if clip is None else float(clip)  # type: ignore[arg-type]
    steps = pd.DataFrame(
        {
            "step": step,
            "epoch": (step - 1) // PER_EPOCH + 1,
            "loss": np.log(ppl),
            "perplexity": ppl,
            "grad_norm": norm,
            "grad_norm_clipped": np.minimum(norm, limit),
            "clipped": (norm > limit).astype(int),
            "clip_threshold": limit,
            "lr": 1.0,
        }
    )
    ends = step[PER_EPOCH - 1 :: PER_EPOCH]
    epochs = pd.DataFrame(
        {
            "epoch": np.arange(1, len(ends) + 1),
            "step": ends,
            "train_perplexity": ppl[ends - 1],
            "val_perplexity": ppl[ends - 1] * 1.1,
        }
    )
    config = TrainConfig(**settings)  # type: ignore[arg-type]
    final, val = float(ppl[-1]), float(ppl[-1] * 1.1)
    verdict = Verdict(
        "learned", f"It learned: perplexity 28.00 → {final:.2f}.", 28.0, final, val, val, 28
    )
    return SavedRun(number, config, config, "timemachine.txt", Outcome("done", STEPS), verdict,
                    steps, epochs)  # fmt: skip


def map_results(spec: SweepSpec) -> list[CellResult]:
    """Every cell finished: high init std or no clipping diverges, the rest learns."""
    out = []
    for model in spec.models:
        for x in spec.x_values:
            for y in spec.y_values:
                base = dict(model=model, x=x, y=y, seed=0, init_std=x, clip_threshold=y, lr=1.0,
                            num_steps=35, hidden_size=256)  # fmt: skip
                if x >= 1 or (y is None and x >= 0.1):
                    cell = CellResult(**base, status="diverged", verdict="diverged",  # type: ignore[arg-type]
                                      diverged_step=12, steps=11, curve_steps=(1.0,),
                                      curve_perplexity=(28.0,))  # fmt: skip
                else:
                    ppl = 2.0 + 3 * x + (0.5 if model == "rnn" else 0.0)
                    cell = CellResult(**base, status="done", verdict="learned", steps=4000,  # type: ignore[arg-type]
                                      epochs=500, final_train_perplexity=ppl * 0.9,
                                      final_val_perplexity=ppl, best_val_perplexity=ppl,
                                      curve_steps=(1.0, 2000.0, 4000.0),
                                      curve_perplexity=(28.0, 6.0, ppl))  # fmt: skip
                out.append(cell)
    return out


def realistic_sheet(language: str = "en", answer: str = "") -> Worksheet:
    """Three investigations with two runs each and two maps between them."""
    with language_scope(language):
        runs = [
            worksheet_run(saved_run(i + 1, i, **settings))
            for i, settings in enumerate(
                [
                    dict(model="gru", clip_threshold=1.0),
                    dict(model="rnn", clip_threshold=1.0),
                    dict(model="gru", init_std=0.1),
                    dict(model="rnn", init_std=0.1, clip_threshold=0.1),
                    dict(model="gru", num_steps=280),
                    dict(model="gru", num_steps=35, hidden_size=64),
                ]
            )
        ]
        spec = SweepSpec(models=("gru", "rnn"), base=TrainConfig(hidden_size=256))
        maps = [worksheet_map(map_results(spec), spec), worksheet_map(map_results(spec), spec)]
    steps = (
        WorksheetStep("Run a GRU and an RNN at θ = 1", True, "GRU 1.62, RNN 1.71 (validation)"),
        WorksheetStep("Open Through time on both", False),
    )
    questions = (
        "Does a GRU need a higher clip threshold than an RNN?",
        "Why an init std of 0.01?",
        "How long can a sequence get?",
    )
    investigations = tuple(
        Investigation(
            title=q,
            done=i != 2,
            steps=steps,
            answer=answer or f"My answer to question {i + 1}:\nthe GRU learned at θ = 1 too.",
            data_says="Both learned at θ = 1; the RNN clipped 3× as often.",
            theory="λ = 0 at init std ≈ 1/√hidden: H_t = Z_t ⊙ H_{t-1} + (1 − Z_t) ⊙ H̃_t",
            runs=tuple(runs[2 * i : 2 * i + 2]),
            maps=(maps[i],) if i < 2 else (),
        )
        for i, q in enumerate(questions)
    )
    return Worksheet(investigations, language, dt.date(2026, 12, 5), "Ada", "bench-7")
