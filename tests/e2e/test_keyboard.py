"""The lab and the map from the keyboard alone (Tab, Shift+Tab, Enter, Space, arrow keys): start
a run, pause it, step it, stop it, switch the view, pick a lesson, and open a map cell in the
lab; every control reached shows a visible focus ring (a solid outline of 2 px or more, 3:1
or more against white: WCAG 2.2's focus appearance)."""

from __future__ import annotations

import re

import pytest
from conftest import GruLab
from playwright.sync_api import Page, expect

from dashboard.sidebar.controls import to_query
from dashboard.sidebar.lessons import LESSONS, lesson_values

pytestmark = pytest.mark.e2e

SMALL_RUN = "hidden=32&epochs=30&speed=10"
TINY_MAP = "map_hidden=8&map_steps=10&map_epochs=1&map_xv=0.01,0.1&map_yv=1,off"
# The first map's cell texts ('…' while a cell runs), as tests/e2e/test_map.py reads them.
MAP_CELLS_JS = """
() => {
  const el = document.querySelector('.js-plotly-plot');
  if (!el || !el._fullData || !el._fullData.length) return null;
  return (el._fullData[0].text || []).flat().map(String);
}
"""
MAX_TABS = 160  # more than every focusable thing on the page

_FOCUSED = """([selector, text]) => {
  const e = document.activeElement;
  if (!e || !e.matches(selector)) return false;
  const name = (e.getAttribute('aria-label') || e.innerText || '').trim();
  return text === null || name === text;
}"""
_RING = """() => {
  const s = getComputedStyle(document.activeElement);
  return {style: s.outlineStyle, width: parseFloat(s.outlineWidth), colour: s.outlineColor};
}"""


def _luminance(rgb: str) -> float:
    channels = [int(v) / 255 for v in re.findall(r"\d+", rgb)[:3]]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def assert_focus_ring(page: Page) -> None:
    """The focused control draws a ring a reader sees: solid, 2 px or more, 3:1 on white."""
    ring = page.evaluate(_RING)
    assert ring["style"] not in ("none", "hidden") and ring["width"] >= 2, ring
    contrast = 1.05 / (_luminance(ring["colour"]) + 0.05)
    assert contrast >= 3.0, (ring, contrast)


def tab_to(page: Page, selector: str, text: str | None = None, back: bool = False) -> None:
    """Press Tab (Shift+Tab with ``back``) until the focused element matches ``selector`` and
    is named ``text``; then check its focus ring."""
    for _ in range(MAX_TABS):
        if page.evaluate(_FOCUSED, [selector, text]):
            assert_focus_ring(page)
            return
        page.keyboard.press("Shift+Tab" if back else "Tab")
    pytest.fail(f"{MAX_TABS} tabs never reached {selector} named {text!r}")


def _button(lab: GruLab, name: str) -> None:
    tab_to(lab.page, ".st-key-run_buttons button", name)


def test_the_lab_from_the_keyboard(lab: GruLab) -> None:
    lab.open(SMALL_RUN)
    _button(lab, "Start")
    lab.page.keyboard.press("Enter")
    lab.wait_for_step(2)

    _button(lab, "Pause")
    lab.page.keyboard.press("Space")
    expect(lab.button("Resume")).to_be_visible()
    expect(lab.button("Step")).to_be_enabled()
    held = lab.wait_until(
        lambda: (lab.step(), lab.step()), lambda s: s[0] == s[1], 10, "a steady step"
    )[0]
    _button(lab, "Step")
    lab.page.keyboard.press("Enter")
    lab.wait_for_step(held + 1)

    # The view selector: arrow keys move along the views, Enter chooses one.
    tab_to(lab.page, ".st-key-view [role=radio]")
    for _ in range(2):
        lab.page.keyboard.press("ArrowRight")
    assert_focus_ring(lab.page)
    lab.page.keyboard.press("Enter")
    gates = lab.page.locator(".st-key-view [role=radio]").filter(has_text="Gates")
    expect(gates).to_have_attribute("aria-checked", "true")
    lab.wait_for_points("Gates: distribution per step")

    _button(lab, "Stop")
    lab.page.keyboard.press("Enter")
    expect(lab.button("Stop")).to_be_disabled()

    # A lesson, back in the sidebar: open the list with the arrow key, move, Enter.
    tab_to(lab.page, ".st-key-lesson input[role=combobox]", back=True)
    first = LESSONS[1].name  # not the default: the URL changes
    lab.page.keyboard.press("ArrowDown")
    options = lab.page.get_by_role("option")
    expect(options.first).to_be_visible()
    names = [o.strip() for o in options.all_inner_texts()]
    steps = names.index(first) - max(0, _highlighted(lab.page, names))
    for _ in range(steps):
        lab.page.keyboard.press("ArrowDown")
    lab.page.keyboard.press("Enter")
    expect(lab.page.get_by_role("combobox", name="Lesson preset")).to_have_value(first)
    lab.wait_for_query(to_query(lesson_values(first)), exact=True)
    assert lab.exceptions() == 0


def _highlighted(page: Page, names: list[str]) -> int:
    """The index of the option the list opened on (its highlighted one), -1 if none."""
    current = page.locator('[role=option][aria-selected="true"]')
    if not current.count():
        return -1
    return names.index(current.first.inner_text().strip())


def test_a_map_cell_from_the_keyboard(lab: GruLab) -> None:
    lab.page.goto(f"{lab.base_url}/map?{TINY_MAP}")
    start = lab.page.locator('[data-testid="stMainBlockContainer"] button[kind="primary"]')
    expect(start).to_be_visible(timeout=90_000)
    tab_to(lab.page, '[data-testid="stMainBlockContainer"] button[kind="primary"]', "Start")
    lab.page.keyboard.press("Enter")
    picker = lab.page.locator(".st-key-map_pick")
    expect(picker).to_be_visible(timeout=90_000)
    # Let the map finish first: while it runs, its live redraws re-draw the picker, which can
    # close an open dropdown under the keyboard (seen once in CI under load).
    lab.wait_until(
        lambda: lab.page.evaluate(MAP_CELLS_JS),
        lambda c: c is not None and len(c) == 4 and "…" not in c,
        timeout_s=120,
        what="four finished cells in the map",
    )
    # init std: the second value (0.1); clip θ: the second value (off).
    for key in ("map_pick_x_init_std", "map_pick_y_clip_threshold"):
        tab_to(lab.page, f".st-key-{key} input[role=combobox]")
        lab.page.keyboard.press("ArrowDown")
        expect(lab.page.get_by_role("option").first).to_be_visible()
        lab.page.keyboard.press("ArrowDown")
        lab.page.keyboard.press("Enter")
    expect(lab.page.locator(".st-key-map_pick_x_init_std input")).to_have_value("0.1")
    expect(lab.page.locator(".st-key-map_pick_y_clip_threshold input")).to_have_value("off")
    tab_to(lab.page, ".st-key-map_pick_open button")
    lab.page.keyboard.press("Enter")
    # The same as a click on that cell: the lab, with the cell's settings in the URL.
    init_std = "Init std (log scale)"
    lab.wait_until(
        lambda: lab.slider_value(init_std) if lab.slider(init_std).count() else "",
        lambda v: v == "0.1",
        60,
        "the lab to open with the cell's init std",
    )
    expect(lab.page.get_by_role("switch", name="Clip gradients")).not_to_be_checked()
    assert lab.exceptions() == 0
