"""The pace of a live fragment: how often a page redraws the view it shows while a run trains.

Streamlit's timer (``st.fragment(run_every=...)``) asks for the next redraw every interval,
however long the last one took, and redraws that follow each other without a pause keep the
view's elements greyed as stale: a view whose redraw outlasts its interval never settles.
So each page that redraws live (the lab's and the watch page's) paces its fragment with
``LivePace``: the page's base interval, doubled until the view's own measured redraw takes at
most 1/PACE of it.

A view that costs the browser most to draw (Gates, Through time, Memory) is not redrawn at
a slower pace but keeps its charts for a few seconds on timed redraws (``display.held``):
a kept chart is the same element, bytes for bytes, which the browser does not draw again
(its plotly component redraws only for a new spec). Choosing it then changes no pace, and
a new pace costs a full rerun of the page, which redraws the whole page (its sidebar
included) in the browser: a loaded browser took 0.5-1.9 s over one, where the view's own
fragment run took 0.2-0.6 s (benchmarks/README.md).
Script thread only (reads and writes this session's state).
"""

from __future__ import annotations

import streamlit as st

from dashboard.views.training import VIEWS

PACE = 2.0  # a live redraw takes at most half of the time between two redraws
MAX_PACED_S = 12.0  # the slowest pacing of a view that redraws slowly
_COSTS = "_redraw_s"  # session state: view -> running mean of its redraw time, s


def paced_interval(base: float, redraw_s: float) -> float:
    """``base``, doubled until a redraw of ``redraw_s`` seconds takes at most 1/PACE of it
    (at most MAX_PACED_S)."""
    interval = base
    while interval < PACE * redraw_s and interval < MAX_PACED_S:
        interval *= 2
    return interval


def shown_view() -> str:
    """The view this session shows: the one just chosen (the view control's state, known
    before the redraw draws it), else the one ``training.live_views`` drew last."""
    return str(st.session_state.get("view") or st.session_state.get("_last_view", VIEWS[0]))


def redraw_costs() -> dict[str, float]:
    """View -> the running mean of its live redraw time in this session, s."""
    return st.session_state.setdefault(_COSTS, {})


class LivePace:
    """One page's live fragment at the pace of the view it shows.

    Made when the page runs in full (``interval`` is what the fragment is declared with);
    ``redrawn`` after each redraw records its time and asks for a full rerun, which declares
    the fragment again, when the view or its pace has changed: the pace doubles or falls to
    a quarter (so that a redraw time near a boundary does not make a full rerun after every
    redraw)."""

    def __init__(self, base: float) -> None:
        self.base, self.shown = base, shown_view()
        self.interval = self.wanted(redraw_costs().get(self.shown, 0.0))

    def chosen(self) -> None:
        """Before a redraw: a view chosen since the fragment was declared, whose pace is not
        the declared one, is drawn by a full rerun at once (which declares its pace) rather
        than drawn twice, by this redraw and by the full rerun after it."""
        view = shown_view()
        redraw_s = redraw_costs().get(view, 0.0)
        if view != self.shown and self.wanted(redraw_s) != self.interval:
            st.rerun()

    def wanted(self, redraw_s: float) -> float:
        """The interval for the view shown now after a redraw of ``redraw_s`` seconds."""
        return paced_interval(self.base, redraw_s)

    def redrawn(self, seconds: float, live: bool = True) -> None:
        """Record a redraw of ``seconds``; ``live``: the fragment is on a timer (a page
        without a running job has none to re-declare)."""
        costs, view = redraw_costs(), shown_view()
        mean = costs[view] = 0.5 * costs.get(view, seconds) + 0.5 * seconds
        wanted = self.wanted(mean)
        moved = wanted > self.interval or 4 * wanted <= self.interval or view != self.shown
        if live and wanted != self.interval and moved:
            st.rerun()  # a full rerun declares the fragment again, at the view's pace
