"""The page loads cleanly, and a shared link restores the settings it carries."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

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


def _bench(url: str) -> str | None:
    return parse_qs(urlsplit(url).query).get("bench", [None])[-1]


def test_the_plain_address_finds_this_browsers_bench(lab) -> None:
    """The first visit writes its saved-runs token into the URL and, from the sidebar's tiny
    frame, into a cookie; the plain address in the same browser opens the same bench."""
    lab.open()
    token = lab.wait_until(lambda: _bench(lab.page.url), bool, 20, "?bench= in the URL")
    expect(lab.page.get_by_text("Your runs")).to_be_visible()
    context = lab.page.context
    lab.wait_until(
        lambda: {c["name"]: c["value"] for c in context.cookies()}.get("gru_lab_bench"),
        lambda value: value == token,
        20,
        "the browser to remember the bench in a cookie",
    )
    lab.open()  # the plain address again, as the terminal prints it
    lab.wait_until(lambda: _bench(lab.page.url), lambda t: t == token, 20, "the same bench")
    assert lab.exceptions() == 0
