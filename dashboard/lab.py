"""One browser session's lab bench: its corpus, its training job, its saved runs.

Plain Python (no ``st.*``), so it can be tested directly. ``app.py`` keeps one ``Lab`` per
session in a session-scoped resource whose release hook calls ``Lab.close()``: closing the
tab stops that session's job.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import pandas as pd

from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.job import ENDED, TrainingJob
from gru_core.records import Outcome
from gru_core.telemetry import Snapshot, Telemetry

MAX_SAVED_RUNS = 8


@dataclass(frozen=True)
class SavedRun:
    """A finished or stopped run, kept for comparison and download."""

    name: str
    config: TrainConfig
    corpus_name: str
    outcome: Outcome
    steps: pd.DataFrame
    epochs: pd.DataFrame

    def metrics_csv(self) -> bytes:
        """Per-step metrics joined with the per-epoch ones (at each epoch's last step)."""
        epochs = self.epochs.drop(columns=["epoch"], errors="ignore")
        merged = self.steps.merge(epochs, on="step", how="left") if len(epochs) else self.steps
        return merged.to_csv(index=False).encode()

    def config_json(self) -> bytes:
        body = {
            "config": self.config.to_dict(),
            "corpus": self.corpus_name,
            "outcome": {
                "status": self.outcome.status,
                "step": self.outcome.step,
                "message": self.outcome.message,
            },
        }
        return json.dumps(body, indent=2).encode()


@dataclass
class Lab:
    corpus: Corpus
    telemetry: Telemetry = field(default_factory=Telemetry)
    job: TrainingJob | None = None
    runs: OrderedDict[str, SavedRun] = field(default_factory=OrderedDict)
    run_counter: int = 0
    upload_key: str | None = None  # identity of the last accepted upload
    _saved_job: TrainingJob | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the job ---------------------------------------------------------------------------
    def start(
        self, config: TrainConfig, max_steps_per_sec: float | None, background: bool = True
    ) -> TrainingJob:
        """Replace any current job with a new one (ValueError on a bad config or text)."""
        self.stop()
        telemetry = Telemetry()
        job = TrainingJob(config, self.corpus, telemetry, max_steps_per_sec=max_steps_per_sec)
        with self._lock:
            self.run_counter += 1
            self.telemetry, self.job = telemetry, job
        if background:
            job.start()
        return job

    def stop(self) -> None:
        job = self.job
        if job is not None and job.alive:
            job.stop(wait=True)
        self.save_finished()

    def reset(self) -> None:
        """Stop and forget the current run (saved runs stay)."""
        self.stop()
        with self._lock:
            self.job, self.telemetry = None, Telemetry()

    def close(self) -> None:
        """The session is gone (tab closed): stop its job so no thread outlives it."""
        job = self.job
        if job is not None:
            job.stop(wait=True, timeout=10.0)
        with self._lock:
            self.job = None

    @property
    def active(self) -> bool:
        """A job exists that has not ended (queued, running or paused)."""
        return self.job is not None and self.job.status().state not in ENDED | {"ready"}

    def snapshot(self) -> Snapshot:
        return self.telemetry.snapshot()

    # -- saved runs ------------------------------------------------------------------------
    def save_finished(self) -> SavedRun | None:
        """Keep the current job's run once it has ended (at most once per job)."""
        job = self.job
        if job is None or job is self._saved_job:
            return None
        status = job.status()
        if status.state not in ENDED or status.step == 0:
            return None
        snap = job.telemetry.snapshot()
        cfg = job.config
        clip = "off" if cfg.clip_threshold is None else f"{cfg.clip_threshold:g}"
        name = (
            f"#{self.run_counter} {cfg.model.upper()} h{cfg.hidden_size} std{cfg.init_std:g} "
            f"clip {clip} T{cfg.num_steps} ({status.state})"
        )
        assert status.outcome is not None
        run = SavedRun(name, cfg, self.corpus.name, status.outcome, snap.steps, snap.epochs)
        with self._lock:
            self._saved_job = job
            self.runs[name] = run
            while len(self.runs) > MAX_SAVED_RUNS:
                self.runs.popitem(last=False)
        return run
