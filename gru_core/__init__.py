"""gru_core: an instrumented GRU training engine (d2l's GRU chapter, from scratch). No UI here.

Layers, bottom to top (ARCHITECTURE.md; tests/test_architecture.py holds them):
config -> data -> sources -> perplexity -> limits
-> model/ (cells, gates, init, sampling, the textbook)
-> step/ (the K-axis device step: forward, BPTT, statistics, validation) -> theory
-> memory -> run/ (epoch loop, trainer, records, telemetry, verdict, jobs)
-> exports, interrupt (the command lines' CSV files and Ctrl-C) -> cli
-> sweep/ (trainability maps). This file re-exports the names most callers need.
"""

from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.model.cells import ForwardOutput, GRUScratch, LSTMScratch, RNNScratch, build_model
from gru_core.run.records import EpochRecord, GateStats, Outcome, StepRecord
from gru_core.run.trainer import Trainer
from gru_core.sources import load_corpus

__all__ = [
    "Corpus",
    "EpochRecord",
    "ForwardOutput",
    "GRUScratch",
    "GateStats",
    "LSTMScratch",
    "Outcome",
    "RNNScratch",
    "StepRecord",
    "TrainConfig",
    "Trainer",
    "build_model",
    "load_corpus",
]
