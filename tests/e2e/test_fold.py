"""The first screen: after Start, the Overview's charts begin above the fold, with no scroll,
on a laptop (1400x900), a desktop (1920x1080) and a projector (1280x720, ``?projector=1``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import ARTIFACTS, PAGE_LOAD_MS, TIMEOUT_MS, GruLab

pytestmark = pytest.mark.e2e

SMALL = "hidden=16&steps=10&batch=8&epochs=200"  # a short run that keeps drawing
SCREENS = {
    "laptop": ({"width": 1400, "height": 900}, ""),
    "desktop": ({"width": 1920, "height": 1080}, ""),
    "projector": ({"width": 1280, "height": 720}, "&projector=1"),
}

# The top edge of the first chart's plotting area (plotly's drag layer of the first axes),
# in viewport pixels, with the scroll position of Streamlit's own scrolling container.
_FIRST_PLOT_JS = """
() => {
  const plot = document.querySelector('.st-key-charts-overview .js-plotly-plot .nsewdrag');
  const main = document.querySelector('[data-testid="stMain"]') || document.scrollingElement;
  if (!plot) return null;
  const box = plot.getBoundingClientRect();
  return {top: box.top, bottom: box.bottom, height: box.height, scrolled: main.scrollTop,
          page: window.scrollY, viewport: window.innerHeight};
}
"""


@pytest.fixture(params=list(SCREENS))
def screen(
    request: pytest.FixtureRequest, browser: Browser, app_url: str
) -> Iterator[tuple[str, GruLab, str]]:
    name = request.param
    viewport, extra = SCREENS[name]
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    gru = GruLab(page, app_url)
    try:
        yield name, gru, SMALL + extra
    finally:
        gru.stop_training()
        context.close()


def test_the_overview_charts_start_above_the_fold(screen: tuple[str, GruLab, str]) -> None:
    name, lab, query = screen
    lab.open(query)
    lab.press("Start")
    lab.wait_for_step(1)
    lab.wait_for_points("Perplexity")
    expect(lab.page.locator('[data-stale="true"]')).to_have_count(0, timeout=PAGE_LOAD_MS)
    box = lab.wait_until(
        lambda: lab.page.evaluate(_FIRST_PLOT_JS), lambda b: b is not None, 20, "the first plot"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lab.page.screenshot(path=str(ARTIFACTS / f"fold-{name}.png"))
    assert box["scrolled"] == 0 and box["page"] == 0, f"the page was scrolled: {box}"
    assert box["top"] < box["viewport"], f"{name}: the first chart starts below the fold: {box}"
    assert lab.exceptions() == 0
