"""The ``storm`` scenario of ``load_test.py``: a lecturer clicking views as fast as they can.

    python benchmarks/load_test.py --scenario storm [--minutes 10] [--every 0.3] [--busy 2]
        [--from-step 100] [--timeout 900]

One Chromium page (1400x900) runs the book's config beside ``--busy N`` busy CPU loops (as
``load_views.py``). From step ``--from-step`` on, it clicks the next view (round the six)
every ``--every`` seconds for ``--minutes`` minutes. A click is answered when the page shows
the view of that click or of a later one (the view's own element is there and not greyed as
stale); a page that falls behind answers several clicks at once, and a click still waiting at
the end counts as unanswered, as old as it is. The Step metric is read as it goes: the longest
it stood still says whether the run was seen moving. Every 30 s it prints the clicks so far,
the slowest answer and the longest standstill; at the end the table (slowest answer, clicks
over 5 s, unanswered clicks, the Step's longest standstill, and the clicks a second asked and
made: each click and each read waits for the page's main thread, so a busy page is clicked
less often than asked). It stops by itself at the end of
the storm or at ``--timeout``, whichever comes first.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from load_test import log, p50_p95
from load_views import SIGNATURES, VIEWS, ViewClicker, start_busy, stop_busy

if TYPE_CHECKING:
    from load_test import Harness

SLOW_S = 5.0  # a click answered later than this counts as frozen (issue 24's target)
POLL_S = 0.05  # how often the page is read between clicks
REPORT_S = 30.0  # progress line
# Click a view's radio button in the page (returns at once, unlike a Playwright click that
# waits for the page to be stable, which a loaded page seldom is).
_CLICK_JS = """
name => {
  const group = document.querySelector('[data-testid="stButtonGroup"]');
  const button = group && Array.from(group.querySelectorAll('[role="radio"]'))
    .find(b => b.innerText.trim() === name);
  if (button) button.click();
  return !!button;
}
"""
# Which views the page shows now (their element there and not stale), and the Step metric.
_STATE_JS = """
sigs => {
  const shown = Object.entries(sigs).filter(([view, sig]) => {
    const el = document.querySelector(sig);
    return el && el.getAttribute('data-stale') !== 'true';
  }).map(([view]) => view);
  const step = Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
    .find(m => (m.querySelector('[data-testid="stMetricLabel"]') || {}).innerText === 'Step');
  const value = step && step.querySelector('[data-testid="stMetricValue"]');
  return [shown, value ? value.innerText.trim() : null];
}
"""


class Storm:
    """The clicks waiting for an answer, the answers, and the Step's standstills."""

    def __init__(self) -> None:
        self.pending: deque[tuple[float, str]] = deque()  # (clicked at, view), oldest first
        self.answers: list[float] = []
        self.clicks = 0
        self.step: str | None = None
        self.step_since = time.monotonic()  # when the Step last changed
        self.longest_still = 0.0

    def clicked(self, view: str, at: float) -> None:
        self.pending.append((at, view))
        self.clicks += 1

    def seen(self, shown: list[str], step: str | None, now: float) -> None:
        """What the page shows at ``now``: answer every click up to the newest shown one."""
        newest = max((i for i, (_, v) in enumerate(self.pending) if v in shown), default=-1)
        for _ in range(newest + 1):
            at, _view = self.pending.popleft()
            self.answers.append(now - at)
        if step is not None and step != self.step:
            self.step, self.step_since = step, now
        self.longest_still = max(self.longest_still, now - self.step_since)

    def waiting(self, now: float) -> float:
        """Age of the oldest click still waiting, s (0 when none waits)."""
        return now - self.pending[0][0] if self.pending else 0.0

    def slowest(self, now: float) -> float:
        return max([*self.answers, self.waiting(now)], default=0.0)

    def over(self, now: float) -> int:
        return sum(a > SLOW_S for a in self.answers) + sum(
            now - at > SLOW_S for at, _ in self.pending
        )


def storm(h: Harness) -> None:
    args = h.args
    h.report.set(
        "set-up",
        f"the book's run, one Chromium page, {args.busy} busy loops, a click every "
        f"{args.every:g} s for {args.minutes:g} min from step {args.from_step:,}",
    )
    loops = start_busy(args.busy)
    try:
        h.health.start()
        clicker = ViewClicker(h)
        clicker.start(args.from_step + int(25 * 60 * args.minutes))  # training to the end
        if clicker.wait_for_step(args.from_step) is None:
            h.report.partial = f"the timeout came before step {args.from_step:,}"
            return
        s = Storm()
        start = time.monotonic()
        end = start + 60 * args.minutes
        next_click, next_report, i = start, start + REPORT_S, 0
        log(f"storm: a click every {args.every:g} s for {args.minutes:g} min")
        while (now := time.monotonic()) < end and not h.expired():
            if now >= next_click:
                view = VIEWS[1:][i % (len(VIEWS) - 1)] if i % 2 else VIEWS[0]
                if clicker.page.evaluate(_CLICK_JS, view):
                    s.clicked(view, now)
                i += 1
                next_click = max(next_click + args.every, now)  # a slow page: no burst after
            shown, step = clicker.page.evaluate(_STATE_JS, SIGNATURES)
            s.seen(shown, step, time.monotonic())
            if now >= next_report:
                log(f"storm {now - start:5.0f} s: {s.clicks} clicks, slowest answer "
                    f"{s.slowest(now):.1f} s, {s.over(now)} over {SLOW_S:g} s, "
                    f"Step {s.step} (still at most {s.longest_still:.1f} s)")  # fmt: skip
                next_report += REPORT_S
            time.sleep(POLL_S)  # between reads of the page: a benchmark, not a test
        now = time.monotonic()
        answered = f"{len(s.answers)} / {len(s.pending)}"
        h.report.set("clicks (answered / waiting at the end)", answered)
        h.report.set(  # a page too slow to read every --every seconds clicks less often
            "clicks per second (asked / made)",
            f"{1 / args.every:.2f} / {s.clicks / max(now - start, 1e-9):.2f}",
        )
        h.report.set("click to answer p50 / p95", p50_p95(s.answers) if s.answers else "–")
        h.report.set("slowest click to answer", f"{s.slowest(now):.1f} s")
        h.report.set(f"clicks answered after {SLOW_S:g} s or not at all", str(s.over(now)))
        h.report.set("the Step's longest standstill", f"{s.longest_still:.1f} s (last {s.step})")
        h.report.set("health p50 / p95", h.health.summary())
        h.report.check(f"every click answered within {SLOW_S:g} s", s.over(now) == 0)
    finally:
        stop_busy(loops)
