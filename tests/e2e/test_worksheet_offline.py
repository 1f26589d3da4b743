"""The downloaded worksheet, opened from disk with the network blocked, draws every chart.

The realistic worksheet (``tests/worksheet_sample.py``: three investigations, six runs of
4,000 steps, two maps) is written to a file and opened with ``file://`` in Chromium; every
request that is not ``file://`` is aborted and recorded. Every chart must render (its div
holds plotly's ``svg.main-svg``), take the page's width while printing and the window's after,
and nothing may have asked for the network.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route

from dashboard.worksheet import worksheet_html
from dashboard.worksheet.html import PRINT_WIDTH_PX
from tests.e2e.conftest import TIMEOUT_MS
from tests.worksheet_sample import realistic_sheet

pytestmark = pytest.mark.e2e

WIDTHS_JS = """
() => Array.from(document.querySelectorAll('.plotly-graph-div'))
  .map(div => Math.round(div.querySelector('svg.main-svg').getBoundingClientRect().width))
"""
RENDERED_JS = """
() => Array.from(document.querySelectorAll('.plotly-graph-div'))
  .filter(div => div.querySelector('svg.main-svg') !== null).length
"""


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_worksheet_renders_every_chart_offline(
    browser: Browser, tmp_path: Path, language: str
) -> None:
    sheet = realistic_sheet(
        language, answer="门控循环单元 learns at θ = 1." if language == "zh_CN" else ""
    )
    path = tmp_path / "worksheet.html"
    path.write_text(worksheet_html(sheet), encoding="utf-8")
    expected = len(sheet.charts())
    left: list[str] = []

    def block(route: Route) -> None:
        url = route.request.url
        if url.startswith("file://"):
            route.continue_()
        else:
            left.append(url)
            route.abort()

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.route("**/*", block)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(path.as_uri(), wait_until="load", timeout=TIMEOUT_MS)
        page.wait_for_function(f"({RENDERED_JS})() === {expected}", timeout=TIMEOUT_MS * 3)
        assert page.evaluate(RENDERED_JS) == expected
        assert page.locator(".plotly-graph-div").count() == expected
        heading = page.locator("section.investigation h3").first.inner_text()
        assert heading == ("Steps" if language == "en" else "步骤")
        screen = page.evaluate(WIDTHS_JS)
        assert min(screen) > PRINT_WIDTH_PX  # the charts follow the window
        page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
        page.wait_for_function(f"({WIDTHS_JS})().every(w => w === {PRINT_WIDTH_PX})")
        page.evaluate("window.dispatchEvent(new Event('afterprint'))")
        page.wait_for_function(f"({WIDTHS_JS})().every(w => w > {PRINT_WIDTH_PX})")
        assert page.evaluate(WIDTHS_JS) == screen
        assert left == [], f"requests left the page: {left}"
        assert errors == [], f"script errors: {errors}"
    finally:
        context.close()
