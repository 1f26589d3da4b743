"""axe-core on the lab (after a short run), the trainability map and a watch page, in English
and in Chinese (``?lang=zh``): no serious or critical violation, and no heading that skips a
level (``heading-order``, a moderate rule: the page's outline is what a screen reader's
heading list shows).

What is left out is listed in ``ALLOWED`` (rule id and CSS selector, each with the reason);
the README's accessibility section says the same. A violation outside that list fails the
test with its rule, impact, help text and the selectors of the offending nodes.
"""

from __future__ import annotations

import json
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from conftest import ARTIFACTS, VIEWPORT, GruLab
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.e2e

SMALL_RUN = "hidden=32&epochs=20&speed=20"
TINY_MAP = "map_hidden=8&map_steps=10&map_epochs=1&map_xv=0.01,0.1&map_yv=1,off"
SERIOUS = ("serious", "critical")
ALWAYS = frozenset({"heading-order"})  # rules that fail at any impact
# (rule id, selector) pairs inside Streamlit's own components that a page cannot fix, each
# with why (README, "Accessibility"). Empty: nothing is excused today.
ALLOWED: set[tuple[str, str]] = set()

_axe = Axe()


def _serious(page) -> list[dict]:
    """The serious and critical violations on the page (and ``ALWAYS``'s at any impact), less
    the excused (rule, selector)."""
    results = _axe.run(page)
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] not in SERIOUS and violation["id"] not in ALWAYS:
            continue
        nodes = [
            node
            for node in violation["nodes"]
            if (violation["id"], " ".join(map(str, node["target"]))) not in ALLOWED
        ]
        if nodes:
            found.append(
                {
                    "id": violation["id"],
                    "impact": violation["impact"],
                    "help": violation["help"],
                    "nodes": [
                        {"target": n["target"], "summary": n.get("failureSummary", "")[:300]}
                        for n in nodes[:8]
                    ],
                }
            )
    return found


def start_run(lab: GruLab, query: str) -> None:
    """Open the lab with ``query`` and press Start (the first run button, in any language),
    then wait for a chart with data."""
    lab.page.goto(f"{lab.base_url}/?{query}")
    start = lab.page.locator('.st-key-run_buttons button[kind="primary"]').first
    expect(start).to_be_enabled(timeout=90_000)
    start.click()
    wait_for_data(lab)


def wait_for_data(lab: GruLab, timeout_s: float = 90) -> None:
    lab.wait_until(
        lambda: sum(t["n"] for p in lab.plots() for t in p["traces"]),
        lambda n: n > 0,
        timeout_s,
        "a chart with data",
    )


# Set when any element turns stale (a script run began) after it is installed: a scan is read
# only if the page stayed at rest through it, since Streamlit fades a stale element to a
# third of its opacity, and a scan that catches the fade finds contrast that no reader sees
# for long (it failed once so under load).
_WATCH_STALE_JS = """
() => {
  window.__gruStale = false;
  if (window.__gruStaleObserver) window.__gruStaleObserver.disconnect();
  window.__gruStaleObserver = new MutationObserver(records => {
    if (records.some(r => r.target.getAttribute('data-stale') === 'true')) window.__gruStale = true;
  });
  window.__gruStaleObserver.observe(document.body,
    {subtree: true, attributes: true, attributeFilter: ['data-stale']});
  return !document.querySelector('[data-stale="true"]');
}
"""
SCANS = 5  # scans tried before one at rest is required to pass


def _scan_at_rest(lab: GruLab) -> list[dict]:
    """The serious violations of a scan during which no element turned stale (a page that
    never rests for a scan is scanned as it is, the last time)."""
    page = lab.page
    found: list[dict] = []
    for attempt in range(SCANS):
        lab.settle()
        at_rest = page.evaluate(_WATCH_STALE_JS)
        found = _serious(page)
        if (at_rest and not page.evaluate("window.__gruStale")) or attempt == SCANS - 1:
            return found
    return found


def _check(lab: GruLab, name: str) -> None:
    found = _scan_at_rest(lab)
    outline = lab.page.evaluate(
        "() => [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')]"
        ".map(h => h.tagName + ' ' + h.textContent.trim().slice(0, 40))"
    )
    found += [{"outline": outline}] if found else []  # the headings, to read a heading-order
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(found, indent=1, ensure_ascii=False))
    assert not found, f"axe-core on {name}: " + json.dumps(found, indent=1, ensure_ascii=False)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_lab_after_a_short_run(lab: GruLab, lang: str) -> None:
    start_run(lab, f"{SMALL_RUN}&lang={lang}")
    lab.stop_training()  # a page at rest (best effort: a short run may have ended)
    _check(lab, f"lab-{lang}")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_map(lab: GruLab, lang: str) -> None:
    lab.page.goto(f"{lab.base_url}/map?{TINY_MAP}&lang={lang}")
    start = lab.page.locator('[data-testid="stMainBlockContainer"] button[kind="primary"]')
    expect(start.first).to_be_visible(timeout=60_000)
    start.first.click()
    lab.wait_until(
        lambda: lab.page.locator(".js-plotly-plot").count(), lambda n: n > 0, 60, "the map"
    )
    _check(lab, f"map-{lang}")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_watch_page(browser: Browser, lab: GruLab, lang: str) -> None:
    start_run(lab, f"hidden=32&epochs=40&speed=5&lang={lang}")
    sidebar = lab.page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_role("button", name=re.compile("Share this run|分享|共享")).first.click()
    link = lab.page.locator("code").filter(has_text="watch=").first
    expect(link).to_be_visible()
    url = link.inner_text().strip()
    context = browser.new_context(viewport=VIEWPORT)
    try:
        watcher = GruLab(context.new_page(), lab.base_url)
        watcher.page.goto(url + ("" if "lang=" in url else f"&lang={lang}"))
        wait_for_data(watcher)
        _check(watcher, f"watch-{lang}")
    finally:
        context.close()
