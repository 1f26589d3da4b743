"""The watch page (``?watch=<token>``): a run someone shares, read-only, refreshed live.

The teacher's "Share this run" (the sidebar's Room, ``sidebar/room.py``) registers their bench
in the server's ``ShareRegistry`` (``session/sharing.py``); anyone who opens the link sees that
bench's status, charts and text, with no run controls, and "Fork" to copy its settings into
their own lab. Watchers only read; a crowd redraws less often (``watch_interval``).
Script thread only.
"""

from __future__ import annotations

import secrets

import streamlit as st

from dashboard.screens.live import live_section
from dashboard.session.lab import Lab
from dashboard.session.sharing import ShareRegistry, WatchError
from dashboard.sidebar import controls as ctl
from dashboard.sidebar.room import WATCH
from gru_core.i18n import _

# All watchers of one shared run together. Each watcher redraw costs the server script CPU
# and sending, and a training job on the same cores several times that in GIL hand-offs, so
# the room's redraws are budgeted (benchmarks/README.md: the watchers-cost scenario).
WATCH_REDRAWS_PER_S = 4.0
WATCH_SNAPSHOT_AGE_S = 2.0  # how old a watcher's charts may be (the owner's redraw every 0.75 s)
INTERVAL_SLACK = 1.25  # a watcher's redraw interval is renewed once off by more than this


def watch_page(registry: ShareRegistry, token: str) -> None:
    """What a watcher sees: the shared bench's run, read-only, refreshed live."""
    st.title(_("GRU Lab · watching"))
    watcher = st.session_state.setdefault("_watcher_id", secrets.token_urlsafe(12))
    try:
        shared = registry.watch(token, watcher)
    except WatchError as exc:
        st.error(str(exc))
        st.button(_("Open my own lab"), on_click=_leave_watch)
        return
    st.caption(_("A read-only view of a run someone is sharing; it refreshes by itself."))
    st.button(_("Fork: copy its settings into my own lab"), on_click=_fork, args=(shared,))

    interval = watch_interval(registry.watchers(token))

    def head() -> None:  # every status redraw: still shared? (this watcher's heartbeat)
        try:
            registry.watch(token, watcher)
        except WatchError:
            st.rerun()  # a full run says why and stops the timers
        if interval_is_stale(interval, registry.watchers(token)):
            st.rerun()  # the room grew or shrank: a full run gives the timers a new interval
        last_saved_run(shared)

    # On timers even while nothing trains: the owner may start a run at any time.
    live_section(shared, interval, True, WATCH_SNAPSHOT_AGE_S, head=head)


def last_saved_run(shared: Lab) -> None:
    """A bench with nothing training (the owner's lab just opened again, after a restart
    too): say which run it saved last, so the room knows what it is looking at."""
    newest = shared.runs.newest()
    if shared.job is None and newest is not None:
        if newest.verdict.headline:
            text = _(
                "Nothing is training on this bench now. Its last saved run is {name}: {headline}"
            )
        else:
            text = _("Nothing is training on this bench now. Its last saved run is {name}")
        st.info(text.format(name=newest.title, headline=newest.verdict.headline), icon="💾")


def watch_interval(watchers: int) -> float:
    """Seconds between a watcher's redraws: 2 s for a few, slower for a crowd, so that the
    whole room asks the server for at most about WATCH_REDRAWS_PER_S redraws a second (each
    one serialises the charts for that watcher's browser; the training job needs the rest).
    The interval is decided when a watcher's page runs in full; its live fragment asks for a
    full run when the room has changed enough (INTERVAL_SLACK) that the old one is wrong.
    The charts themselves are shared: every watcher draws a snapshot at most
    WATCH_SNAPSHOT_AGE_S old (usually the one the owner's page drew last) and the figures
    built for it (``display.snapshot_figure``)."""
    return max(2.0, watchers / WATCH_REDRAWS_PER_S)


def interval_is_stale(interval: float, watchers: int) -> bool:
    """Whether a watcher redrawing every ``interval`` s should get a new interval now that
    ``watchers`` watch (off by more than INTERVAL_SLACK either way)."""
    ratio = watch_interval(watchers) / interval
    return not 1 / INTERVAL_SLACK <= ratio <= INTERVAL_SLACK


def _leave_watch() -> None:
    st.query_params.pop(WATCH, None)


def _fork(shared: Lab) -> None:
    """Leave the watch page with the shared run's settings in this session's own controls."""
    job = shared.job
    if job is not None:
        st.session_state._fork_values = ctl.values_from_config(job.config)
    _leave_watch()
