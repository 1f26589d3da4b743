"""A saved run as stored data: ``StoredRun``, its ids, the eviction rule, the store errors.

Shared by every run store (``run_store``'s memory store, ``run_sqlite``, a future server
database), so each fact lives once. ``StoredRun`` holds plain dicts for the configs and the
outcome, and two DataFrames for the metrics.

Browser tokens and run ids are URL-safe base64 (``secrets.token_urlsafe``); anything else from
a URL or cookie is refused with ValueError before it reaches a database.

A store keeps a run's frames with ``codec.encode_frame`` (Arrow IPC).
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pandas as pd

from gru_core.i18n import N_, Note, _
from gru_core.run.records import Outcome

PER_TOKEN = 8  # default bound: saved runs per browser token
TOTAL = 2000  # default bound: saved runs in a whole store
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # a browser token: >= 96 random bits
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
K = TypeVar("K", bound=Hashable)


def unreadable(path: object, err: object) -> Note:
    """What a store says when one of its rows could not be read back."""
    return Note(N_("A saved run in {path} could not be read ({err})."), path=path, err=err)


class StorageError(Exception):
    """The backing database failed (I/O error, locked, gone, unreadable); see run_store."""


class CorruptStoreError(StorageError):
    """The database file is damaged or not ours; open_run_store moves it aside."""


class StoreBusyError(StorageError):
    """Another connection held the database's write lock past the busy timeout: the file is
    fine, so the store tries it again at the next call."""


@dataclass(frozen=True)
class StoredShare:
    """A run shared read-only (``session/sharing``), kept with the runs so that its watch link
    can tell the truth after a server restart, and follow the owner's bench when it is back."""

    watch: str  # the watch link's token (``?watch=``)
    bench: str  # the owner's browser token: their bench, when it opens again
    shared_at: float  # epoch seconds

    def __post_init__(self) -> None:
        check_token(self.watch)
        check_token(self.bench)


# -- ids ---------------------------------------------------------------------------------
def new_token() -> str:
    """A fresh, unguessable browser token (32 URL-safe characters, 192 random bits)."""
    return secrets.token_urlsafe(24)


def valid_token(token: object) -> bool:
    """Whether ``token`` may key saved runs: URL-safe base64, 16 to 128 characters."""
    return isinstance(token, str) and _TOKEN.fullmatch(token) is not None


def check_token(token: object) -> str:
    """``token`` itself, or ValueError saying what a token must look like."""
    if not isinstance(token, str) or not valid_token(token):
        shown = repr(token) if len(repr(token)) <= 40 else repr(token)[:37] + "..."
        raise ValueError(f"browser token {shown} must be 16-128 URL-safe base64 characters")
    return token


def new_run_id() -> str:
    """A fresh, unguessable run id (16 URL-safe characters)."""
    return secrets.token_urlsafe(12)


def check_run_id(run_id: object) -> str:
    """``run_id`` itself, or ValueError saying what a run id must look like."""
    if not isinstance(run_id, str) or _RUN_ID.fullmatch(run_id) is None:
        raise ValueError(f"run_id {run_id!r} must be 8-64 URL-safe base64 characters")
    return run_id


# -- the eviction rule -------------------------------------------------------------------
def check_bounds(per_token: int, total: int) -> tuple[int, int]:
    """(per_token, total) if they are usable bounds, else ValueError naming the bad one."""
    if isinstance(per_token, bool) or not isinstance(per_token, int) or per_token < 1:
        raise ValueError(f"per_token={per_token!r} must be an integer >= 1")
    if isinstance(total, bool) or not isinstance(total, int) or total < per_token:
        raise ValueError(f"total={total!r} must be an integer >= per_token ({per_token})")
    return per_token, total


def evictions(rows: Sequence[tuple[K, bool]], limit: int, keep: K | None = None) -> list[K]:
    """Which keys to drop so that at most ``limit`` rows remain.

    ``rows`` are (key, pinned), oldest first. The oldest unpinned rows go first; only if that
    is not enough do the oldest pinned ones go. ``keep`` (the run being saved) never goes.
    """
    over = len(rows) - limit
    if over <= 0:
        return []
    unpinned = [key for key, pinned in rows if not pinned and key != keep]
    pinned = [key for key, pinned in rows if pinned and key != keep]
    return (unpinned + pinned)[:over]


def check_pin_room(pinned_others: int, per_token: int) -> None:
    """ValueError if one more pinned run would leave no unpinned slot for the next run.

    At most ``per_token - 1`` runs per token may be pinned, so a run that just finished can
    always be saved without evicting a pinned one.
    """
    if pinned_others >= per_token - 1:
        raise ValueError(
            _(
                "at most {n} saved runs can be pinned (one slot stays free for the next run); "
                "unpin one first"
            ).format(n=per_token - 1)
        )


