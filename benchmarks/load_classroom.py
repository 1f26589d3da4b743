"""The room's load scenarios for ``load_test.py``: a shared run with a class watching it.

- ``classroom``: a teacher page starts a run (hidden 32, 20 steps/s) and presses "Share this
  run with the class"; ``--watchers`` watchers open the watch link and ``--students`` students
  train their own tiny runs. Over a ``--duration`` window it measures health and page-rerun
  latency (on the first student's page), whether every watcher's Step metric rose, the
  teacher's and the students' progress, CPU seconds of the server, of the browser and of the
  protocol client (its watchers, students 2..N and teacher), and errors on the pages.
- ``watchers-cost``: the teacher's run at full speed (hidden 64, shared, its page open
  throughout) for ``--phase`` seconds alone, then with ``--watchers`` watchers, then alone
  again; the training rate of each phase comes from a least-squares fit of the Step metric
  against the time it changed, and the slowdown compares the middle phase with the mean of
  the two alone.

The teacher is a Chromium page by default (``--teacher-client browser``, ``BrowserTeacher``),
whose drawing takes about one of a 2-core machine's cores; with ``--teacher-client protocol``
it is an ``st_client.py`` page (``ProtocolTeacher``), as if its browser ran on another machine
(the projector's laptop): it opens the lab, presses Start, waits for its Step metric, presses
"Share this run with the class" and reads the watch link from the code block that shows it.
The server still does all of the owner's work (its live fragment's reruns every 0.75 s, the
snapshots and figures they build), without Chromium on the cores. Its Step changes come from
the client, timed as they arrived (a Chromium teacher's are read every STEP_POLL_S), and the
job's thread count from the status caption ("CPU (2 threads)"), as on the Chromium page. The
table names the teacher's client; a protocol teacher adds a row on its traffic.

The watchers are ``st_client.py`` pages by default (``ProtocolWatchers``: the websocket
protocol of a browser tab, its ``run_every`` reruns included, without the drawing that a
watcher's own laptop would do), or Chromium pages with ``--watcher-clients browser``
(``BrowserWatchers``). The table names the kind; for protocol watchers it adds what they asked
and got: the ``run_every`` the server gave each, the reruns sent and the redraws that came back,
the time between two changes of a watcher's Step, and the megabytes received.

Student 1 is always a Chromium page: the page-rerun latency is a real page's (click Seed "+",
wait for the URL). Students 2..N are, by default (``--student-clients protocol``),
``st_client.py`` pages of the same client process (``ProtocolStudents``): each opens the lab
with TINY, chooses the Text view and presses Start over the protocol, as a Chromium student
does by clicking, and its live fragment's ``run_every`` reruns go on as a browser's would. The
server bears their traffic and their training jobs; their drawing, which a student's own
laptop does, is not done at all. ``--student-clients browser`` makes every student a Chromium
page. The table names the kinds and how many of each started; "students' jobs at the end"
counts every started student alike, from the page's Step and State metrics (read from the DOM
or from the client).

Each function takes the ``Harness`` (server, browser, deadline, report) of ``load_test.py``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from load_test import (
    ENDED,
    READ_S,
    RERUN_TIMEOUT_S,
    TINY,
    Cpu,
    Harness,
    log,
    p50_p95,
    percentile,
)

if TYPE_CHECKING:
    from st_client import Seen

TEACHER = "hidden=32&epochs=2000&speed=20"  # 8 steps an epoch: runs far longer than a window
FAST_TEACHER = "hidden=64&epochs=100000&speed=max"
STEP_POLL_S = 0.25  # how often watchers-cost reads a Chromium teacher's Step (it changes ~1/s)
# The job picks its torch threads from the 1-minute load average (gru_core.run.job.fair_threads):
# watchers-cost lets that settle before its first phase, so that every phase trains on the
# same count (2 threads against a busy browser run at about half the speed of 1).
SETTLE_S = 40.0
# Captions only: the header's "Device: CPU (N threads)" is the script thread's torch setting,
# not necessarily the job's.
_THREADS_JS = """
() => { const found = Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"]'))
          .map(c => c.innerText.match(/CPU \\((\\d+) threads?\\)/)).filter(m => m);
        return found.length ? Number(found[0][1]) : null; }
"""


def threads_of(page: Any) -> int | None:
    """The torch threads the teacher's job trains on, from its status caption."""
    try:
        return page.evaluate(_THREADS_JS)
    except Exception:  # no answer: unknown
        return None


