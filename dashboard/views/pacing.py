"""The pace of a live page: how often it redraws what it shows while a run trains.

A live page has two timers (``screens/live.py``; one where they would keep the same pace): its
status (Step, state: small, cheap) at the page's base interval, and the chosen view's charts at
the view's own pace. Streamlit's
timer (``st.fragment(run_every=...)``) asks for the next redraw every interval, however long
the last one took, and redraws that follow each other without a pause keep the view's
elements greyed as stale: a view whose redraw outlasts its interval never settles. So a
view's charts are redrawn every ``charts_base`` (CHARTS_S; HEAVY_S for the views that cost a
browser seconds to draw: Gates, Through time, Memory), doubled until the view's own measured
redraw takes at most 1/PACE of it. The Step moves at the base interval whatever the view.
Script thread only (reads and writes this session's state).
"""

from __future__ import annotations

import streamlit as st

PACE = 2.0  # a live redraw takes at most half of the time between two redraws
MAX_PACED_S = 12.0  # the slowest pacing of a view that redraws slowly
CHARTS_S = 1.5  # a view's charts are redrawn at most this often (its Step: every base interval)
HEAVY_S = 6.0  # ... and these views', which cost a loaded browser seconds to draw
HEAVY_VIEWS = frozenset({"Gates", "Through time", "Memory"})
_COSTS = "_redraw_s"  # session state: view -> running mean of its redraw time, s


def paced_interval(base: float, redraw_s: float) -> float:
    """``base``, doubled until a redraw of ``redraw_s`` seconds takes at most 1/PACE of it
    (at most MAX_PACED_S)."""
    interval = base
    while interval < PACE * redraw_s and interval < MAX_PACED_S:
        interval *= 2
    return interval


def charts_base(base: float, view: str) -> float:
    """How often ``view``'s charts are redrawn on a page whose status is redrawn every
    ``base`` seconds, before its own redraw time is counted (``paced_interval``)."""
    return max(base, HEAVY_S if view in HEAVY_VIEWS else CHARTS_S)


def redraw_costs() -> dict[str, float]:
    """View -> the running mean of its live redraw time in this session, s."""
    return st.session_state.setdefault(_COSTS, {})


def charts_interval(base: float, view: str) -> float:
    """The interval ``view``'s charts are declared with now (its running mean redraw time
    in this session, ``redraw_costs``)."""
    return paced_interval(charts_base(base, view), redraw_costs().get(view, 0.0))


def charts_redrawn(base: float, view: str, declared: float, seconds: float, live: bool) -> None:
    """Record a redraw of ``view``'s charts that took ``seconds``; while ``live`` (on a
    timer declared at ``declared`` s), ask for a full rerun, which declares the timer again,
    once the view's pace has moved: doubled, or fallen to a quarter (so that a redraw time
    near a boundary does not make a full rerun after every redraw). A view chosen anew is
    declared at its pace by the click's own rerun: it needs none."""
    costs = redraw_costs()
    mean = costs[view] = 0.5 * costs.get(view, seconds) + 0.5 * seconds
    wanted = paced_interval(charts_base(base, view), mean)
    if live and (wanted > declared or 4 * wanted <= declared):
        st.rerun()
