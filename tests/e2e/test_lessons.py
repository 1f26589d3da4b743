"""The 'Exploding gradients' lesson explodes (or diverges), and the page survives it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def _max_before_clipping(lab) -> float:
    trace = lab.trace("Gradient norm", "before clipping")
    return max(trace["y"], default=0.0) if trace else 0.0


def _diverged(lab) -> bool:
    return any("diverged" in text for text in lab.errors())


def test_exploding_gradients_lesson_then_a_small_run(lab) -> None:
    lab.open()
    lab.choose_lesson("Exploding gradients")
    expect(lab.page.get_by_role("switch", name="Clip gradients")).not_to_be_checked()
    lab.press("Start")  # the lesson's own epochs; Reset ends the run once it has exploded
    diverged, exploded = lab.wait_until(
        lambda: (_diverged(lab), _max_before_clipping(lab)),
        lambda r: r[0] or r[1] >= 100,
        timeout_s=40,
        what="divergence or a gradient norm of 100 before clipping",
    )

    lab.reset()
    lab.choose_lesson("Small and fast")
    lab.set_number("Epochs", "epochs", 3)
    lab.press("Start")
    lab.wait_for_step(3)
    assert lab.metric("State") in ("running", "done")
    assert lab.metric("Clip θ in force") == "1"
    lab.wait_until(  # the chart can land a moment after the metrics of the same refresh
        lambda: lab.trace("Gradient norm", "before clipping"),
        lambda t: t is not None and len(t["y"]) >= 3,
        timeout_s=20,
        what="three gradient norms of the small run",
    )
    calm = _max_before_clipping(lab)
    assert 0 < calm < 100
    assert diverged or exploded >= 100 * calm, (
        f"the exploding run's max gradient norm {exploded:.3g} is not 100x the clipped "
        f"small run's {calm:.3g}"
    )
    assert lab.exceptions() == 0
