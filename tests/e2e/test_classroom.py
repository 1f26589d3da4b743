"""Made for the room: nothing overflows from 800 to 1400 px, projector mode, teacher links,
a watch link a second browser follows, and saved runs that outlive a reload and a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import VIEWPORT, GruLab, serve
from playwright.sync_api import Browser, Locator, expect

pytestmark = pytest.mark.e2e

# Elements whose content is wider than their box (cut, or hidden behind a scroll bar). An
# equation is held to the width of the element that holds it (KaTeX's own display box
# shrink-wraps its content and always reads 2 px short).
_OVERFLOW_JS = """
() => {
  const found = [];
  const pick = ['button', '[data-testid="stMetric"]', '.katex-display'];
  for (const selector of pick) for (const el of document.querySelectorAll(selector)) {
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;
    const holder = selector === '.katex-display'
      ? el.closest('[data-testid="stElementContainer"]') : el;
    if (el.scrollWidth > holder.clientWidth + 3) {
      found.push([selector, el.innerText.slice(0, 30), el.scrollWidth, holder.clientWidth]);
    }
  }
  return found;
}
"""
# Tick and title font sizes of every chart that has drawn its axes.
_FONTS_JS = """
() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter(el => el._fullLayout.xaxis && el._fullLayout.xaxis.visible !== false)
  .map(el => ({tick: el._fullLayout.xaxis.tickfont.size, title: el._fullLayout.title.font.size}))
"""


@pytest.mark.parametrize("width", [800, 1024, 1400])
def test_nothing_overflows_its_box(lab: GruLab, width: int) -> None:
    lab.page.set_viewport_size({"width": width, "height": 1400})
    lab.open("hidden=32&epochs=30&speed=10")
    lab.press("Start")
    lab.wait_for_step(3)
    lab.wait_for_points("Perplexity")
    lab.page.get_by_text("The equations:").click()  # folded by default (test_fold.py)
    expect(lab.page.locator(".katex-display").first).to_be_visible()
    overflowing = lab.page.evaluate(_OVERFLOW_JS)
    assert overflowing == [], f"at {width} px these overflow their boxes: {overflowing}"
    expect(lab.page.locator(".katex-display").first).to_be_visible()
    lab.screenshot(f"room-{width}.png")


def test_projector_mode_enlarges_the_charts(lab: GruLab) -> None:
    lab.open("hidden=32&epochs=30&speed=10&projector=1")
    lab.press("Start")
    for title in ("Perplexity", "Gradient norm", "update gate Z"):
        lab.wait_for_points(title)
    fonts = lab.page.evaluate(_FONTS_JS)
    assert fonts and all(f["tick"] >= 16 and f["title"] >= 20 for f in fonts), fonts
    lab.press("Stop")
    lab.open("hidden=32&epochs=30&speed=10")
    lab.press("Start")
    for title in ("Perplexity", "Gradient norm", "update gate Z"):
        lab.wait_for_points(title)
    fonts = lab.page.evaluate(_FONTS_JS)
    assert fonts and all(12 <= f["tick"] < 16 for f in fonts), fonts


def test_a_teacher_link_hides_and_locks_controls(lab: GruLab) -> None:
    lab.open("hide=seed,device&lock=lr&lr=5&hidden=64")
    expect(lab.page.get_by_text("Seed", exact=True)).to_have_count(0)
    expect(lab.slider("Learning rate (log scale)")).to_be_disabled()
    assert lab.slider_value("Learning rate (log scale)") == "5.0"
    expect(lab.slider("Hidden size")).to_be_enabled()
    assert lab.slider_value("Hidden size") == "64"  # the URL still sets the rest
    assert lab.exceptions() == 0


def test_a_watch_link_follows_the_run_in_a_second_browser(browser: Browser, lab: GruLab) -> None:
    lab.open("hidden=32&epochs=40&speed=5")
    lab.press("Start")
    lab.wait_for_step(2)
    lab.press("Share this run with the class")
    link = lab.page.locator("code").filter(has_text="watch=").first
    expect(link).to_be_visible()
    url = link.inner_text().strip()
    context = browser.new_context(viewport=VIEWPORT)
    try:
        watcher = GruLab(context.new_page(), lab.base_url)
        watcher.page.goto(url)
        expect(watcher.page.get_by_text("GRU Lab · watching")).to_be_visible(timeout=60_000)
        first = watcher.wait_for_step(1)
        watcher.wait_for_step(first + 3)  # the counter rises on the watcher's own screen
        # Overview: the charts' redraw writes the status (one timer); Gates: the status has a
        # timer of its own. Either way one status, in place, and its Step rises.
        for view in ("Gates", "Overview"):
            watcher.choose_view(view)
            watcher.wait_for_step(watcher.step() + 2)
            expect(watcher.page.locator(".st-key-metrics")).to_have_count(1)
            expect(watcher.metric_card("Step")).to_have_count(1)
        # the owner's sidebar recounts its watchers without a full rerun of its page
        expect(lab.page.get_by_text("1 watching now")).to_be_visible(timeout=15_000)
        for name in ("Start", "Restart", "Pause", "Stop", "Reset", "Step"):
            expect(watcher.button(name)).to_have_count(0)
        expect(watcher.page.get_by_role("slider")).to_have_count(0)
        watcher.page.goto(f"{lab.base_url}/?watch=not-a-real-token")
        expect(watcher.page.get_by_text("not valid")).to_be_visible(timeout=60_000)
    finally:
        context.close()
    assert lab.exceptions() == 0


def test_start_then_share_at_once_keeps_the_run_on_the_owners_page(lab: GruLab) -> None:
    """A teacher who clicks Start and at once Share: the second click's run must not draw
    the bench before the first click's job exists (the page stayed on "nothing is training",
    with Stop disabled, while the run trained unseen)."""
    lab.open("hidden=32&epochs=40&speed=5")
    lab.press("Start")
    lab.press("Share this run with the class")
    lab.wait_for_step(3)  # the owner's page follows its own run
    expect(lab.button("Stop")).to_be_enabled()
    expect(lab.page.get_by_text("Nothing is training")).to_have_count(0)
    assert lab.exceptions() == 0


def test_saved_runs_outlive_a_reload_and_a_server_restart(
    lab: GruLab, corpus_path: Path, runs_db: Path
) -> None:
    lab.open("hidden=32&epochs=2&speed=max")
    lab.press("Start")
    lab.wait_until(
        lambda: lab.metric("State") if lab.metric_card("State").count() else "",
        lambda s: s in ("learned", "did not learn"),
        timeout_s=90,
        what="the run to finish",
    )

    # The saved run's name stands in several places, one of them a data grid's cell that
    # the grid keeps hidden (its accessibility layer): look for one a reader can see.
    def saved_run() -> Locator:
        return lab.page.get_by_text("#1 GRU h32").filter(visible=True).first

    expect(saved_run()).to_be_visible()
    url = lab.page.url
    assert "bench=" in url
    lab.page.reload()
    expect(saved_run()).to_be_visible(timeout=60_000)
    with serve(corpus_path, runs_db, "streamlit-restart-stderr.log") as other:
        lab.page.goto(other + "/?" + url.split("?", 1)[1])
        expect(saved_run()).to_be_visible(timeout=60_000)
    assert lab.exceptions() == 0