WATCHERS_SETUP_S = 90.0  # the longest the protocol watchers may take to show the run
STUDENTS_SETUP_S = 60.0  # the longest the protocol students may take to load and press Start
CLIENT_CALL_S = 30.0  # the longest one call into the protocol client may wait (its start-up)
SETUP_STEP_S = 60.0  # the longest the protocol teacher may wait for each step of its set-up


class Teacher(Protocol):
    """The teacher's page, whichever client plays it: it started a run and shared it."""

    kind: str  # for the table
    url: str  # the watch link the page showed

    def step(self) -> int | None: ...  # the Step metric now (None: none shown, no answer)

    def threads(self) -> int | None: ...  # the job's torch threads, from its status caption

    def poll(self) -> None: ...  # called every STEP_POLL_S while a rate is measured

    def changes(self, since: float, until: float) -> list[tuple[float, int]]: ...

    def problems(self) -> tuple[int, int, int]: ...  # exceptions, error boxes, no answer

    def notes(self) -> dict[str, str]: ...  # extra table rows about the page


def share(h: Harness, query: str) -> Teacher:
    """The teacher of the kind ``--teacher-client`` asks for: it opened the lab with
    ``query``, started the run and shared it."""
    if h.args.teacher_client == "protocol":
        teacher: Teacher = share_protocol(h, query)
    else:
        teacher = share_browser(h, query)
    log(f"teacher ({h.args.teacher_client}) started and shared: {teacher.url}")
    return teacher


class BrowserTeacher:
    """The teacher as a Chromium page; its Step changes are the values read every
    STEP_POLL_S (``poll``), each with the time it was first seen."""

    kind = "browser: a headless Chromium page"

    def __init__(self, h: Harness, page: Any, url: str) -> None:
        self.h, self.page, self.url = h, page, url
        self.seen: list[tuple[float, int]] = []

    def step(self) -> int | None:
        return steps(self.h, [self.page])[0]

    def threads(self) -> int | None:
        return threads_of(self.page)

    def poll(self) -> None:
        step = self.h.step_of(self.page)
        if step is not None and (not self.seen or step != self.seen[-1][1]):
            self.seen.append((time.monotonic(), step))

    def changes(self, since: float, until: float) -> list[tuple[float, int]]:
        return [(t, s) for t, s in self.seen if since <= t <= until]

    def problems(self) -> tuple[int, int, int]:
        return page_problems(self.h, [self.page])

    def notes(self) -> dict[str, str]:
        return {}


def share_browser(h: Harness, query: str) -> BrowserTeacher:
    """Open a Chromium teacher page, start its run, share it, read the watch link."""
    teacher = h.new_page()
    h.open_lab(teacher, query)
    h.wait_start(teacher)
    h.press(teacher, "Start")
    teacher.locator('[data-testid="stMetric"]', has_text="Step").first.wait_for(timeout=h.ms(60))
    h.press(teacher, "Share this run with the class")
    link = teacher.locator("code").filter(has_text="watch=").first
    return BrowserTeacher(h, teacher, link.inner_text(timeout=h.ms(30)).strip())


class Watchers(Protocol):
    """The watchers of a scenario, whichever client plays them."""

    kind: str  # for the table
    count: int  # watchers opened

    def steps(self) -> list[int | None]: ...  # each one's Step metric (None: none shown)

    def problems(self) -> tuple[int, int, int]: ...  # exceptions, error boxes, no answer

    def mark(self) -> None: ...  # the window starts: notes() count from here

    def notes(self) -> dict[str, str]: ...  # extra table rows about the window

    def close(self) -> None: ...


def open_watchers(h: Harness, url: str, count: int) -> tuple[Watchers, int]:
    """``count`` watchers of ``url`` of the kind ``--watcher-clients`` asks for; they and how
    many showed the Step metric by the end of set-up."""
    if h.args.watcher_clients == "browser":
        return open_browser_watchers(h, url, count)
    return open_protocol_watchers(h, url, count)