@dataclass(frozen=True, eq=False)  # eq=False: DataFrames have no truth value to compare by
class StoredRun:
    """A finished or stopped run as the run store keeps it."""

    run_id: str  # unguessable id (run_store.new_run_id), unique per browser token
    name: str  # the label shown in the saved-runs list
    created: float  # when it was saved, epoch seconds; orders runs oldest first
    pinned: bool  # pinned runs are evicted last (see run_store.evictions)
    start_config: dict[str, Any]  # TrainConfig.to_dict() when the run started
    end_config: dict[str, Any]  # TrainConfig.to_dict() when it ended (knobs may have moved)
    corpus_name: str
    outcome: dict[str, Any]  # status, step, message, last_finite_loss, ... (+ optional verdict)
    steps: pd.DataFrame  # Snapshot.steps: one row per kept step
    epochs: pd.DataFrame  # Snapshot.epochs: one row per epoch

    def __post_init__(self) -> None:
        check_run_id(self.run_id)
        if not isinstance(self.name, str) or not isinstance(self.corpus_name, str):
            raise ValueError("StoredRun name and corpus_name must be strings")
        if not isinstance(self.created, int | float) or not math.isfinite(self.created):
            raise ValueError(f"StoredRun created={self.created!r} must be finite epoch seconds")
        for label in ("start_config", "end_config", "outcome"):
            if not isinstance(getattr(self, label), dict):
                raise ValueError(f"StoredRun {label} must be a dict")
        if "status" not in self.outcome or "step" not in self.outcome:
            raise ValueError("StoredRun outcome must have 'status' and 'step'")
        for label in ("steps", "epochs"):
            if not isinstance(getattr(self, label), pd.DataFrame):
                raise ValueError(f"StoredRun {label} must be a pandas DataFrame")
        object.__setattr__(self, "pinned", bool(self.pinned))


def outcome_to_dict(outcome: Outcome, verdict: str | None = None) -> dict[str, Any]:
    """An Outcome as StoredRun.outcome, with the advice verdict when there is one."""
    body: dict[str, Any] = {
        "status": outcome.status,
        "step": outcome.step,
        "message": outcome.message,
        "last_finite_loss": outcome.last_finite_loss,
        "last_finite_grad_norm": outcome.last_finite_grad_norm,
    }
    if verdict is not None:
        body["verdict"] = verdict
    return body


def progress_json(body: dict[str, Any]) -> str:
    """A bench's investigation progress as the JSON text a store keeps (ValueError when it
    is not a plain JSON object)."""
    if not isinstance(body, dict):
        raise ValueError("progress must be a dict")
    try:
        return json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"progress must be plain JSON: {err}") from err


def progress_from_json(text: str) -> dict[str, Any]:
    """``progress_json``'s inverse (ValueError when the text is damaged)."""
    try:
        body = json.loads(text)
    except (TypeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"damaged JSON: {err}") from err
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    return body


class RunStore(Protocol):
    """Where saved runs live. Every method raises ValueError for an invalid token."""

    @property
    def status_message(self) -> str | None:
        """Why the store is not fully working now (runs kept in memory only, a damaged
        row), else None: the page shows it while it lasts."""

    @property
    def notice(self) -> str | None:
        """What was found at start (a damaged file kept as a backup): each session is told
        once; else None."""

    def list_runs(self, token: str) -> list[StoredRun]:
        """The token's runs, oldest first."""

    def get(self, token: str, run_id: str) -> StoredRun | None:
        """One run of the token's, or None."""

    def save(self, token: str, run: StoredRun) -> None:
        """Add or replace (same run_id) a run, then evict beyond the bounds."""

    def set_pinned(self, token: str, run_id: str, pinned: bool) -> None:
        """Pin or unpin (no-op for an unknown run; ValueError past the pin limit)."""

    def delete(self, token: str, run_id: str) -> None:
        """Forget a run (no-op for an unknown run)."""

    def save_share(self, share: StoredShare) -> None:
        """Keep a watch link (replacing one with the same ``watch`` token)."""

    def get_share(self, watch: str) -> StoredShare | None:
        """The watch link with this token, or None."""

    def share_of_bench(self, bench: str) -> StoredShare | None:
        """The newest watch link of the bench with this browser token, or None."""

    def delete_share(self, watch: str) -> None:
        """Forget a watch link (no-op for an unknown one)."""

    def save_progress(self, token: str, body: dict[str, Any]) -> None:
        """Keep the bench's investigation progress, a plain JSON object (replacing it)."""

    def get_progress(self, token: str) -> dict[str, Any] | None:
        """The bench's investigation progress, or None."""
