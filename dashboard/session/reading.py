"""Reading a bench's models: which weights there are to read, and what they say.

The Text and Memory views draw; the inference behind them lives here, under the session's
``Lab`` (``Lab.sources``, ``Lab.analysis``, ``Lab.sample``): a private CPU copy of a weights
snapshot is built (``gru_core.memory.model_from_weights``) and read, and the plain result is
kept until the weights, the passage or the draw change, so the live fragment, which redraws
every second, reads a model that has not moved only once. A shared lab's watchers use the
same cache (forty watchers, one analysis); a lock makes that safe across their threads.
Plain Python, no ``st.*``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import torch

from dashboard.runs.saved import SavedRun
from gru_core import memory
from gru_core.config import TrainConfig
from gru_core.data import Corpus, Vocab
from gru_core.i18n import _
from gru_core.model.sampling import generate
from gru_core.run.job import TrainingJob

CACHE_SIZE = 4  # results kept per kind (the shown model and a few to compare)
SAMPLE_CHARS = 100  # characters generated after the prefix
V = TypeVar("V")


@dataclass(frozen=True)
class Source:
    """A model to read: its settings, vocabulary and a weights snapshot."""

    label: str  # what a picker shows; the same for a running job's weights at every step
    key: str  # changes when the weights do (job step, saved run id)
    config: TrainConfig
    vocab: Vocab
    weights: dict[str, torch.Tensor]
    run_id: str | None = None  # the saved run it is, or None for the job's live weights
    job_run: int | None = None  # the run number of the job whose weights these are (or were)
    step: int | None = None  # a running job's: the step its weights were taken at

    @property
    def title(self) -> str:
        """The label, with the step for a running job's weights (which move every step)."""
        if self.step is None:
            return self.label
        return _("this run (weights at step {step})").format(step=f"{self.step:,}")


def find_sources(
    job: TrainingJob | None, corpus: Corpus | None, job_run: int, runs: Iterable[SavedRun]
) -> dict[str, Source]:
    """The job's latest weights (run number ``job_run``), then every saved run that kept its
    own, newest first; keyed by label. The job's label does not name the step (``Source.
    title`` does): a picker's options, and the reading a view holds, stay the same while the
    job trains."""
    found: dict[str, Source] = {}
    snapshot = job.weights() if job is not None else None
    if job is not None and corpus is not None and snapshot is not None:
        step, weights = snapshot
        label = _("this run (its latest weights)")
        found[label] = Source(
            label, f"job{id(job)}:{step}", job.config, corpus.vocab, weights, job_run=job_run,
            step=step,
        )  # fmt: skip
    for run in reversed(list(runs)):
        if run.weights is not None and run.vocab is not None:
            found[run.name] = Source(
                run.name, run.run_id, run.config, run.vocab, run.weights, run_id=run.run_id,
                job_run=run.number,
            )  # fmt: skip
    return found


def compare_defaults(found: dict[str, Source]) -> list[str]:
    """Connectivity's preselection: the two most recent sources of different models, never
    a run beside its own saved copy. ``found`` is newest first (``find_sources``); a live
    job's weights and the saved run of that job are one run, counted once. Fewer than two
    kinds: the two most recent distinct runs."""
    distinct: list[Source] = []
    for source in found.values():
        if source.job_run is None or all(s.job_run != source.job_run for s in distinct):
            distinct.append(source)
    first = distinct[:1]
    other = [s for s in distinct[1:] if first and s.config.model != first[0].config.model]
    chosen = first + (other[:1] or distinct[1:2])
    return [s.label for s in chosen]


class Reader:
    """Cached reads of weights snapshots (one per ``Lab``; thread-safe)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._analyses: OrderedDict[Hashable, memory.MemoryAnalysis] = OrderedDict()
        self._samples: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()

    def analysis(self, source: Source, text: str, target: int | None) -> memory.MemoryAnalysis:
        """``memory.analyse`` of ``text`` at position ``target`` (ValueError for a passage
        the model cannot read)."""

        def compute() -> memory.MemoryAnalysis:
            return memory.analyse(_model(source), source.vocab, text, target)

        return self._cached(self._analyses, (source.key, text, target), compute)

    def sample(self, source: Source, prefix: str, temperature: float, seed: int) -> str:
        """``prefix`` and SAMPLE_CHARS characters sampled at ``temperature`` with a generator
        seeded by ``seed`` (the same draw for the same arguments)."""

        def compute() -> str:
            generator = torch.Generator().manual_seed(seed)
            return generate(
                _model(source), source.vocab, prefix, SAMPLE_CHARS, temperature, generator
            )

        return self._cached(self._samples, (source.key, prefix, temperature, seed), compute)

    def _cached(
        self, cache: OrderedDict[Hashable, V], key: Hashable, compute: Callable[[], V]
    ) -> V:
        with self._lock:  # watchers of one shared lab read in their own threads
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
            value = compute()
            cache[key] = value
            while len(cache) > self.size:
                cache.popitem(last=False)
            return value


def _model(source: Source) -> torch.nn.Module:
    return memory.model_from_weights(source.config, len(source.vocab), source.weights)
