"""One browser session's lab bench: its corpus, its training job, its saved runs.

Plain Python (no ``st.*``), so it can be tested directly. The lab page (``screens/lab.get_lab``)
keeps one ``Lab`` per session in ``st.session_state`` and ties it to a session-scoped resource
(``screens/resources.session_guard``) whose release calls ``Lab.close()``: closing the tab stops
that session's job. The Text and Memory views draw what ``sources``, ``analysis`` and
``sample`` return (the reading itself: ``reading.py``).
"""

from __future__ import annotations

import hashlib
import random
import threading
import weakref
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dashboard.runs.records import new_run_id
from dashboard.runs.saved import SavedRun, SavedRuns, worth_keeping
from dashboard.session.reading import Reader, Source, find_sources
from gru_core.config import TrainConfig
from gru_core.data import Corpus, split_train_val
from gru_core.i18n import _
from gru_core.memory import MemoryAnalysis
from gru_core.run.job import ENDED, TrainingJob
from gru_core.run.telemetry import Snapshot, Telemetry
from gru_core.run.verdict import Evidence, Verdict, judge
from gru_core.sources import corpus_from_upload


class JobRunner(Protocol):
    """How a Lab's jobs are driven: in a background thread (the app) or in the caller's
    thread, step by step (the tests' ``SyncRunner``: AppTest never fires the page's timer)."""

    def launch(self, job: TrainingJob, step_only: bool) -> None: ...

    def step(self, job: TrainingJob) -> None: ...


class ThreadRunner:
    """The app's runner: each job trains in its own worker thread."""

    def launch(self, job: TrainingJob, step_only: bool) -> None:
        if step_only:
            job.step_once()  # starts paused, with one step granted
        job.start()

    def step(self, job: TrainingJob) -> None:
        job.step_once()


SETTLE_S = 30.0  # the longest a page run waits for a Start still building its job


