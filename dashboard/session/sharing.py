"""One live run for the whole room: share a lab under an unguessable token, watch it read-only.

The teacher's "Share this run" registers their ``Lab`` under a fresh token; a watch link
``?watch=<token>`` shows that lab's current run (charts, status and text, refreshed like the
owner's) to anyone who opens it, with no run controls. Sharing follows the teacher's bench:
a Restart there is what the class sees next. Watchers only read the lab's telemetry snapshots
(cached per version, so forty watchers cost one snapshot per change) and never call anything
that changes it; only the owner's session holds the ``owner`` key that can stop sharing.

At most ``max_watchers`` sessions watch one token at once (a watcher counts while it
refreshed within ``WATCHER_TTL_S``); the next one is told the room is full. A token ends
when the owner stops sharing or their lab closes (the tab went away). Plain Python, no ``st.*``:
the registry is one per server process (``pages/resources.share_registry``).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass, field

from dashboard.session.lab import Lab

MAX_WATCHERS_ENV = "GRU_LAB_MAX_WATCHERS"
DEFAULT_MAX_WATCHERS = 60
WATCHER_TTL_S = 15.0  # a watcher that has not refreshed for this long no longer counts


def default_max_watchers() -> int:
    env = os.environ.get(MAX_WATCHERS_ENV)
    if not env:
        return DEFAULT_MAX_WATCHERS
    try:
        value = int(env)
    except ValueError:
        raise ValueError(f"{MAX_WATCHERS_ENV}={env!r} must be a whole number >= 1") from None
    if value < 1:
        raise ValueError(f"{MAX_WATCHERS_ENV}={env!r} must be a whole number >= 1")
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

    def __init__(self, max_watchers: int | None = None) -> None:
        self.max_watchers = max_watchers or default_max_watchers()
        self._shares: dict[str, _Share] = {}
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
            return token

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
                raise WatchError(
                    "This watch link is not valid any more: the run was never shared under it, "
                    "or its owner stopped sharing it."
                )
            live = {w: seen for w, seen in entry.watchers.items() if now - seen < WATCHER_TTL_S}
            if watcher not in live and len(live) >= self.max_watchers:
                entry.watchers = live
                raise WatchError(
                    f"This run already has {len(live)} watchers, the most one shared run takes "
                    "here. Ask for it on the projector, or try again in a minute."
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
