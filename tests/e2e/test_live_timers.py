"""While a run trains, the Step moves at the page's pace and a view's charts at the view's own
(``dashboard/screens/live.py``), and choosing a view reruns the live part only.

Read on the wire (every message the server sends, decoded): each script run's kind (a full
run of the page or a fragment's), and the charts it sends. On Gates (a heavy view, its
charts every ``HEAVY_S``) the status's redraws send no chart, so the Step moves several
times between two sendings of the Gates charts; a click on a view starts no full run of the
page.
"""

from __future__ import annotations

import time

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from dashboard.screens.lab import REFRESH_S
from dashboard.views.pacing import HEAVY_S
from tests.e2e.conftest import GruLab, read_the_wire

pytestmark = pytest.mark.e2e

RUN = "hidden=64&epochs=2000&speed=20"  # trains throughout the test (stopped after)
WATCH_S = 3 * HEAVY_S


class Runs:
    """The script runs the server starts for the page, in order: (full run?, the plotly
    charts' keys they send), read from the messages as they pass."""

    def __init__(self, lab: GruLab) -> None:
        self.runs: list[tuple[bool, list[str]]] = []
        read_the_wire(lab.page, self._read)

    def _read(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":  # every run starts with one; a fragment's names it
            self.runs.append((not msg.metadata.run.fragment_ids, []))
        elif kind == "delta" and self.runs:
            element = msg.delta.new_element
            if element.WhichOneof("type") == "plotly_chart":
                self.runs[-1][1].append(element.plotly_chart.id)

    def since(self, start: int) -> list[tuple[bool, list[str]]]:
        return self.runs[start:]


def test_the_step_moves_between_the_charts_and_a_view_click_reruns_the_live_part_only(
    lab: GruLab,
) -> None:
    wire = Runs(lab)
    lab.open(RUN)
    lab.press("Start")
    lab.wait_for_step(12, timeout_s=120)  # past the first epoch: Gates has its charts
    clicked = len(wire.runs)
    lab.choose_view("Gates")
    lab.page.wait_for_function(
        "() => { const el = document.querySelector('.st-key-bands');"
        " return !!el && el.getAttribute('data-stale') !== 'true'; }",
        polling=50,
        timeout=30_000,
    )
    assert not any(full for full, _charts in wire.since(clicked)), "a view click reran the page"
    start, steps = len(wire.runs), [lab.step()]
    deadline = time.monotonic() + WATCH_S
    while time.monotonic() < deadline:
        if lab.step() != steps[-1]:
            steps.append(lab.step())
        time.sleep(0.1)
    watched = wire.since(start)
    assert watched and not any(full for full, _charts in watched), "no full run while watching"
    with_charts = [charts for _full, charts in watched if charts]
    status_only = [charts for _full, charts in watched if not charts]
    # The Gates charts come every HEAVY_S (a few more on a slow page is still the pace: the
    # timer runs late, it never runs early); the status about every REFRESH_S.
    assert 1 <= len(with_charts) <= WATCH_S / HEAVY_S + 1, with_charts
    assert len(status_only) >= 3 * len(with_charts), (len(status_only), len(with_charts))
    assert all(any(c.endswith("-bands") for c in charts) for charts in with_charts), with_charts
    assert len(steps) >= 3 * len(with_charts), steps  # the Step moved in between
    assert len(status_only) <= WATCH_S / REFRESH_S + 2
    assert lab.exceptions() == 0
    print(f"{WATCH_S:.0f} s on Gates: {len(with_charts)} chart redraws, "
          f"{len(status_only)} status redraws, the Step shown at {len(steps)} values")  # fmt: skip
