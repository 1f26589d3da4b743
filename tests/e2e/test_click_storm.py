"""Views clicked every 0.3 s while a run trains: the page answers every click and never
freezes.

The freeze this guards against (issue 24, found in ``load_test.py --scenario storm``): the
server sent a large element as a reference to the browser's message cache, the browser had
dropped that message meanwhile (two script runs after its last use), and the page, failing on
"Cached ForwardMsg MISS", showed "Connection error" and never talked to the server again; its
run stopped once the tab counted as gone. ``.streamlit/config.toml`` now sends no reference at
all (``minCachedMessageSize``): the test reads every message the server sends and checks that
none is a reference or marked cacheable, then clicks through the views and checks that the
page keeps answering.
"""

from __future__ import annotations

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.e2e.conftest import GruLab, read_the_wire

pytestmark = pytest.mark.e2e

RUN = "hidden=64&epochs=2000&speed=20"  # trains throughout (stopped after), charts of some size
VIEWS = ("Overview", "Gradients", "Gates", "Through time", "Memory", "Text")
STORM_S = 25.0
EVERY_S = 0.3
# Each view's own element (shown, not greyed as stale): benchmarks/load_views.py SIGNATURES.
SHOWN = {
    "Overview": ".st-key-ppl",
    "Gates": ".st-key-bands",
    "Memory": ".st-key-memory-connectivity",
}
# A view clicked every ``every`` ms for ``ms`` ms by the page's own timer (as a person's
# clicks queue on a busy page), cycling through ``names``; resolves to the clicks made.
_STORM_JS = """
([names, every, ms]) => new Promise(done => {
  let clicks = 0;
  const timer = setInterval(() => {
    const group = document.querySelector('[data-testid="stButtonGroup"]');
    const button = group && Array.from(group.querySelectorAll('[role="radio"]'))
      .find(b => b.innerText.trim() === names[clicks % names.length]);
    if (button) { button.click(); clicks += 1; }
  }, every);
  setTimeout(() => { clearInterval(timer); done(clicks); }, ms);
})
"""
_SHOWN_JS = """
sig => { const el = document.querySelector(sig);
         return !!el && el.getAttribute('data-stale') !== 'true'; }
"""


class Wire:
    """Every message the server sends the page, counted as it passes."""

    def __init__(self, lab: GruLab) -> None:
        self.messages = 0
        self.references = 0  # ForwardMsg.ref_hash: "use the copy in your cache"
        self.cacheable = 0  # metadata.cacheable: the page would keep it for a reference
        read_the_wire(lab.page, self._count)

    def _count(self, msg: ForwardMsg) -> None:
        self.messages += 1
        self.references += msg.WhichOneof("type") == "ref_hash"
        self.cacheable += msg.metadata.cacheable


def test_a_click_storm_is_answered_and_never_freezes_the_page(lab: GruLab) -> None:
    wire = Wire(lab)
    errors: list[str] = []
    lab.page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    lab.open(RUN)
    lab.press("Start")
    lab.wait_for_step(12, timeout_s=120)  # past the first epoch: every view has its charts
    first = lab.step()
    clicks = lab.page.evaluate(_STORM_JS, [list(VIEWS), EVERY_S * 1000, STORM_S * 1000])
    # No message was a reference to the page's cache, none could become one.
    assert wire.references == 0 and wire.cacheable == 0, (wire.references, wire.cacheable)
    assert not lab.page.get_by_text("Connection error").count()
    assert clicks >= 15, clicks  # a busy page runs its timer late (30 here under load)
    # Every view still answers a click: its own element, drawn and current.
    for view in ("Gates", "Memory", "Overview"):
        lab.choose_view(view)
        lab.page.wait_for_function(_SHOWN_JS, arg=SHOWN[view], polling=50, timeout=20_000)
    lab.wait_for_step(lab.step() + 2, timeout_s=30)  # the run is alive and the page sees it
    assert lab.step() > first
    assert not lab.page.get_by_text("Connection error").count()
    assert wire.messages > 100, wire.messages  # the server talked all along
    assert wire.references == 0 and wire.cacheable == 0, (wire.references, wire.cacheable)
    assert not [e for e in errors if "ForwardMsg" in e], errors
    assert lab.exceptions() == 0
    print(f"click storm: {clicks} clicks in {STORM_S:.0f} s, {wire.messages} messages")
