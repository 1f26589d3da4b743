"""One live run for the whole room: share a lab under an unguessable token, watch it read-only.

The teacher's "Share this run" registers their ``Lab`` under a fresh token; a watch link
``?watch=<token>`` shows that lab's current run (charts, status and text, refreshed like the
owner's) to anyone who opens it, with no run controls. Sharing follows the teacher's bench:
a Restart there is what the class sees next. Watchers only read the lab's telemetry snapshots
(cached per version, so forty watchers cost one snapshot per change) and never call anything
that changes it; only the owner's session holds the ``owner`` key that can stop sharing.

At most ``max_watchers`` sessions watch one token at once (a watcher counts while it
refreshed within ``WATCHER_TTL_S``); the next one is told the room is full. A token ends
when the owner stops sharing. Plain Python, no ``st.*``: the registry is one per server
process (``screens/resources.share_registry``).

With a run store (``ShareRegistry(store=...)``) each share is also kept on disk with the
owner's browser token (``StoredShare``). A watch link whose owner's lab is not here (the
owner's tab closed, or the server restarted since) then says so, with the times, and works
again as soon as the owner's bench opens (``resume``: the same browser token, after a
restart too), under the same link.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dashboard.runs.records import RunStore, StorageError, StoredShare
from dashboard.session.lab import Lab
from gru_core.i18n import N_, _

MAX_WATCHERS_ENV = "GRU_LAB_MAX_WATCHERS"
DEFAULT_MAX_WATCHERS = 60
MONTHS = (  # a date's month as _clock shows it (marked here, worded there)
    N_("Jan"), N_("Feb"), N_("Mar"), N_("Apr"), N_("May"), N_("Jun"),
    N_("Jul"), N_("Aug"), N_("Sep"), N_("Oct"), N_("Nov"), N_("Dec"),
)  # fmt: skip
WATCHER_TTL_S = 15.0  # a watcher that has not refreshed for this long no longer counts
SERVER_STARTED = time.time()  # when this server process loaded the dashboard
_NOT_VALID = N_(
    "This watch link is not valid any more: the run was never shared under it, "
    "or its owner stopped sharing it."
)  # worded where raised (the watcher's page run): _(_NOT_VALID)


def default_max_watchers() -> int:
    env = os.environ.get(MAX_WATCHERS_ENV)
    if not env:
        return DEFAULT_MAX_WATCHERS
    wrong = _("{name}={value!r} must be a whole number >= 1").format(
        name=MAX_WATCHERS_ENV, value=env
    )
    try:
        value = int(env)
    except ValueError:
        raise ValueError(wrong) from None
    if value < 1:
        raise ValueError(wrong)
    return value


class WatchError(Exception):
    """A watch link that cannot be followed; the message says why, for the page."""


@dataclass
class _Share:
    lab: Lab
    owner: str  # secret of the owner's session: only it can stop sharing
    started: float = field(default_factory=time.time)
    watchers: dict[str, float] = field(default_factory=dict)  # watcher id -> last seen


class ShareRegistry:
    """Token -> shared lab, with a watcher count per token. Thread-safe."""

    def __init__(
        self,
        max_watchers: int | None = None,
        store: RunStore | None = None,
        started: float | None = None,
    ) -> None:
        """``started``: when this server started (epoch seconds; default SERVER_STARTED)."""
        self.max_watchers = max_watchers or default_max_watchers()
        self.store = store
        self.started = SERVER_STARTED if started is None else started
        self._shares: dict[str, _Share] = {}
        self._here: set[str] = set()  # tokens whose lab was shared in this process
        self._lock = threading.Lock()

    def share(self, lab: Lab, owner: str) -> str:
        """Share ``lab``; return its watch token (the same one while it stays shared)."""
        with self._lock:
            for token in [t for t, e in self._shares.items() if e.lab.closed]:
                del self._shares[token]  # shares whose owners' tabs went away
            for token, entry in self._shares.items():
                if entry.lab is lab:
                    return token
            token = secrets.token_urlsafe(16)
            self._shares[token] = _Share(lab, owner)
            self._here.add(token)
        bench = lab.runs.token
        if self.store is not None and bench is not None:
            self.store.save_share(StoredShare(token, bench, time.time()))
        return token

    def resume(self, lab: Lab, owner: str) -> str | None:
        """The owner's bench is back (the same browser token, in a new session or after a
        restart): share ``lab`` again under the watch token it had, so old links work.
        Returns that token, or None when this bench had no share."""
        bench = lab.runs.token
        if self.store is None or bench is None:
            return None
        stored = self._stored(lambda store: store.share_of_bench(bench))
        if stored is None:
            return None
        with self._lock:
            entry = self._shares.get(stored.watch)
            if entry is None or entry.lab.closed:
                self._shares[stored.watch] = _Share(lab, owner)
                self._here.add(stored.watch)
            elif entry.lab is not lab:  # the bench is open in another tab that shares it
                return None
        return stored.watch

    def token_of(self, lab: Lab) -> str | None:
        with self._lock:
            return next((t for t, e in self._shares.items() if e.lab is lab), None)

    def stop(self, token: str, owner: str) -> bool:
        """End a share; only its owner can. True when it ended."""
        with self._lock:
            entry = self._shares.get(token)
            if entry is None or not secrets.compare_digest(entry.owner, owner):
                return False
            del self._shares[token]
        if self.store is not None:
            self.store.delete_share(token)
        return True

    def watch(self, token: str, watcher: str) -> Lab:
        """The shared lab for ``watcher`` (and count them); WatchError when the token is
        unknown or ended, or the room is full."""
        now = time.monotonic()
        with self._lock:
            entry = self._shares.get(token) if isinstance(token, str) else None
            if entry is not None and entry.lab.closed:  # the owner's tab went away
                del self._shares[token]
                entry = None
            if entry is None:
                raise WatchError(self._why_not(token))
            live = {w: seen for w, seen in entry.watchers.items() if now - seen < WATCHER_TTL_S}
            if watcher not in live and len(live) >= self.max_watchers:
                entry.watchers = live
                raise WatchError(
                    _(
                        "This run already has {n} watchers, the most one shared run takes "
                        "here. Ask for it on the projector, or try again in a minute."
                    ).format(n=len(live))
                )
            live[watcher] = now
            entry.watchers = live
            return entry.lab

    def leave(self, token: str, watcher: str) -> None:
        with self._lock:
            entry = self._shares.get(token)
            if entry is not None:
                entry.watchers.pop(watcher, None)

    def watchers(self, token: str) -> int:
        """Watchers seen within WATCHER_TTL_S."""
        now = time.monotonic()
        with self._lock:
            entry = self._shares.get(token)
            if entry is None:
                return 0
            return sum(now - seen < WATCHER_TTL_S for seen in entry.watchers.values())

    def _why_not(self, token: object) -> str:
        """Why a watch link has no lab behind it now, as truthfully as the store knows (in
        the language in force: the watcher's page run asks)."""
        if not isinstance(token, str) or self.store is None:
            return _(_NOT_VALID)
        try:
            stored = self._stored(lambda store: store.get_share(token))
        except ValueError:  # not a token at all
            return _(_NOT_VALID)
        if stored is None:
            return _(_NOT_VALID)
        shared = _clock(stored.shared_at)
        if stored.watch not in self._here and stored.shared_at < self.started:
            return _(
                "This run was shared at {shared}; the server restarted at {restarted}, and "
                "the teacher has not opened their lab since. This link works again as soon "
                "as they do (or they can share again)."
            ).format(shared=shared, restarted=_clock(self.started))
        return _(
            "This run was shared at {shared}, and the teacher's lab has been closed since. "
            "This link works again as soon as they open it (or they can share again)."
        ).format(shared=shared)

    def _stored(self, read: Callable[[RunStore], StoredShare | None]) -> StoredShare | None:
        assert self.store is not None
        try:
            return read(self.store)
        except StorageError:  # the store keeps itself; a watch link only loses its history
            return None


def _clock(epoch_s: float) -> str:
    """'10:42' (server local time), or '5 Dec 10:42' when not today."""
    then = time.localtime(epoch_s)
    today = time.localtime()
    clock = time.strftime("%H:%M", then)
    if then[:3] == today[:3]:
        return clock
    # English reads '5 Dec 10:42', Chinese '12月5日 10:42'.
    month = _(MONTHS[then.tm_mon - 1])
    return _("{day} {month} {clock}").format(day=then.tm_mday, month=month, clock=clock)
