"""The ``views`` scenario of ``load_test.py``: how fast a view switch answers as the run grows.

    python benchmarks/load_test.py --scenario views [--marks 100,1000,4000] [--rounds 3]
        [--busy 2] [--alone 15] [--settle 30] [--timeout 1800]

One Chromium page (1400x900) opens the lab with the book's settings (hidden 256, the defaults;
its 500 epochs made longer, so that the run still trains at the last mark: ``book_query``) and
presses Start, with ``--busy N`` busy CPU loops (child processes spinning
``while True: pass``) beside the server from the start. At each step mark in ``--marks`` (a
short check: ``--marks 20,100,300``) it

- freezes the page for ``--alone`` seconds (Chromium's page lifecycle: the page asks the
  server for nothing, as if no page were open), then leaves it on the Overview for
  ``--alone`` seconds, and reads the Step metric at the ends: the run's steps/s with no page
  and with its page open (redrawing live), and so the owner's page cost (issue 24's target:
  under 5%);
- clicks through every view ``--rounds`` times, each click timed until the view's charts
  carry data: the chosen view's own element is on the page (``SIGNATURES``), every plotly
  chart shown has points, and no element is greyed as stale (``data-stale="true"``, as
  ``tests/e2e/conftest.py`` reads it). A click that has not settled after ``--settle``
  seconds counts as that long, is marked "never settled", and the page's stale elements at
  that moment are listed (the view, their test ids and keys): a view whose elements stay
  stale is one the class sees faded for ever;
- reads the Step at the start and end of the switching: the run's steps/s while switching;
- times ``RERUNS`` full reruns of the page (the Seed field's "+", until the URL holds the new
  seed: ``Harness.rerun_latency``): the server's rerun time at that step.

It prints a line per click as it goes and a row per mark when the mark is done, and stops by
itself at ``--timeout`` (set-up included), printing what it has.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from load_test import log, p50_p95, percentile

if TYPE_CHECKING:
    from load_test import Harness

BOOK = "hidden=256&epochs=500&speed=max"  # d2l's run: 4,000 steps (8 minibatches an epoch)
BOOK_EPOCHS, STEPS_PER_EPOCH = 500, 8


def book_query(steps: int) -> str:
    """The book's run made long enough to still be training at step ``steps``: at 15-25
    steps/s on a quiet machine the book's 4,000 steps end before a measurement at step
    4,000 is done, and the page of an ended run redraws nothing. Up to step 4,000 it is the
    book's run (same settings, same telemetry size at each step)."""
    epochs = max(BOOK_EPOCHS, -(-steps // STEPS_PER_EPOCH))
    return BOOK.replace(f"epochs={BOOK_EPOCHS}", f"epochs={epochs}")


VIEWS = ("Overview", "Gradients", "Gates", "Through time", "Memory", "Text")
RERUNS = 3  # full reruns timed at each mark
# The element that only the chosen view draws (by its key, st-key-<key>), or the notice it
# shows while it has nothing to draw yet.
SIGNATURES = {
    "Overview": ".st-key-ppl",
    "Gradients": ".st-key-gnorm2",
    "Gates": ".st-key-bands",
    "Through time": ".st-key-flow",
    "Memory": ".st-key-memory-connectivity",
    "Text": ".st-key-temperature",
}
LAYOUT = {"width": 1400, "height": 900}

# True once the view ``sig`` is drawn: its element is there, every chart shown has points,
# and nothing on the page is greyed as stale.
_SETTLED_JS = """
sig => {
  if (!document.querySelector(sig)) return false;
  if (document.querySelector('[data-stale="true"]')) return false;
  const size = a => (a && (Array.isArray(a) || ArrayBuffer.isView(a))) ? a.length : 0;
  for (const el of document.querySelectorAll('.js-plotly-plot')) {
    // In a folded expander (read from the markup: a layout read here, every 20 ms, would
    // force the page to lay itself out in the middle of plotly's drawing).
    if (el.closest('details:not([open]), [inert]')) continue;
    const n = Math.max(0, ...(el._fullData || []).map(t =>
      Math.max(size(t.x), size(t.y), size(t.z))));
    if (n === 0) return false;
  }
  return true;
}
"""
# What is stale now: each element's test id and its st-key-* class, if any.
_STALE_JS = """
() => Array.from(document.querySelectorAll('[data-stale="true"]')).map(el => {
  const key = Array.from(el.classList).find(c => c.startsWith('st-key-')) || '';
  const inner = el.querySelector('[data-testid]');
  return [el.getAttribute('data-testid') || '', key,
          inner ? inner.getAttribute('data-testid') : ''].filter(Boolean).join(' ');
})
"""


def start_busy(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` child processes that each keep one core busy."""
    return [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(count)
    ]


def stop_busy(loops: list[subprocess.Popen[bytes]]) -> None:
    for proc in loops:
        proc.terminate()
        proc.wait(10)


class ViewClicker:
    """One Chromium page on the lab, its run, and the clicks timed on it."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.page = h.new_page()
        self.page.set_viewport_size(LAYOUT)
        self.view = "Overview"
        self.page_cost: dict[int, float] = {}  # step mark -> 1 - steps/s open / frozen

    def start(self, steps: int = BOOK_EPOCHS * STEPS_PER_EPOCH) -> None:
        """Open the lab on the book's run, long enough to train past step ``steps``."""
        self.h.open_lab(self.page, book_query(steps))
        self.h.wait_start(self.page, 120)
        self.h.press(self.page, "Start")
        log("the book's run started (hidden 256, 500 epochs)")

    def step(self) -> int | None:
        return self.h.step_of(self.page, 5.0)

    def wait_for_step(self, mark: int) -> int | None:
        """Wait (printing progress every 30 s) until the Step metric reaches ``mark``."""
        last_log = time.monotonic()
        while not self.h.expired():
            step = self.step()
            if step is not None and step >= mark:
                return step
            if time.monotonic() - last_log > 30:
                log(f"waiting for step {mark:,}: at {step}")
                last_log = time.monotonic()
            time.sleep(1.0)  # a benchmark polling the page, not a test
        return None

    def settled_step(self, cap_s: float) -> tuple[float, int | None]:
        """(time, Step) read once the page has settled (or ``cap_s`` has passed)."""
        self.wait_settled(self.view, cap_s)
        return time.monotonic(), self.step()

    def wait_settled(self, view: str, cap_s: float) -> bool:
        try:
            self.page.wait_for_function(
                _SETTLED_JS, arg=SIGNATURES[view], polling=20, timeout=self.h.ms(cap_s)
            )
            return True
        except Exception:  # a timeout: the caller counts it
            return False

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The page frozen (Chromium's page lifecycle: no timers, no tasks, no CPU), so it
        asks the server for nothing: the run as if no page were open. The websocket stays
        open, and the page takes up where it was when thawed."""
        cdp = self.page.context.new_cdp_session(self.page)
        cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
        try:
            yield
        finally:
            cdp.send("Page.setWebLifecycleState", {"state": "active"})
            cdp.detach()

    def click(self, view: str, cap_s: float) -> tuple[float, bool, list[str]]:
        """Click ``view``: (seconds until it settled, settled, what stayed stale if not)."""
        self.h.choose_view(self.page, view)
        t0 = time.perf_counter()
        self.view = view
        done = self.wait_settled(view, cap_s)
        seconds = time.perf_counter() - t0
        stale: list[str] = []
        if not done:
            try:
                stale = self.page.evaluate(_STALE_JS)
            except Exception:  # a page that does not answer: nothing to list
                stale = ["(the page did not answer)"]
        return seconds, done, stale


def rate(a: tuple[float, int | None], b: tuple[float, int | None]) -> float:
    if a[1] is None or b[1] is None or b[0] <= a[0]:
        return float("nan")
    return (b[1] - a[1]) / (b[0] - a[0])


def at_mark(h: Harness, clicker: ViewClicker, mark: int) -> bool:
    """Everything measured at one step mark; its row goes into the report. False when the
    deadline came first."""
    args = h.args
    reached = clicker.wait_for_step(mark)
    if reached is None:
        return False
    log(f"step {reached:,} (mark {mark:,}): {args.alone:.0f} s with the page frozen, "
        f"{args.alone:.0f} s with it open")  # fmt: skip
    if clicker.view != "Overview":
        clicker.click("Overview", args.settle)
    frozen_start = clicker.settled_step(args.settle)
    with clicker.frozen():
        time.sleep(args.alone)  # the run alone: its page asks for nothing
    first = clicker.settled_step(args.settle)
    time.sleep(args.alone)  # the run with its page open on the Overview, redrawing live
    alone_end = clicker.settled_step(args.settle)
    times: dict[str, list[float]] = {v: [] for v in VIEWS}
    never: list[str] = []
    for r in range(args.rounds):
        for view in VIEWS[1:] + VIEWS[:1]:  # from the Overview round to the Overview
            if h.expired():
                break
            seconds, done, stale = clicker.click(view, args.settle)
            times[view].append(seconds)
            note = "" if done else f" NEVER SETTLED; stale: {stale}"
            log(f"step ~{mark:,} round {r + 1} {view}: {seconds * 1e3:.0f} ms{note}")
            if not done:
                never.append(f"{view} ({len(stale)} stale)")
    switch_end = time.monotonic(), clicker.step()
    reruns = [clicker.h.rerun_latency(clicker.page) for _ in range(RERUNS)]
    every = [s for v in VIEWS for s in times[v]]
    per_view = ", ".join(f"{v} {percentile(times[v], 95) * 1e3:.0f}" for v in VIEWS if times[v])
    alone, switching = rate(first, alone_end), rate(alone_end, switch_end)
    no_page = rate(frozen_start, first)
    h.report.set(
        f"step ~{mark:,}: click to charts p50 / p95 ({len(every)} clicks)",
        p50_p95(every) + (f"; never settled within {args.settle:.0f} s: {never}" if never else ""),
    )
    h.report.set(f"step ~{mark:,}: p95 per view, ms", per_view)
    h.report.set(
        f"step ~{mark:,}: page rerun p50 / p95 ({RERUNS} reruns)",
        p50_p95([s for s, _ in reruns]) + f" ({sum(not ok for _, ok in reruns)} timed out)",
    )
    h.report.set(
        f"step ~{mark:,}: steps/s alone / while switching",
        f"{alone:.2f} / {switching:.2f} ({switching / alone:.0%})" if alone > 0 else "–",
    )
    h.report.set(
        f"step ~{mark:,}: the owner's page costs the run (steps/s page frozen / open)",
        f"{1 - alone / no_page:.1%} ({no_page:.2f} / {alone:.2f})" if no_page > 0 else "–",
    )
    h.report.set(f"step ~{mark:,}: p95 all views, s", f"{percentile(every, 95):.2f}")
    clicker.page_cost[mark] = 1 - alone / no_page if no_page > 0 else float("nan")
    log(f"mark {mark:,} done: click p50/p95 {p50_p95(every)}; steps/s {alone:.2f} / "
        f"{switching:.2f}; reruns {p50_p95([s for s, _ in reruns])}")  # fmt: skip
    return True


def views(h: Harness) -> None:
    args = h.args
    marks = sorted(int(m) for m in args.marks.split(","))
    h.report.set(
        "set-up",
        f"the book's run ({BOOK}, longer so that it trains at the last mark), "
        f"one Chromium page {LAYOUT['width']}x{LAYOUT['height']}, "
        f"{args.busy} busy loops, {args.rounds} rounds of {len(VIEWS)} views per mark, "
        f"settle cap {args.settle:.0f} s",
    )
    loops = start_busy(args.busy)
    try:
        h.health.start()
        clicker = ViewClicker(h)
        # Room after the last mark for its two --alone windows, the clicks and the reruns,
        # at up to 25 steps/s.
        room = int(25 * (2 * args.alone + args.rounds * len(VIEWS) * 3 + 30))
        clicker.start(marks[-1] + room)
        p95s = {}
        for mark in marks:
            if not at_mark(h, clicker, mark):
                h.report.partial = f"the timeout came before step {mark:,}"
                break
            p95s[mark] = h.report.rows[f"step ~{mark:,}: p95 all views, s"]
        h.report.set("health p50 / p95", h.health.summary())
        if len(p95s) == len(marks):
            last, first = float(p95s[marks[-1]]), float(p95s[marks[0]])
            h.report.check("p95 < 1 s at the last mark", last < 1)
            h.report.check("last mark's p95 within 1.5x of the first's", last <= 1.5 * first)
            cost = clicker.page_cost.get(marks[-1], float("nan"))
            h.report.check("the owner's page costs the run < 5% at the last mark", cost < 0.05)
    finally:
        stop_busy(loops)
