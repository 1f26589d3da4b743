"""Saved runs: what a finished or stopped run leaves behind for comparison and download.

A run is kept when it ended after at least ``MIN_STEPS_KEPT`` steps, or when it failed (a run
that diverged at its first step is exactly the one a class wants to look at), or when the
learner asked to keep short runs. At most ``MAX_SAVED_RUNS`` are kept; the oldest unpinned
run goes first, and a pinned run is never dropped.

With a run store and a browser token (``SavedRuns(store, token)``), every saved run and pin is
also written to the store, and ``load()`` brings them back after a reload or a server
restart (configs, metrics, outcome and verdict; the final weights stay in memory only).
Plain Python (no ``st.*``).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import pandas as pd
import torch

from dashboard.runs.records import PER_TOKEN, StoredRun, new_run_id, outcome_to_dict
from dashboard.runs.store import RunStore
from gru_core.config import LIVE_KNOBS, MODEL_TITLES, TrainConfig, format_knob
from gru_core.data import Vocab
from gru_core.i18n import N_, _, worded
from gru_core.run.records import Outcome
from gru_core.run.verdict import Verdict

MAX_SAVED_RUNS = PER_TOKEN  # per session (browser token), in memory and in the store
MIN_STEPS_KEPT = 5  # shorter runs (a Restart a moment after Start) are not kept unless asked
LIVE_NAMES = {name: knob.label for name, knob in LIVE_KNOBS.items()}


@dataclass(frozen=True)
class SavedRun:
    """A finished or stopped run: its settings at start and at the end, metrics and verdict."""

    number: int  # the session's run counter, '#3'
    start_config: TrainConfig
    config: TrainConfig  # in force at the end (live knob changes included)
    corpus_name: str
    outcome: Outcome
    verdict: Verdict
    steps: pd.DataFrame
    epochs: pd.DataFrame
    pinned: bool = False
    vocab: Vocab | None = None  # with weights: what the memory views need, in memory only
    weights: dict[str, torch.Tensor] | None = None  # final parameters (CPU copies)
    flow_last: tuple[float, ...] = ()  # the last recorded ||∂ℓ_T/∂H_t||, t = 1..T (reach)
    run_id: str = field(default_factory=new_run_id)  # the store's key
    created: float = field(default_factory=time.time)

    @functools.cached_property
    def name(self) -> str:
        """The run's identifier (lookups, stored runs, widget values): English, stable; made
        once (every fact it names is frozen)."""
        return run_name(self.number, self.start_config, self.config, self.verdict.kind)

    @property
    def title(self) -> str:
        """The same name as the page shows it, in the language in force."""
        return run_title(self.number, self.start_config, self.config, self.verdict.kind)

    def metrics_csv(self) -> bytes:
        """Per-step metrics joined with the per-epoch ones (at each epoch's last step): made
        once, since a saved run never changes (the page offers it at every rerun, and a long
        run's CSV took 0.1-0.2 s to write)."""
        return self._metrics_csv

    @functools.cached_property
    def _metrics_csv(self) -> bytes:
        epochs = self.epochs.drop(columns=["epoch"], errors="ignore")
        merged = self.steps.merge(epochs, on="step", how="left") if len(epochs) else self.steps
        return merged.to_csv(index=False).encode()

    def config_json(self) -> bytes:
        body = {
            "start_config": self.start_config.to_dict(),
            "config": self.config.to_dict(),  # the settings in force when the run ended
            "corpus": self.corpus_name,
            "outcome": {
                "status": self.outcome.status,
                "verdict": self.verdict.kind,
                "headline": self.verdict.headline,
                "step": self.outcome.step,
                "message": self.outcome.message,
            },
        }
        return json.dumps(body, indent=2).encode()


def to_stored(run: SavedRun) -> StoredRun:
    outcome = outcome_to_dict(run.outcome, run.verdict.kind)
    outcome |= {
        "headline": run.verdict.headline,
        "start_perplexity": run.verdict.start_perplexity,
        "final_perplexity": run.verdict.final_perplexity,
        "final_val_perplexity": run.verdict.final_val_perplexity,
        "best_val_perplexity": run.verdict.best_val_perplexity,
        "vocab_size": run.verdict.vocab_size,
        "number": run.number,
        "flow_last": list(run.flow_last),
    }
    return StoredRun(
        run_id=run.run_id,
        name=run.name,
        created=run.created,
        pinned=run.pinned,
        start_config=run.start_config.to_dict(),
        end_config=run.config.to_dict(),
        corpus_name=run.corpus_name,
        outcome=outcome,
        steps=run.steps,
        epochs=run.epochs,
    )


def from_stored(stored: StoredRun) -> SavedRun:
    """A stored run as a SavedRun (ValueError if its configs no longer validate)."""
    o = stored.outcome
    outcome = Outcome(
        str(o["status"]),
        int(o["step"]),
        str(o.get("message", "")),
        o.get("last_finite_loss"),
        o.get("last_finite_grad_norm"),
    )
    verdict = Verdict(
        str(o.get("verdict", o["status"])),
        str(o.get("headline", "")),
        o.get("start_perplexity"),
        o.get("final_perplexity"),
        o.get("final_val_perplexity"),
        o.get("best_val_perplexity"),
        o.get("vocab_size"),
    )
    return SavedRun(
        number=int(o.get("number", 0)),
        start_config=TrainConfig.from_dict(stored.start_config),
        config=TrainConfig.from_dict(stored.end_config),
        corpus_name=stored.corpus_name,
        outcome=outcome,
        verdict=verdict,
        steps=stored.steps,
        epochs=stored.epochs,
        pinned=stored.pinned,
        flow_last=tuple(float(v) for v in o.get("flow_last") or ()),
        run_id=stored.run_id,
        created=stored.created,
    )


def _value(name: str, config: TrainConfig) -> str:
    return format_knob(name, getattr(config, name))


Wording = Callable[[str], str]  # a catalogue id -> the words shown


def run_name(
    number: int, start: TrainConfig, end: TrainConfig, verdict: str, word: Wording = str
) -> str:
    """'#3 GRU h128 std0.1 clip 1→off lr 5 T35 (blew up)': a live change shows as old→new.

    ``word`` words each catalogue id: ``str`` (as is) gives the run's identifier, English and
    stable; ``_`` gives its title in the language in force ('#3 GRU h128 标准差0.1 裁剪 1→关闭
    学习率 5 T35（爆炸）'). Symbols (h, T) and numbers stay as they are."""

    def shown(name: str, config: TrainConfig) -> str:
        value = _value(name, config)
        return word(value) if value == LIVE_KNOBS[name].off else value

    live = []
    default = TrainConfig()
    for name, short in LIVE_NAMES.items():
        before, after = shown(name, start), shown(name, end)
        if before != after:
            live.append(f"{word(short)} {before}→{after}")
        elif name == "clip_threshold" or before != shown(name, default):
            live.append(f"{word(short)} {before}")
    name = (
        f"#{number} {word(MODEL_TITLES[start.model])} h{start.hidden_size} "
        f"{word(N_('std'))}{start.init_std:g} {' '.join(live)} T{start.num_steps}"
    )
    return word(N_("{name} ({verdict})")).format(name=name, verdict=word(verdict))


def run_title(number: int, start: TrainConfig, end: TrainConfig, verdict: str) -> str:
    """``run_name`` worded in the language in force (what the page shows)."""
    return run_name(number, start, end, verdict, _)


def worth_keeping(steps_taken: int, verdict: Verdict, keep_short: bool) -> bool:
    return steps_taken >= MIN_STEPS_KEPT or verdict.failed or keep_short


class SavedRuns:
    """The session's saved runs, oldest first, bounded, with pins; written through to a run
    store when given one (keyed by the browser ``token``). Thread-safe."""

    def __init__(
        self,
        capacity: int = MAX_SAVED_RUNS,
        store: RunStore | None = None,
        token: str | None = None,
    ) -> None:
        self.capacity = capacity
        self.store, self.token = (store, token) if store is not None and token else (None, None)
        self._runs: list[SavedRun] = []
        self._lock = threading.Lock()

    def load(self) -> list[str]:
        """Replace the runs with the store's; return a note for each stored run that could
        not be read back (e.g. saved by a version with other config fields)."""
        if self.store is None or self.token is None:
            return []
        runs, skipped = [], []
        for stored in self.store.list_runs(self.token):
            try:
                runs.append(from_stored(stored))
            except (ValueError, KeyError, TypeError) as exc:
                skipped.append(f"{stored.name}: {exc}")
        with self._lock:
            self._runs = runs[-self.capacity :]
        return skipped

    def refresh(self) -> int:
        """Take in the runs another session of this bench saved to the store since (a second
        tab; a page left while its run was ending, saved when its session closed): kept in
        order of creation, within capacity. Return how many came in."""
        if self.store is None or self.token is None:
            return 0
        with self._lock:
            have = {r.run_id for r in self._runs}
        new = []
        for stored in self.store.list_runs(self.token):
            if stored.run_id not in have:
                try:
                    new.append(from_stored(stored))
                except (ValueError, KeyError, TypeError):
                    continue  # load() said so when the session started
        if new:
            with self._lock:
                known = {r.run_id for r in self._runs}
                runs = self._runs + [r for r in new if r.run_id not in known]
                self._runs = sorted(runs, key=lambda r: r.created)[-self.capacity :]
        return len(new)

    @property
    def status_message(self) -> str | None:
        """Why runs are not reaching the disk now (shown while it lasts), else None."""
        return worded(self.store.status_message) if self.store is not None else None

    @property
    def notice(self) -> str | None:
        """What the store found at start (a damaged file kept as a backup): told once."""
        return worded(self.store.notice) if self.store is not None else None

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[SavedRun]:
        return iter(list(self._runs))

    def __bool__(self) -> bool:
        return bool(self._runs)

    def names(self) -> list[str]:
        return [run.name for run in self._runs]

    def get(self, name: str) -> SavedRun | None:
        return next((run for run in self._runs if run.name == name), None)

    def newest(self) -> SavedRun | None:
        return self._runs[-1] if self._runs else None

    def add(self, run: SavedRun) -> list[SavedRun]:
        """Keep ``run``; return the runs dropped to stay within capacity (oldest unpinned).
        A run whose id is already here is not added again (a job's end saves it once; a
        second save of the same id, from any thread, changes nothing)."""
        with self._lock:
            if any(r.run_id == run.run_id for r in self._runs):
                return []
            if self.store is not None and self.token is not None:
                self.store.save(self.token, to_stored(run))  # evicts by the same rule
            self._runs.append(run)
            dropped = []
            while len(self._runs) > self.capacity:
                victim = next((r for r in self._runs if not r.pinned), None)
                if victim is None:  # cannot happen: pin() leaves one slot unpinned
                    break
                self._runs.remove(victim)
                dropped.append(victim)
            return dropped

    def pin(self, name: str, pinned: bool = True) -> None:
        """Pin (never dropped) or unpin a run. At most capacity - 1 runs can be pinned, so a
        new run always has a place; ValueError beyond that or for an unknown name."""
        with self._lock:
            run = next((r for r in self._runs if r.name == name), None)
            if run is None:
                raise ValueError(_("no saved run named {name!r}").format(name=name))
            if pinned and not run.pinned:
                if sum(r.pinned for r in self._runs) >= self.capacity - 1:
                    raise ValueError(
                        _("at most {n} runs can be pinned; unpin one first").format(
                            n=self.capacity - 1
                        )
                    )
            self._runs[self._runs.index(run)] = replace(run, pinned=pinned)
        if self.store is not None and self.token is not None:
            self.store.set_pinned(self.token, run.run_id, pinned)

    def weights_bytes(self) -> int:
        """Memory the saved runs' final weights take (the memory views read them)."""
        return sum(
            t.numel() * t.element_size()
            for run in self._runs
            if run.weights is not None
            for t in run.weights.values()
        )

    @property
    def next_number(self) -> int:
        """The run counter after the runs already saved (restored ones included)."""
        return max((run.number for run in self._runs), default=0) + 1
