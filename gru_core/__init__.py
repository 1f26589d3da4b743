"""gru_core: an instrumented GRU training engine (d2l's GRU chapter, from scratch).

Layers, one way: config -> data (text from sources) -> model -> fused/train -> telemetry
-> job. No UI here.
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
