"""The 'Exploding gradients' lesson explodes (or diverges), and the page survives it; a
lesson survives the stale values of a browser that had not yet been shown it."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from dashboard.sidebar.controls import to_query
from dashboard.sidebar.lessons import lesson_values

pytestmark = pytest.mark.e2e


def _max_before_clipping(lab) -> float:
    trace = lab.trace("Gradient norm", "before clipping")
    return max(trace["y"], default=0.0) if trace else 0.0


def _diverged(lab) -> bool:
    return any("diverged" in text for text in lab.errors())


def test_exploding_lesson_left_alone_ends_blown_up_with_advice(lab) -> None:
    """At the lesson's own pace (2 steps a second, 32 steps) the run ends as 'blew up', and
    the status, the message with its remedy, and the saved run all say so."""
    lab.open()
    lab.choose_lesson("Exploding gradients")
    lab.press("Start")
    lab.wait_until(
        lambda: lab.metric("State") if lab.metric_card("State").count() else "",
        lambda s: s in ("blew up", "diverged"),
        timeout_s=90,
        what="the lesson's run to end as 'blew up'",
    )
    assert lab.metric("State") == "blew up"
    advice = lab.wait_until(
        lab.errors, lambda e: any("blew up" in t for t in e), 20, "the blow-up advice"
    )
    text = next(t for t in advice if "blew up" in t)
    assert "Remedy" in text and "clipping on" in text
    # the saved run's name, where a reader sees it (a data grid keeps a hidden copy of it)
    expect(lab.page.get_by_text("(blew up)").filter(visible=True).first).to_be_visible()
    assert lab.exceptions() == 0


def test_exploding_gradients_lesson_then_a_small_run(lab) -> None:
    lab.open()
    lab.choose_lesson("Exploding gradients")
    expect(lab.page.get_by_role("switch", name="Clip gradients")).not_to_be_checked()
    lab.press("Start")  # the lesson's own epochs; Reset ends the run once it has exploded
    diverged, exploded = lab.wait_until(
        lambda: (_diverged(lab), _max_before_clipping(lab)),
        lambda r: r[0] or r[1] >= 100,
        timeout_s=40,
        what="divergence or a gradient norm of 100 before clipping",
    )

    lab.reset()
    lab.choose_lesson("Small and fast")
    lab.set_number("Epochs", "epochs", 3)
    lab.press("Start")
    lab.wait_for_step(3)
    assert lab.metric("State") in ("running", "done")
    assert lab.metric("Clip θ in force") == "1"
    lab.wait_until(  # the chart can land a moment after the metrics of the same refresh
        lambda: lab.trace("Gradient norm", "before clipping"),
        lambda t: t is not None and len(t["y"]) >= 3,
        timeout_s=20,
        what="three gradient norms of the small run",
    )
    calm = _max_before_clipping(lab)
    assert 0 < calm < 100
    assert diverged or exploded >= 100 * calm, (
        f"the exploding run's max gradient norm {exploded:.3g} is not 100x the clipped "
        f"small run's {calm:.3g}"
    )
    assert lab.exceptions() == 0


class SlowLink:
    """Holds the server's messages to the page (a slow network or a busy server) while
    ``holding``, until ``release()``; messages from the page to the server pass at once.
    Counts every script run the server reports finished, held or not."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.holding = False
        self.held: list[str | bytes] = []
        self.runs_finished = 0
        self._to_page: WebSocketRoute | None = None
        page.route_web_socket(re.compile(r"/_stcore/stream$"), self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        self._to_page = ws
        server = ws.connect_to_server()
        server.on_message(self._from_server)

    def _from_server(self, message: str | bytes) -> None:
        msg = ForwardMsg()
        msg.ParseFromString(message if isinstance(message, bytes) else message.encode())
        self.runs_finished += msg.WhichOneof("type") == "script_finished"
        if self.holding:
            self.held.append(message)
        elif self._to_page is not None:
            self._to_page.send(message)

    def wait_for_runs(self, n: int, timeout_s: float = 20.0) -> None:
        """Wait until the server has finished ``n`` script runs since the page opened."""
        deadline = time.monotonic() + timeout_s
        while self.runs_finished < n:
            assert time.monotonic() < deadline, f"saw {self.runs_finished} of {n} runs finish"
            self.page.wait_for_timeout(50)

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        assert self._to_page is not None
        for message in held:
            self._to_page.send(message)


def test_a_lesson_survives_a_click_made_before_the_page_showed_it(lab) -> None:
    """Choose a lesson and, before its values reach the browser, change another control.

    The browser's next rerun then carries its old values of every slider; they must not
    overwrite the lesson (the 'Exploding gradients' run must not quietly keep clipping on)."""
    link = SlowLink(lab.page)
    lab.open()
    link.wait_for_runs(1)  # the page's first run
    opened = link.runs_finished
    link.holding = True
    box = lab.page.get_by_role("combobox", name="Lesson preset")
    box.click()
    lab.page.get_by_role("option", name="Exploding gradients", exact=True).click()
    link.wait_for_runs(opened + 1)  # the lesson's run is done; the page has not seen it
    seed = lab.page.locator('[data-testid="stNumberInput"]').filter(
        has=lab.page.get_by_text("Seed", exact=True)
    )
    seed.locator("input").fill("7")
    seed.locator("input").press("Enter")
    link.wait_for_runs(opened + 2)  # and so is the run carrying the page's stale values
    link.release()

    lesson = to_query(lesson_values("Exploding gradients"))
    lab.wait_for_query(lesson)
    expect(lab.page.get_by_role("switch", name="Clip gradients")).not_to_be_checked()
    assert lab.slider_value("Hidden size") == lesson["hidden"]
    # Whatever became of the seed typed in that moment, the page shows what is in force.
    expect(seed.locator("input")).to_have_value(lab.query().get("seed", "0"))
    lab.press("Start")
    lab.wait_for_step(1)
    assert lab.metric("Clip θ in force") == "off"
    lab.stop_training()
