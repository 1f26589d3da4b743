"""The room: teacher links that hide or lock controls, and one shared run the class watches.

- ``?hide=clip_on,clip`` leaves those controls out of a student's sidebar; ``?lock=lr`` shows
  them greyed out at the link's value (TensorFlow Playground's ``<control>_hide`` trick). The
  rest of the URL still sets the other controls. "Link for students" builds such a URL from the
  current settings; a lesson can suggest what to hide and lock.
- "Share this run" gives a read-only ``?watch=<token>`` link to this bench (``sharing.py``);
  ``watch_page`` is what a watcher sees: status, charts and text, no run controls, and "Fork"
  to copy the settings into their own lab.
Script thread only.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from dashboard.session.lab import Lab
from dashboard.session.sharing import ShareRegistry, WatchError
from dashboard.sidebar import controls as ctl
from dashboard.sidebar import lessons
from dashboard.views import training as views
from dashboard.views.display import PROJECTOR_KEY, projector_on

HIDE, LOCK, WATCH = "hide", "lock", "watch"  # URL parameters
# All watchers of one shared run together. Each watcher redraw costs the server ~5 ms of
# script CPU plus sending, and a training job on the same cores several times that in GIL
# hand-offs: at 5 a second, 40 watchers slowed a run by 8-10%, at 4 by 5-6% (watchers-cost).
WATCH_REDRAWS_PER_S = 4.0
WATCH_SNAPSHOT_AGE_S = 2.0  # how old a watcher's charts may be (the owner's redraw every 0.75 s)
INTERVAL_SLACK = 1.25  # a watcher's redraw interval is renewed once off by more than this
WATCH_COUNT_S = 5.0  # how often the owner's sidebar recounts its watchers
ROOM_KEYS = (HIDE, LOCK, WATCH)


@st.cache_resource(show_spinner=False)
def share_registry() -> ShareRegistry:
    """The server's shared runs: one registry for every session, so watchers find them."""
    return ShareRegistry()


def parse_keys(raw: str | None, what: str) -> tuple[frozenset[str], list[str]]:
    """'clip_on,clip' -> the control keys it names, and a warning for each unknown one."""
    if not raw:
        return frozenset(), []
    keys, warnings = set(), []
    for key in (k.strip() for k in str(raw).split(",")):
        if key in ctl.BY_KEY:
            keys.add(key)
        elif key:
            warnings.append(f"ignored `{what}={key}` in the URL: no control is called {key!r}")
    return frozenset(keys), warnings


def read_room_params(params: Mapping[str, str]) -> list[str]:
    """Remember the link's hidden and locked controls for this session; return warnings."""
    hidden, w1 = parse_keys(params.get(HIDE), HIDE)
    locked, w2 = parse_keys(params.get(LOCK), LOCK)
    st.session_state._hidden, st.session_state._locked = hidden, locked - hidden
    return w1 + w2


def hidden_controls() -> frozenset[str]:
    return st.session_state.get("_hidden", frozenset())


def locked_controls() -> frozenset[str]:
    return st.session_state.get("_locked", frozenset())


def student_link(
    base_url: str, values: Mapping[str, Any], hide: list[str], lock: list[str], projector: bool
) -> str:
    """A URL with the settings that differ from the defaults, what to hide and lock, and
    projector mode; never this browser's saved-runs token."""
    query = ctl.to_query(values)
    if hide:
        query[HIDE] = ",".join(hide)
    if lock:
        query[LOCK] = ",".join(k for k in lock if k not in hide)
    if projector:
        query[PROJECTOR_KEY] = "1"
    scheme, netloc, path, _, _ = urlsplit(base_url or "http://localhost:8501/")
    return urlunsplit((scheme, netloc, path or "/", urlencode(query, safe=","), ""))


def room_section(lab: Lab, registry: ShareRegistry, values: dict[str, Any], sb: Any) -> None:
    """The sidebar's Room section: projector mode, a link for students, sharing this run."""
    sb.header("Room")
    sb.toggle(
        "Projector mode",
        key=PROJECTOR_KEY,
        help="large type, thick lines and fewer ticks for the back row (or ?projector=1)",
    )
    with sb.popover("Link for students", width="stretch"):
        lesson = lessons.BY_NAME.get(st.session_state.get("lesson") or "")
        labels = {c.key: c.label for c in ctl.CONTROLS}
        hide = st.multiselect(
            "Hide", list(labels), default=list(lesson.hide) if lesson else [],
            format_func=labels.get, key="link_hide",
        )  # fmt: skip
        lock = st.multiselect(
            "Lock (shown, greyed out)", [k for k in labels if k not in hide],
            default=[k for k in (lesson.lock if lesson else ()) if k not in hide],
            format_func=labels.get, key="link_lock",
        )  # fmt: skip
        url = student_link(str(st.context.url or ""), values, hide, lock, projector_on())
        st.code(url, language=None, wrap_lines=True)
        st.caption("Opens with these settings; hidden controls keep the values above.")
    _share_controls(lab, registry, sb)


def _owner_secret() -> str:
    return st.session_state.setdefault("_owner_secret", secrets.token_urlsafe(16))


def _share_controls(lab: Lab, registry: ShareRegistry, sb: Any) -> None:
    token = registry.token_of(lab)
    if token is None:
        if sb.button("Share this run with the class", help="a read-only link to this bench"):
            registry.share(lab, _owner_secret())
            st.rerun()
        return
    base = urlsplit(str(st.context.url or "http://localhost:8501/"))
    link = urlunsplit((base.scheme, base.netloc, base.path or "/", urlencode({WATCH: token}), ""))

    @st.fragment(run_every=WATCH_COUNT_S)
    def watching() -> None:  # the count changes while the page does not rerun in full
        st.caption(f"Shared, read-only · {registry.watchers(token)} watching now")

    with sb:
        watching()
    sb.code(link, language=None, wrap_lines=True)
    if sb.button("Stop sharing"):
        registry.stop(token, _owner_secret())
        st.rerun()


def watch_page(registry: ShareRegistry, token: str) -> None:
    """What a watcher sees: the shared bench's run, read-only, refreshed live."""
    st.title("GRU Lab · watching")
    watcher = st.session_state.setdefault("_watcher_id", secrets.token_urlsafe(12))
    try:
        shared = registry.watch(token, watcher)
    except WatchError as exc:
        st.error(str(exc))
        st.button("Open my own lab", on_click=_leave_watch)
        return
    st.caption("A read-only view of a run someone is sharing; it refreshes by itself.")
    st.button("Fork: copy its settings into my own lab", on_click=_fork, args=(shared,))

    interval = watch_interval(registry.watchers(token))

    @st.fragment(run_every=interval)
    def live() -> None:
        try:
            registry.watch(token, watcher)  # still shared? (counts as this watcher's heartbeat)
        except WatchError as exc:
            st.error(str(exc))
            return
        if interval_is_stale(interval, registry.watchers(token)):
            st.rerun()  # the room grew or shrank: a full run gives the fragment a new timer
        views.live_views(shared, WATCH_SNAPSHOT_AGE_S)

    live()


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
