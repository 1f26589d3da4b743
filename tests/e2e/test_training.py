"""A small run trains live; Pause holds it, Step adds one, Resume continues; θ moves live."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SMALL_RUN = "hidden=32&epochs=20&speed=20"  # ~8 s: long enough to watch it rise


def test_small_run_trains_live(lab) -> None:
    lab.open(SMALL_RUN)
    lab.page.evaluate("window.__noReload = true")  # gone if the page reloads or navigates
    lab.press("Start")
    first = lab.wait_for_step(1)
    lab.wait_for_step(first + 3)  # the counter rises while we watch, without a reload
    # The address may gain ?bench= (the investigations keep the bench there), never reload.
    assert lab.page.evaluate("window.__noReload === true")
    # The first screen: perplexity, gradient norm and the update gate, together, with data.
    for title in ("Perplexity", "Gradient norm", "update gate Z: distribution per step"):
        lab.wait_for_points(title)

    lab.choose_view("Gradients")
    lab.wait_for_points("Gradient norm per parameter group")
    lab.choose_view("Gates")
    lab.wait_for_points("Gates: distribution per step")  # Z and R, the panels of one chart
    lab.wait_for_points("Gates on the probe text")
    lab.choose_view("Through time")
    lab.wait_for_points("How far back one loss reaches")  # now, over training: one chart
    assert {"heatmap", "scatter"} <= {t["type"] for t in lab.plot("How far back")["traces"]}

    lab.choose_view("Overview")
    per_epoch = lab.wait_until(
        lambda: lab.trace("Perplexity", "train (per epoch)"),
        lambda t: t is not None and len(t["y"]) >= 3,
        timeout_s=90,
        what="three epochs of training perplexity",
    )
    ppl = per_epoch["y"]
    assert ppl[-1] < ppl[0], f"perplexity per epoch did not fall: {ppl}"
    lab.wait_for_points("Gradient norm")
    expect(lab.page.get_by_text("train perplexity")).to_be_visible()  # the epoch summary
    lab.wait_for_no_plot("How far back")  # the previous view's charts leave once redrawn
    assert lab.exceptions() == 0
    lab.screenshot("small_run.png")


def _steady_step(lab, quiet_s: float) -> int:
    """The Step metric once it has not changed for ``quiet_s`` seconds (a step in flight
    when Pause was pressed may still land)."""
    seen: dict[str, float] = {}

    def read() -> tuple[int, float]:
        value = lab.step()
        now = lab.page.evaluate("performance.now()") / 1000
        if seen.get("value") != value:
            seen.update(value=value, since=now)
        return value, now - seen["since"]

    value, _ = lab.wait_until(read, lambda r: r[1] >= quiet_s, 20, "the Step metric to settle")
    return value


def test_pause_holds_step_adds_one_resume_continues(lab) -> None:
    lab.open("hidden=32&epochs=50&speed=10")  # slow enough to pause mid-run on any machine
    lab.press("Start")
    lab.wait_for_step(2)

    lab.press("Pause")
    expect(lab.button("Resume").or_(lab.exception_box())).to_be_visible()
    assert lab.exceptions() == 0, lab.exception_box().all_inner_texts()
    lab.wait_until(lambda: lab.metric("State"), lambda s: s == "paused", 10, "State: paused")
    held = _steady_step(lab, quiet_s=1.0)
    assert _steady_step(lab, quiet_s=2.0) == held, "the Step counter moved while paused"

    lab.press("Step")
    lab.wait_until(lab.step, lambda s: s != held, 20, "one step after pressing Step")
    assert _steady_step(lab, quiet_s=1.5) == held + 1

    lab.press("Resume")
    lab.wait_for_step(held + 3)
    lab.wait_until(lambda: lab.metric("State"), lambda s: s == "running", 10, "State: running")


def test_clip_threshold_changes_live(lab) -> None:
    lab.open("hidden=32&epochs=50&speed=5")
    lab.press("Start")
    lab.wait_for_step(2)
    assert lab.metric("Clip θ in force") == "1"

    thumb = lab.slider("Clip threshold θ (log scale)")
    thumb.focus()
    for _ in range(3):  # 1 -> 0.5 -> 0.2 -> 0.1 on the 1-2-5 ladder
        thumb.press("ArrowLeft")
    expect(thumb).to_have_attribute("aria-valuetext", "0.1")

    lab.wait_until(
        lambda: lab.metric("Clip θ in force"), lambda v: v == "0.1", 20, "θ in force to be 0.1"
    )
    line = lab.wait_until(
        lambda: lab.trace("Gradient norm", "clip threshold"),
        lambda t: t is not None and bool(t["y"]) and t["y"][-1] == pytest.approx(0.1),
        timeout_s=30,
        what="the clip-threshold line to step down from 1 to 0.1",
    )
    assert line["y"][0] == pytest.approx(1.0)
    assert lab.exceptions() == 0