class BrowserWatchers:
    """Watchers as Chromium pages: what their pages show."""

    kind = "browser: headless Chromium pages"

    def __init__(self, h: Harness, pages: list[Any]) -> None:
        self.h, self.pages, self.count = h, pages, len(pages)

    def steps(self) -> list[int | None]:
        return steps(self.h, self.pages)

    def problems(self) -> tuple[int, int, int]:
        return page_problems(self.h, self.pages)

    def mark(self) -> None:
        pass  # a page shows nothing about its traffic

    def notes(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        for page in self.pages:
            if self.h.expired():
                break
            self.h.close_page(page)


def open_browser_watchers(h: Harness, url: str, count: int) -> tuple[BrowserWatchers, int]:
    """Open ``count`` watch pages at once, then wait (until the set-up limit) for each to
    show the Step metric; all the pages opened, and how many showed it in time."""
    opened = []
    for _ in range(count):
        if h.expired():
            break
        page = h.new_page()
        h.open(page, url)
        opened.append(page)
    ready = 0
    for i, page in enumerate(opened):
        try:
            page.locator('[data-testid="stMetric"]', has_text="Step").first.wait_for(
                timeout=h.ms(60)
            )
            ready += 1
        except Exception as exc:  # counted in the table; it may still come later
            log(f"watcher {i + 1} not showing the run yet: {type(exc).__name__}")
        if (i + 1) % 10 == 0 or i + 1 == len(opened):
            log(f"set-up: {ready} of {i + 1} watchers show the run")
    return BrowserWatchers(h, opened), ready


class ProtocolPages:
    """A group of ``st_client.py`` pages in the harness's protocol client, and what they show."""

    def __init__(self, h: Harness, group: str, count: int) -> None:
        self.h, self.group, self.count = h, group, count
        self.client = h.protocol_client()

    def call_s(self) -> float:
        """How long a call that opens, presses or closes may wait: CLIENT_CALL_S at most."""
        return max(1.0, min(CLIENT_CALL_S, self.h.left()))

    def seen(self) -> list[Seen] | None:
        """Every page's state, or None when the client does not answer in time."""
        try:
            return self.client.pages(self.group, timeout=max(READ_S, min(5.0, self.h.left())))
        except (OSError, TimeoutError) as exc:
            log(f"protocol {self.group}: {exc}")
            return None

    def problems(self) -> tuple[int, int, int]:
        """Exception boxes and error boxes shown, and the pages whose connection is gone."""
        seen = self.seen()
        if seen is None:
            return 0, 0, self.count
        failed = sum(bool(s.failure) for s in seen)
        return sum(s.exceptions for s in seen), sum(s.error_boxes for s in seen), failed


class ProtocolWatchers(ProtocolPages):
    """Watchers as ``st_client.py`` pages in one child process: what they show, and what they
    asked of the server and got back."""

    kind = "protocol: st_client.py (Streamlit's websocket protocol, no browser)"

    def __init__(self, h: Harness, count: int) -> None:
        super().__init__(h, "watchers", count)
        self.before: list[Seen] = []
        self.t_mark = time.monotonic()

    def steps(self) -> list[int | None]:
        seen = self.seen()
        return [s.step for s in seen] if seen else [None] * self.count

    def mark(self) -> None:
        self.before, self.t_mark = self.seen() or [], time.monotonic()

    def notes(self) -> dict[str, str]:
        """What the watchers asked and got since ``mark``: the server's work for them."""
        after = self.seen()
        if not after or len(self.before) != len(after):
            return {}
        window = time.monotonic() - self.t_mark
        intervals = sorted(s.interval for s in after if s.interval)
        gaps = [
            b[0] - a[0]
            for s in after
            for a, b in zip(s.step_changes, s.step_changes[1:], strict=False)
            if a[0] >= self.t_mark
        ]

        def grown(counter: str) -> int:
            pairs = zip(self.before, after, strict=True)
            return sum(getattr(b, counter) - getattr(a, counter) for a, b in pairs)

        sent, drawn = grown("reruns_sent"), grown("fragment_runs")
        got, cached = grown("bytes_received"), grown("cache_hits")
        failures = [s.failure for s in after if s.failure]
        return {
            "watchers' run_every (from the server)": (
                f"{intervals[0]:.1f} / {intervals[len(intervals) // 2]:.1f} / "
                f"{intervals[-1]:.1f} s (min / median / max); together "
                f"{sum(1 / i for i in intervals):.1f} redraws/s asked"
                if intervals
                else "none received"
            ),
            "watchers' traffic in the window": (
                f"{sent} reruns sent ({sent / window:.1f}/s), {drawn} redraws came back, "
                f"{got / 1e6:.1f} MB received ({got / 1e6 / window:.2f} MB/s; "
                f"{cached} messages from the cache)"
            ),
            "time between two Step changes on a watcher, p50 / p95": (
                f"{p50_p95(gaps)} ({len(gaps)} intervals)" if gaps else "no change seen"
            ),
            "watchers' errors received in all / connections lost": (
                f"{sum(s.errors_received for s in after)} / {len(failures)}"
                + (f" (first: {failures[0][:120]})" if failures else "")
            ),
        }

    def close(self) -> None:
        try:
            self.client.close_pages(self.group, timeout=self.call_s())
        except (OSError, TimeoutError) as exc:
            log(f"closing the protocol watchers: {exc}")


def open_protocol_watchers(h: Harness, url: str, count: int) -> tuple[ProtocolWatchers, int]:
    """Start ``count`` protocol watchers of ``url`` at once, then wait (until the set-up limit,
    at most WATCHERS_SETUP_S) until each shows the Step metric or has failed."""
    watchers = ProtocolWatchers(h, count)
    watchers.client.open(watchers.group, url, count, timeout=watchers.call_s())
    end = min(time.monotonic() + WATCHERS_SETUP_S, h.deadline)
    ready = logged = 0
    while not h.expired() and time.monotonic() < end:
        seen = watchers.seen() or []
        ready = sum(s.step is not None for s in seen)
        failed = [s.failure for s in seen if s.failure]
        if ready // 10 > logged // 10:
            log(f"set-up: {ready} of {count} watchers show the run")
            logged = ready
        if ready + len(failed) >= count:
            break
        time.sleep(0.5)
    failed = [s.failure for s in watchers.seen() or [] if s.failure]
    log(
        f"set-up: {ready} of {count} watchers show the run"
        + (f"; {len(failed)} failed, first: {failed[0][:200]}" if failed else "")
    )
    return watchers, ready


class ProtocolTeacher(ProtocolPages):
    """The teacher as an ``st_client.py`` page, as if its browser ran on another machine:
    the server does the owner's work (the live fragment's reruns, snapshots and figures), no
    Chromium draws it. Its Step changes are those the client recorded as the deltas came, each
    with the time it arrived."""

    kind = "protocol: st_client.py (Streamlit's websocket protocol, no browser)"

    def __init__(self, h: Harness, query: str) -> None:
        super().__init__(h, "teacher", 1)
        self.url = ""
        self.client.open(self.group, f"{h.base}/?{query}", 1, timeout=self.call_s())

    def page(self) -> Seen | None:
        """What the page shows now; None when the client does not answer in time."""
        seen = self.seen()
        return seen[0] if seen else None

    def step(self) -> int | None:
        page = self.page()
        return page.step if page else None

    def threads(self) -> int | None:
        page = self.page()
        return page.threads if page else None

    def poll(self) -> None:
        pass  # the client records each change as it comes

    def changes(self, since: float, until: float) -> list[tuple[float, int]]:
        page = self.page()
        return [(t, s) for t, s in page.step_changes if since <= t <= until] if page else []

    def notes(self) -> dict[str, str]:
        """What the page asked of the server and got, in all: the owner's redraws."""
        page = self.page()
        if page is None:
            return {}
        return {
            "teacher page's traffic (protocol, in all)": (
                f"run_every {page.interval or 0:.2f} s; {page.reruns_sent} reruns sent, "
                f"{page.fragment_runs} redraws and {page.full_runs} full runs came back, "
                f"{page.bytes_received / 1e6:.1f} MB received"
                + (f"; connection lost: {page.failure[:120]}" if page.failure else "")
            )
        }

    def wait(self, what: str, done: Callable[[Seen], Any], cap_s: float) -> Any:
        """Poll the page until ``done`` gives a true value (returned), at most ``cap_s`` (and
        not past the set-up limit); TimeoutError naming ``what`` otherwise."""
        end = time.monotonic() + min(cap_s, max(0.0, self.h.left()))
        while time.monotonic() < end:
            page = self.page()
            if page is not None and page.failure:
                raise ConnectionError(f"the teacher's page: {page.failure}")
            if page is not None and (value := done(page)):
                return value
            time.sleep(0.25)
        raise TimeoutError(f"the teacher's page: no {what} in {cap_s:g} s")

    def press_until(self, label: str, what: str, done: Callable[[Seen], Any]) -> Any:
        """Press ``label`` once the page shows it, then wait for ``done`` (SETUP_STEP_S each)."""
        self.wait(f'"{label}" button pressed', lambda _: self.press(label), SETUP_STEP_S)
        return self.wait(what, done, SETUP_STEP_S)

    def press(self, label: str) -> bool:
        try:
            return self.client.press(self.group, 0, label, timeout=self.call_s())
        except (OSError, TimeoutError) as exc:  # tried again on the next poll
            log(f"protocol teacher: {exc}")
            return False


def share_protocol(h: Harness, query: str) -> ProtocolTeacher:
    """Open a protocol teacher page, start its run, share it, read the watch link from the
    code block that shows it."""
    teacher = ProtocolTeacher(h, query)
    teacher.wait("first run of the lab", lambda page: page.full_runs, SETUP_STEP_S)
    teacher.press_until("Start", "Step metric", lambda page: page.step is not None)
    teacher.url = teacher.press_until(
        "Share this run with the class",
        "watch link",
        lambda page: next((c.strip() for c in page.codes if "watch=" in c), None),
    )
    return teacher


def page_problems(h: Harness, pages: list[Any]) -> tuple[int, int, int]:
    """Exception boxes and error boxes on Chromium pages, and how many did not answer."""
    seen = [h.read(p) for p in pages]
    return (
        sum(s["exceptions"] for s in seen if s),
        sum(s["errors"] for s in seen if s),
        sum(s is None for s in seen),
    )


def start_students(h: Harness, count: int) -> list[Any]:
    """Open ``count`` Chromium pages of the lab with TINY, press Start and choose the Text view
    on each; the pages that did."""
    pages = []
    for _ in range(count):
        page = h.new_page()
        h.open_lab(page, TINY)
        pages.append(page)
    started = []
    for i, page in enumerate(pages):
        try:
            h.wait_start(page)
            h.press(page, "Start")
            h.choose_view(page, "Text")  # as in the students scenario
            started.append(page)
        except Exception as exc:  # counted in the table
            log(f"student {i + 1} did not start: {type(exc).__name__}")
    log(f"set-up: {len(started)} of {count} students started (Chromium pages)")
    return started


class ProtocolStudents(ProtocolPages):
    """Students as ``st_client.py`` pages: each opens the lab with TINY, chooses the Text view
    and presses Start over the protocol, as ``start_students`` does on a Chromium page (the
    view matters to the server: Text draws no charts), and its Step and State metrics are read
    from the client. A student's laptop draws its page; the server bears the rest."""

    kind = "protocol: st_client.py (Streamlit's websocket protocol, no browser)"

    def __init__(self, h: Harness, count: int) -> None:
        super().__init__(h, "students", count)
        self.started: list[int] = []  # the pages that pressed Start, by index
        self.client.open(self.group, f"{h.base}/?{TINY}", count, timeout=self.call_s())

    def start(self) -> None:
        """Start each page once its first run has finished (so its Start button is known);
        until the set-up limit, STUDENTS_SETUP_S at most."""
        end = min(time.monotonic() + STUDENTS_SETUP_S, self.h.deadline)
        while len(self.started) < self.count and not self.h.expired() and time.monotonic() < end:
            for i, seen in enumerate(self.seen() or []):
                if i not in self.started and seen.full_runs and self.start_one(i):
                    self.started.append(i)
            time.sleep(0.5)
        log(f"set-up: {len(self.started)} of {self.count} students started (protocol pages)")

    def start_one(self, index: int) -> bool:
        """Choose Text, then press Start (the choice is held, so the Start rerun carries it
        even if the server merges the two reruns); whether Start was pressed."""
        try:
            self.client.choose(self.group, index, "View", "Text", timeout=self.call_s())
            return self.client.press(self.group, index, "Start", timeout=self.call_s())
        except (OSError, TimeoutError) as exc:  # tried again on the next round
            log(f"protocol student {index + 1}: {exc}")
            return False

    def readings(self) -> list[tuple[int | None, str]]:
        """(Step, State) of each started page; "no answer" for a State not shown or a page
        whose connection is gone, as for a Chromium page that does not answer."""
        seen = self.seen()
        if seen is None:
            return [(None, "no answer")] * len(self.started)
        pages = [seen[i] for i in self.started]
        return [
            (None, "no answer") if s.failure else (s.step, s.state or "no answer") for s in pages
        ]


def open_students(h: Harness, count: int) -> tuple[list[Any], ProtocolStudents | None]:
    """``count`` students of the kind ``--student-clients`` asks for: the started Chromium
    pages (all, or only student 1 with protocol students) and the protocol students, if any.
    The protocol pages load while the Chromium ones start."""
    in_browser = count if h.args.student_clients == "browser" else min(1, count)
    protocol = ProtocolStudents(h, count - in_browser) if count > in_browser else None
    pages = start_students(h, in_browser)
    if protocol is not None:
        protocol.start()
    return pages, protocol


def page_readings(h: Harness, pages: list[Any]) -> list[tuple[int | None, str]]:
    """(Step, State) of each Chromium page; "no answer" when it shows no State."""
    metrics = [(h.read(p) or {}).get("metrics", {}) for p in pages]
    return [
        (int(m["Step"].replace(",", "")) if "Step" in m else None, m.get("State", "no answer"))
        for m in metrics
    ]


def steps(h: Harness, pages: list[Any]) -> list[int | None]:
    """Each page's Step metric; a page that does not answer in READ_S gets one more try of
    3 s after the others (None when it still shows no Step)."""
    found = [h.step_of(p) for p in pages]
    return [s if s is not None else h.step_of(p, 3.0) for p, s in zip(pages, found, strict=True)]


def classroom(h: Harness) -> None:
    args, report = h.args, h.report
    report.set(
        "scenario",
        f"1 teacher run ({TEACHER}), shared with {args.watchers} watchers; "
        f"{args.students} students training ({TINY})",
    )
    t_setup = time.monotonic()
    h.limit = h.deadline - args.duration - 30  # set-up must leave the window its time
    teacher = share(h, TEACHER)
    learners, protocol = open_students(h, args.students)
    watchers, ready = open_watchers(h, teacher.url, args.watchers)
    h.limit = h.deadline
    report.set("teacher client", teacher.kind)
    report.set("watcher clients", watchers.kind)
    report.set("student clients", student_kinds(learners, protocol, args.students))
    report.set("set-up (pages open, runs started)", f"{time.monotonic() - t_setup:.1f} s")
    report.set("watchers showing the run at the end of set-up", f"{ready} / {args.watchers}")
    if not learners or not watchers.count:
        raise RuntimeError("set-up ran out of time: no watcher or no student page opened")
    h.health.start()
    cpu0, t0 = h.cpu(), time.monotonic()
    first = watchers.steps()
    watchers.mark()
    teacher0 = teacher.step()
    learners0 = steps(h, learners) + [step for step, _ in protocol_readings(protocol)]
    log(f"window starts: teacher at step {teacher0}; {args.duration:.0f} s")
    reruns: list[float] = []
    slow = 0
    end = min(t0 + args.duration, h.deadline)
    last_log = time.monotonic()
    while time.monotonic() < end:
        if learners:
            try:
                latency, in_time = h.rerun_latency(learners[0])
                reruns.append(latency)
                slow += not in_time
            except Exception as exc:  # one miss, next try
                log(f"rerun on the student page failed: {type(exc).__name__}")
        report.set("health p50 / p95 (window)", h.health.summary())
        report.set(
            "page rerun p50 / p95 (Seed +, a student's page)",
            f"{p50_p95(reruns)} ({len(reruns)} reruns, {slow} over {RERUN_TIMEOUT_S:.0f} s)",
        )
        if time.monotonic() - last_log > 10:
            last_log = time.monotonic()
            log(
                f"window {time.monotonic() - t0:.0f} s: rerun p95 "
                f"{percentile(reruns, 95) * 1e3:.0f} ms, health p95 "
                f"{percentile(h.health.latencies, 95) * 1e3:.0f} ms"
            )
        time.sleep(min(0.5, max(0.0, end - time.monotonic())))
    window = time.monotonic() - t0
    if window < args.duration - 1:
        report.partial = f"the window was cut at {window:.0f} of {args.duration:.0f} s"
    report.set("measured window", f"{window:.0f} s")
    report.set(
        f"CPU in the window (share of {os.cpu_count() or 1} cores): server / browser+driver / "
        "protocol client",
        cpu_text(h, h.cpu() - cpu0, window),
    )
    last = watchers.steps()
    teacher1 = teacher.step()
    rose = [b - a for a, b in zip(first, last, strict=True) if a is not None and b is not None]
    risen = sum(r > 0 for r in rose)
    report.set(
        "watchers whose Step rose in the window",
        f"{risen} / {args.watchers} (rise min / median {min(rose, default=0)} / "
        f"{sorted(rose)[len(rose) // 2] if rose else 0} steps; "
        f"{watchers.count - len(rose)} showed no Step at the start or the end)",
    )
    for name, value in {**watchers.notes(), **teacher.notes()}.items():
        report.set(name, value)
    if teacher0 is not None and teacher1 is not None:
        rate = (teacher1 - teacher0) / window
        report.set(
            "teacher's run in the window", f"{teacher1 - teacher0} steps ({rate:.1f}/s of 20)"
        )
    learners1 = page_readings(h, learners) + protocol_readings(protocol)
    report.set("students' jobs at the end", jobs_text(learners0, learners1))
    if protocol is not None:  # the same count, on the protocol students alone
        n = len(learners)
        report.set("of them, protocol students'", jobs_text(learners0[n:], learners1[n:]))
    problems = [teacher.problems(), page_problems(h, learners), watchers.problems()]
    problems += [protocol.problems()] if protocol is not None else []
    exceptions, boxes, silent = (sum(counts) for counts in zip(*problems, strict=True))
    count = 1 + len(learners) + watchers.count + (protocol.count if protocol is not None else 0)
    report.set(
        "errors on the pages (exceptions / error boxes / no answer)",
        f"{exceptions} / {boxes} / {silent} of {count} pages "
        "(a protocol page answers none when its connection is gone)",
    )
    h.health.done.set()
    report.check(
        "p95 < 1 s",
        percentile(h.health.latencies, 95) < 1 and percentile(reruns, 95) < 1,
    )
    report.check("every watcher saw the Step rise", risen == args.watchers)


def student_kinds(learners: list[Any], protocol: ProtocolStudents | None, count: int) -> str:
    """Which kind of client played which students, and how many of each started."""
    if protocol is None:
        return f"browser: headless Chromium pages, {len(learners)} of {count} started"
    return (
        "student 1: browser (headless Chromium; the reruns are timed there), "
        f"{len(learners)} of 1 started; students 2..{count}: {protocol.kind}, "
        f"{len(protocol.started)} of {protocol.count} started"
    )


def protocol_readings(protocol: ProtocolStudents | None) -> list[tuple[int | None, str]]:
    return protocol.readings() if protocol is not None else []


def jobs_text(before: list[int | None], after: list[tuple[int | None, str]]) -> str:
    """The started students' jobs: how many show each State at the end, and how many
    progressed in the window (the Step rose, or a verdict shows) or finished. ``before``: the
    Steps at the start of the window, ``after``: (Step, State) at its end, student by student,
    whichever client played them."""
    summary = Counter(state.split(" (")[0] for _, state in after)  # "queued (#2)": queued
    done = sum(state in ENDED for _, state in after)
    progressed = sum(
        (b or 0) > (a or 0) or state in ENDED for a, (b, state) in zip(before, after, strict=True)
    )
    return (
        f"{', '.join(f'{k}: {v}' for k, v in sorted(summary.items())) or 'none started'}; "
        f"{progressed} of {len(after)} progressed or finished ({done} finished)"
    )


def cpu_text(h: Harness, cpu: Cpu, seconds: float) -> str:
    """'server / browser+driver / protocol client' CPU seconds, each with its share of the
    machine's cores over ``seconds``."""
    cores = os.cpu_count() or 1

    def part(value: float) -> str:
        value = max(0.0, value)  # a process that has not run reads -0.0 after rounding
        return f"{value:.1f} s ({value / seconds / cores:.0%})"

    client = part(cpu.protocol) if h.client is not None else "–"
    return f"{part(cpu.server)} / {part(cpu.browser)} / {client}"


def rate(h: Harness, teacher: Teacher, seconds: float) -> tuple[float, int, Cpu, set[int | None]]:
    """Steps per second over ``seconds``: the least-squares slope of the teacher's Step metric
    against the time each new value was first seen (read every STEP_POLL_S from a Chromium
    page, recorded as it arrived by the protocol client); and how many changes it saw, the CPU
    seconds of the server, the browser and the protocol client in the phase, and the job's
    thread counts seen (read every few seconds)."""
    threads: set[int | None] = set()
    cpu0, t0 = h.cpu(), time.monotonic()
    end = min(t0 + seconds, h.deadline)
    next_threads = 0.0
    while time.monotonic() < end:
        teacher.poll()
        if time.monotonic() >= next_threads:
            threads.add(teacher.threads())
            next_threads = time.monotonic() + 3.0
        time.sleep(STEP_POLL_S)
    cpu = h.cpu() - cpu0
    points = teacher.changes(t0, end)
    return fit_slope(points), len(points), cpu, threads


def fit_slope(points: list[tuple[float, int]]) -> float:
    """The least-squares slope of (time, step) points, steps/s; NaN for fewer than 3."""
    n = len(points)
    if n < 3:
        return float("nan")
    mt = sum(t for t, _ in points) / n
    ms = sum(s for _, s in points) / n
    return sum((t - mt) * (s - ms) for t, s in points) / sum((t - mt) ** 2 for t, _ in points)


def watchers_cost(h: Harness) -> None:
    args, report = h.args, h.report
    report.set(
        "scenario",
        f"teacher run {FAST_TEACHER}, shared, its page open throughout; phases of "
        f"{args.phase:.0f} s after {SETTLE_S:.0f} s of settling: alone, with {args.watchers} "
        "watchers, alone again",
    )
    teacher = share(h, FAST_TEACHER)
    report.set("teacher client", teacher.kind)
    page_wait = time.monotonic() + 5
    while (teacher.step() or 0) < 1 and time.monotonic() < page_wait + 25:
        time.sleep(0.2)
    h.health.start()
    settle = min(SETTLE_S, max(0.0, h.left() - 3 * args.phase - 60))
    log(f"settling {settle:.0f} s (the job's threads follow the load average)")
    time.sleep(settle)
    rates: dict[str, float] = {}
    phase_threads: dict[str, set[int | None]] = {}
    for phase in ("alone", f"with {args.watchers} watchers", "alone again"):
        if phase.startswith("with"):
            t_open = time.monotonic()
            h.limit = h.deadline - 2 * args.phase - 20  # leave the last two phases their time
            watchers, ready = open_watchers(h, teacher.url, args.watchers)
            h.limit = h.deadline
            report.set("watcher clients", watchers.kind)
            report.set("watchers showing the run after set-up", f"{ready} / {args.watchers}")
            report.set("watchers' set-up (not measured)", f"{time.monotonic() - t_open:.0f} s")
            time.sleep(min(5.0, max(0.0, h.left())))  # let their first loads finish
        if h.expired():
            break
        if phase.startswith("with"):
            first = watchers.steps()
            watchers.mark()
        log(f"phase '{phase}': {args.phase:.0f} s")
        slope, n, cpu, threads = rate(h, teacher, args.phase)
        rates[phase], phase_threads[phase] = slope, threads
        report.set(
            f"steps/s {phase}",
            f"{slope:.1f} ({n} changes of the Step metric; torch threads "
            f"{'/'.join(str(t) for t in sorted(threads, key=str))}; CPU server / "
            f"browser+driver / protocol client {cpu_text(h, cpu, args.phase)})",
        )
        log(f"phase '{phase}': {slope:.1f} steps/s")
        if phase.startswith("with"):
            last = watchers.steps()
            risen = sum(
                a is not None and b is not None and b > a for a, b in zip(first, last, strict=True)
            )
            report.set(
                "watchers whose Step rose in their phase / showing a Step at its end",
                f"{risen} / {sum(s is not None for s in last)} of {args.watchers}",
            )
            for name, value in watchers.notes().items():
                report.set(name, value)
            watchers.close()
            time.sleep(min(5.0, max(0.0, h.left())))  # their sessions end
    alone = [r for p, r in rates.items() if p.startswith("alone")]
    watched = [r for p, r in rates.items() if p.startswith("with")]
    if len(alone) == 2 and watched:
        base = sum(alone) / 2
        slowdown = 1 - watched[0] / base
        report.set(
            "slowdown with watchers",
            f"{slowdown:.1%} (vs the mean of the two alone phases, {base:.1f} steps/s; "
            f"the two alone differ by {abs(alone[0] - alone[1]) / base:.1%})",
        )
        counts = set().union(*phase_threads.values())
        if len(counts) > 1:
            report.set("warning", f"the job's thread count changed between phases: {counts}")
        report.check("watchers slow the run by under 10%", slowdown < 0.10)
    else:
        report.partial = report.partial or f"{len(rates)} of 3 phases measured"
    for name, value in teacher.notes().items():
        report.set(name, value)
    report.set("health p50 / p95 (all phases)", h.health.summary())
