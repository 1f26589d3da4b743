"""The page loads cleanly, and a shared link restores the settings it carries."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

REQUIRED_SLIDERS = (
    "Hidden size",
    "Init std (log scale)",
    "Clip threshold θ (log scale)",
    "Sequence length (num_steps)",
)


def test_page_loads_with_controls_and_notice(lab) -> None:
    lab.open()
    for label in REQUIRED_SLIDERS:
        widget = lab.page.locator('[data-testid="stSlider"]').filter(has_text=label)
        expect(widget).to_be_visible()
        expect(lab.slider(label)).to_have_count(1)
    expect(lab.button("Start")).to_be_enabled()
    notice = lab.page.locator("p").filter(has_text="Corpus:")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Device:")
    expect(lab.page.get_by_text("Nothing is training")).to_be_visible()
    assert lab.exceptions() == 0


def test_shared_link_restores_sliders(lab) -> None:
    lab.open("hidden=64&clip=5")
    expect(lab.slider("Hidden size")).to_have_attribute("aria-valuetext", "64")
    assert float(lab.slider_value("Clip threshold θ (log scale)")) == 5.0
    assert lab.exceptions() == 0
