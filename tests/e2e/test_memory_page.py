"""The Memory view colours the passage by a hidden unit and draws a connectivity strip."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_memory_view_colours_the_passage_and_draws_connectivity(lab) -> None:
    lab.open("hidden=32&epochs=30&speed=10")
    lab.press("Start")
    lab.wait_for_step(3)
    lab.choose_view("Memory")
    lab.wait_for_points("How far back the prediction looks")  # the connectivity strip
    coloured = lab.page.locator("span[title*='h = ']")  # a character coloured by a unit
    expect(coloured.first).to_be_attached()
    assert coloured.count() > 20
    lab.wait_for_points("Units that follow")  # the unit finder
    assert lab.exceptions() == 0
    lab.screenshot("memory.png")
