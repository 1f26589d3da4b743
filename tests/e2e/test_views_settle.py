"""A view left open during a run settles between its redraws: its charts carry data and
nothing on the page stays greyed as stale. Before the live fragment was paced to each view's
redraw time, the Gates view of the book's model (hidden 256) redrew back to back on a loaded
machine and its seven elements stayed stale for as long as anyone watched."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import GruLab

pytestmark = pytest.mark.e2e

BOOK_SIZE = "hidden=256&epochs=50"  # the book's model; a short run that keeps drawing
# The view's own element is there and no element is stale (checked every 20 ms: a pause
# between two redraws is short when the page only just keeps up).
_SETTLED_JS = """
sig => !!document.querySelector(sig) && !document.querySelector('[data-stale="true"]')
"""
SETTLE_MS = 60_000


@pytest.mark.parametrize(
    ("view", "element"), [("Gates", ".st-key-heat"), ("Through time", ".st-key-flow")]
)
def test_a_view_left_open_settles_between_redraws(lab: GruLab, view: str, element: str) -> None:
    lab.open(BOOK_SIZE)
    lab.press("Start")
    lab.wait_for_step(12, timeout_s=120)  # past the first epoch: the probe heatmaps exist
    lab.choose_view(view)
    for _ in range(3):  # settles, and settles again after later redraws
        step = lab.step()
        lab.page.wait_for_function(_SETTLED_JS, arg=element, polling=20, timeout=SETTLE_MS)
        lab.wait_for_step(step + 2, timeout_s=60)
    lab.page.wait_for_function(_SETTLED_JS, arg=element, polling=20, timeout=SETTLE_MS)
    assert lab.exceptions() == 0
