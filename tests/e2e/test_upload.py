"""Uploading a text trains on it; a binary or letter-less file is refused with a message."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

TINY_RUN = "hidden=16&batch=4&steps=10&epochs=5"
PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"


def _english(min_bytes: int = 4096) -> bytes:
    """A few KB of varied English sentences."""
    people = ("the miller", "a young sailor", "my aunt", "the old teacher", "our neighbour")
    deeds = ("planted apples", "mended a boat", "wrote a long letter", "sang by the fire")
    places = ("near the harbour", "in the valley", "before the storm", "under the bridge")
    lines, i = [], 0
    while sum(len(line) + 1 for line in lines) < min_bytes:
        person, deed = people[i % len(people)], deeds[(i // 3) % len(deeds)]
        lines.append(f"Yesterday {person} {deed} {places[(i // 2) % len(places)]}.")
        i += 1
    return "\n".join(lines).encode()


def _upload(lab, name: str, data: bytes) -> None:
    file_input = lab.page.locator('[data-testid="stFileUploader"] input[type="file"]')
    file_input.set_input_files({"name": name, "mimeType": "text/plain", "buffer": data})


def test_upload_trains_and_bad_files_are_refused(lab) -> None:
    lab.open(TINY_RUN)
    lab.page.get_by_text("Upload a .txt", exact=True).click()
    expect(lab.page.locator('[data-testid="stFileUploader"]')).to_be_visible()
    notice = lab.page.locator("p").filter(has_text="Corpus:")

    _upload(lab, "my_story.txt", _english())
    expect(lab.page.get_by_text("Using my_story.txt")).to_be_visible()
    expect(notice).to_contain_text("my_story.txt")
    lab.press("Start")
    lab.wait_for_step(3)
    lab.reset()

    _upload(lab, "picture.txt", PNG_HEADER + bytes(range(256)) * 4)
    error = lab.page.locator('[data-testid="stAlertContentError"]')
    expect(error.filter(has_text="PNG")).to_be_visible()

    _upload(lab, "digits.txt", b"3141592653 5897932384 6264338327\n" * 40)
    expect(error.filter(has_text="letters")).to_be_visible()
    expect(notice).to_contain_text("my_story.txt")  # the previous text is still in use

    assert lab.exceptions() == 0
    lab.press("Start")
    lab.wait_for_step(3)
    assert lab.exceptions() == 0
