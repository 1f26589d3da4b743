"""The live part of the lab and of the watch page: what a run shows while it trains.

Three fragments, so that what changes at every step and costs little (the Step, the state)
is redrawn often and what costs the browser most (a view's charts) only at the view's pace::

    live            no timer: a click on the view control reruns it (not the page)
    ├── status      every ``base`` s while the run trains: metrics, the ending, ``head``
    ├── view control
    └── charts      every ``pacing.charts_interval(base, view)`` s: the chosen view

Where the charts are redrawn as often as the status (a watcher in a crowd, whose base
interval is already slow), the status has no timer of its own: the charts' redraw writes it
into its place above the view control (one redraw instead of two; a fragment may write into
a container of its parent's, and its next run replaces what it wrote there).

A redraw of one fragment sends only its own elements: a kept chart is not sent again on the
status's redraws (with the page's message cache off, ``.streamlit/config.toml``, every
element in a redraw travels in full and is decoded again). A click on a view reruns
``live``, which declares ``charts`` again with the new view and its pace (Streamlit's nested
fragments: the browser replaces a child's timer when its parent declares a new interval),
so choosing a view never costs a full rerun of the page. Script thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from dashboard.session.lab import Lab
from dashboard.sidebar.language import language_fragment
from dashboard.views import training as views
from dashboard.views.pacing import charts_interval, charts_redrawn


def live_section(
    lab: Lab,
    base: float,
    timed: bool,
    snapshot_age: float = 0.0,
    head: Callable[[], None] | None = None,
    on_view: Callable[[str], None] | None = None,
) -> None:
    """The status, view control and charts of ``lab``'s run; on timers if ``timed`` (the
    lab: its job is active; the watch page: always, the owner may start a run at any time).

    ``base``: the status's interval; ``snapshot_age``: how old the charts' snapshot may be
    (a watcher's, ``Telemetry.snapshot``); ``head``: called first in every status redraw,
    inside it (the watch page's heartbeat and note; it may ``st.rerun()``); ``on_view``:
    called after each redraw of the charts with the view drawn (the investigations' record
    of it)."""

    was_active = lab.active

    def status_now() -> None:
        if head is not None:
            head()
        views.live_status(lab)
        if was_active and not lab.active:  # ended, and saved by the job's end
            st.rerun()  # a full rerun: stop the timers, refresh buttons and saved runs

    @language_fragment(run_every=base if timed else None)
    def status() -> None:
        status_now()

    @language_fragment()
    def live() -> None:
        box = st.container()  # the status, above the view control
        view = views.view_control()
        every = charts_interval(base, view)
        apart = every > base  # the Step moves more often than the charts: a timer of its own
        if apart:
            with box:
                status()

        @language_fragment(run_every=every if timed else None)
        def charts() -> None:
            started = time.perf_counter()
            if not apart:  # one timer for both (a watcher in a crowd): one redraw, not two
                with box:
                    status_now()
            views.view_charts(lab, view, snapshot_age)
            if on_view is not None:
                on_view(view)
            charts_redrawn(base, view, every, time.perf_counter() - started, live=timed)

        charts()

    live()
