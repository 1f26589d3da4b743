"""gru_core: an instrumented GRU training engine (d2l's GRU chapter, from scratch).

Layers, one way: config -> data (text from sources) -> model -> fused/train -> telemetry
-> job. No UI here.
"""

from .config import TrainConfig
from .data import Corpus
from .model import ForwardOutput, GRUScratch, LSTMScratch, RNNScratch, build_model
from .records import EpochRecord, GateStats, Outcome, StepRecord
from .sources import load_corpus
from .train import Trainer

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