@dataclass
class Lab:
    corpus: Corpus
    runner: JobRunner = field(default_factory=ThreadRunner)
    telemetry: Telemetry = field(default_factory=Telemetry)
    job: TrainingJob | None = None
    job_corpus: Corpus | None = None  # the text the current job trains on
    runs: SavedRuns = field(default_factory=SavedRuns)
    keep_short: bool = False  # keep runs shorter than MIN_STEPS_KEPT steps too
    run_counter: int = 0
    upload_key: str | None = None  # identity of the last accepted upload
    rejected: tuple[str, str] | None = None  # (identity, message) of the last refused upload
    close_timer: threading.Timer | None = None  # pending close after the tab went away
    closed: bool = False  # the session is gone; a shared watch link to it has ended
    reader: Reader = field(default_factory=Reader)  # cached reads of its models' weights
    _settled: weakref.WeakSet[TrainingJob] = field(default_factory=weakref.WeakSet)  # ended, saved
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Held while a job is being replaced. Streamlit may begin the next run of the page (a
    # second click) while a Start callback is still building the job in the old run's
    # thread: that run would draw "nothing is training", register no live refresh, and
    # the page would stay so with the run training unseen (and unstoppable from it).
    _starting: threading.Lock = field(default_factory=threading.Lock)

    # -- the job ---------------------------------------------------------------------------
    def start(
        self, config: TrainConfig, max_steps_per_sec: float | None, step_only: bool = False
    ) -> TrainingJob:
        """Replace any current job with a new one, launched by the runner (ValueError on a
        bad config or text). ``step_only``: train one minibatch, then wait paused.

        The job saves its own run when it ends (``_on_end``, from the job's thread), under a
        run id and number fixed here, so no page rerun is needed and none can save it twice."""
        with self._starting:
            self.stop()
            telemetry = Telemetry()
            with self._lock:
                number = max(self.run_counter + 1, self.runs.next_number)
            ending = _Ending(number, self.corpus, new_run_id())
            job = TrainingJob(
                config,
                self.corpus,
                telemetry,
                max_steps_per_sec=max_steps_per_sec,
                held_bytes=self.runs.weights_bytes(),  # the estimate counts saved weights
                on_end=lambda ended: self._on_end(ended, ending),
            )
            with self._lock:
                self.closed = False
                self.run_counter = number
                self.telemetry, self.job, self.job_corpus = telemetry, job, self.corpus
            self.runner.launch(job, step_only)
            return job

    def settled(self, timeout_s: float = SETTLE_S) -> bool:
        """Wait until no job is being started (a page run calls this before it draws the
        bench); False when one still is after ``timeout_s``."""
        if not self._starting.acquire(timeout=timeout_s):
            return False
        self._starting.release()
        return True

    def step(self, config: TrainConfig, max_steps_per_sec: float | None) -> None:
        """One more minibatch: of the active job (pausing it), else of a new one."""
        if self.active and self.job is not None:
            self.runner.step(self.job)
        else:
            self.start(config, max_steps_per_sec, step_only=True)

    def stop(self) -> None:
        """Stop the current job (its run is saved by the job's end, once)."""
        job = self.job
        if job is not None:
            job.stop(wait=True)

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
            self.job, self.closed = None, True

    @property
    def active(self) -> bool:
        """A job exists that has not ended (queued, running or paused), or has ended a moment
        ago and is still being saved (the page then reruns once, with the run in Compare)."""
        job = self.job
        if job is None:
            return False
        state = job.status().state
        if state in ENDED:
            with self._lock:
                return job not in self._settled
        return state != "ready"

    def clipped_counts(self) -> tuple[int, int]:
        """(steps, clipped steps) of the bench's run so far (``Telemetry.clipped_counts``)."""
        return self.telemetry.clipped_counts()

    def snapshot(self, max_age: float = 0.0) -> Snapshot:
        """The bench's telemetry snapshot (``Telemetry.snapshot``: ``max_age`` for watchers)."""
        return self.telemetry.snapshot(max_age)

    # -- corpus ----------------------------------------------------------------------------
    def accept_upload(self, data: bytes, filename: str) -> str | None:
        """Use an uploaded file as the corpus for the next run.

        Processed in memory (never opened as a path). Returns a success message the first
        time a file is accepted and None when the same file is offered again (every rerun
        re-offers the widget's file); raises ValueError with a learner-readable message
        for a refused file, keeping the previous corpus. A running job is not touched.
        """
        key = hashlib.sha1(data).hexdigest() + ":" + filename
        if key == self.upload_key:
            return None
        if self.rejected is not None and self.rejected[0] == key:
            raise ValueError(self.rejected[1])
        try:
            corpus = corpus_from_upload(data, filename)
        except ValueError as exc:
            self.rejected = (key, str(exc))
            raise
        self.corpus, self.upload_key = corpus, key
        return _("Using {name}: {n} characters after preprocessing.").format(
            name=corpus.name, n=f"{len(corpus.tokens):,}"
        )

    def use_corpus(self, corpus: Corpus) -> None:
        """Switch back to a shared corpus (e.g. The Time Machine)."""
        if self.corpus is not corpus:
            self.corpus, self.upload_key = corpus, None

    # -- reading its models (the Text and Memory views draw what these return) ------------
    def sources(self) -> dict[str, Source]:
        """Weights to read: the job's latest snapshot, then saved runs that kept theirs."""
        return find_sources(self.job, self.job_corpus, self.run_counter, self.runs)

    def analysis(self, source: Source, text: str, target: int | None) -> MemoryAnalysis:
        """What the hidden state carries on ``text`` (``gru_core.memory.analyse``), cached
        until the weights, passage or position change; ValueError for an unreadable text."""
        return self.reader.analysis(source, text, target)

    def sample(self, source: Source, temperature: float, seed: int) -> str:
        """Text sampled from ``source`` after the bench's prefix, the same for the same seed."""
        prefix = (self.job_corpus or self.corpus).prefix
        return self.reader.sample(source, prefix, temperature, seed)

    def random_passage(self, rng: random.Random, length: int = 300) -> str:
        """A random stretch of the validation text (what the model never trained on)."""
        corpus = self.job_corpus or self.corpus
        config = self.job.config if self.job is not None else TrainConfig()
        _train, val = split_train_val(corpus.tokens, config.max_tokens, config.val_tokens)
        tokens = val if len(val) > 50 else corpus.tokens
        start = rng.randrange(max(1, len(tokens) - length))
        return corpus.vocab.decode(tokens[start : start + length])

    # -- outcome and saved runs ------------------------------------------------------------
    def verdict(self) -> Verdict | None:
        """How the current job went, once it has ended (see ``gru_core.run.verdict``)."""
        job, corpus = self.job, self.job_corpus
        if job is None or corpus is None:
            return None
        return _judged(job, corpus)

    def _on_end(self, job: TrainingJob, ending: _Ending) -> None:
        """The job has ended (any thread, never ``st.*``): keep its run if it is worth
        keeping (``saved.worth_keeping``). Idempotent by run id: ``SavedRuns`` and the
        store ignore a second save of the same id."""
        try:
            run = self._ended_run(job, ending)
            if run is not None:
                self.runs.add(run)
        finally:
            with self._lock:
                self._settled.add(job)

    def _ended_run(self, job: TrainingJob, ending: _Ending) -> SavedRun | None:
        status, verdict = job.status(), _judged(job, ending.corpus)
        if verdict is None or status.outcome is None:
            return None
        if not worth_keeping(status.step, verdict, self.keep_short):
            return None
        snap = job.telemetry.snapshot()
        weights = job.weights()
        return SavedRun(
            number=ending.number,
            start_config=job.start_config,
            config=job.config,
            corpus_name=job.corpus_name,
            outcome=status.outcome,
            verdict=verdict,
            steps=snap.steps,
            epochs=snap.epochs,
            vocab=ending.corpus.vocab,
            weights=weights[1] if weights is not None else None,
            run_id=ending.run_id,
            flow_last=last_flow(snap.flow_last),
        )


def _judged(job: TrainingJob, corpus: Corpus) -> Verdict | None:
    """The verdict on ``job`` once it has ended, else None."""
    state = job.status().state
    if state not in ENDED:
        return None
    snap = job.telemetry.snapshot()
    return judge(state, Evidence.from_columns(snap.steps, snap.epochs), len(corpus.vocab))


@dataclass(frozen=True)
class _Ending:
    """What a job's end needs to save its run, fixed when the job is made."""

    number: int  # the session's run counter, '#3'
    corpus: Corpus  # the text it trained on (its vocabulary)
    run_id: str  # the store's key: a second save of the same run replaces, never adds


def last_flow(flow_last: np.ndarray) -> tuple[float, ...]:
    """The newest recorded ||∂ℓ_T/∂H_t|| row without its NaN padding (() if none)."""
    if not len(flow_last):
        return ()
    row = np.asarray(flow_last[-1], dtype=np.float64)
    return tuple(float(v) for v in row[~np.isnan(row)])


class CloseOnRelease:
    """Ties a Lab to a session-scoped resource. Streamlit releases the resource when the
    session's websocket disconnects (the tab closed, or a network blip); ``release`` then
    stops the lab's job after ``grace_s`` seconds, unless the session comes back first and
    builds a new guard, which cancels the pending close."""

    def __init__(self, lab: Lab, grace_s: float) -> None:
        self.lab, self.grace_s = lab, grace_s
        pending = lab.close_timer
        if pending is not None:
            pending.cancel()
            lab.close_timer = None

    def release(self) -> None:
        timer = threading.Timer(self.grace_s, self.lab.close)
        timer.daemon = True
        timer.name = "gru-lab-close"
        self.lab.close_timer = timer
        timer.start()
