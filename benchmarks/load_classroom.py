"""The room's load scenarios for ``load_test.py``: a shared run with a class watching it.

- ``classroom``: a teacher page starts a run (hidden 32, 20 steps/s) and presses "Share this
  run with the class"; ``--watchers`` pages open the watch link and ``--students`` pages train
  their own tiny runs. Over a ``--duration`` window it measures health and page-rerun latency
  (on the first student's page), whether every watcher's Step metric rose, the teacher's and
  the students' progress, CPU seconds of the server and the browser, and errors on the pages.
- ``watchers-cost``: the teacher's run at full speed (hidden 64, shared, its page open
  throughout) for ``--phase`` seconds alone, then with ``--watchers`` watchers, then alone
  again; the training rate of each phase comes from a least-squares fit of the Step metric
  against the time it changed, and the slowdown compares the middle phase with the mean of
  the two alone.

Each function takes the ``Harness`` (server, browser, deadline, report) of ``load_test.py``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from load_test import ENDED, RERUN_TIMEOUT_S, TINY, Harness, log, p50_p95, percentile

TEACHER = "hidden=32&epochs=2000&speed=20"  # 8 steps an epoch: runs far longer than a window
FAST_TEACHER = "hidden=64&epochs=100000&speed=max"
STEP_POLL_S = 0.1  # how often watchers-cost reads the teacher's Step metric


def share(h: Harness, query: str) -> tuple[Any, str]:
    """Open a teacher page, start its run, share it; the page and its watch link."""
    teacher = h.new_page()
    h.open_lab(teacher, query)
    h.wait_start(teacher)
    h.press(teacher, "Start")
    teacher.locator('[data-testid="stMetric"]', has_text="Step").first.wait_for(timeout=h.ms(60))
    h.press(teacher, "Share this run with the class")
    link = teacher.locator("code").filter(has_text="watch=").first
    url = link.inner_text(timeout=h.ms(30)).strip()
    log(f"teacher started and shared: {url}")
    return teacher, url


def open_watchers(h: Harness, url: str, count: int) -> tuple[list[Any], int]:
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
    return opened, ready


def start_students(h: Harness, count: int) -> list[Any]:
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
    log(f"set-up: {len(started)} of {count} students started")
    return started


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
    teacher, url = share(h, TEACHER)
    learners = start_students(h, args.students)
    watchers, ready = open_watchers(h, url, args.watchers)
    h.limit = h.deadline
    report.set("set-up (pages open, runs started)", f"{time.monotonic() - t_setup:.1f} s")
    report.set("watchers showing the run at the end of set-up", f"{ready} / {args.watchers}")
    if not learners or not watchers:
        raise RuntimeError("set-up ran out of time: no watcher or no student page opened")
    h.health.start()
    cpu0, t0 = h.server_cpu(), time.monotonic()
    first = steps(h, watchers)
    teacher0 = h.step_of(teacher)
    learners0 = steps(h, learners)
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
    server_cpu, browser_cpu = (b - a for a, b in zip(cpu0, h.server_cpu(), strict=True))
    cores = os.cpu_count() or 1
    report.set(
        "CPU in the window: server / browser+driver",
        f"{server_cpu:.0f} s ({server_cpu / window / cores:.0%} of {cores} cores) / "
        f"{browser_cpu:.0f} s ({browser_cpu / window / cores:.0%})",
    )
    last = steps(h, watchers)
    teacher1 = h.step_of(teacher)
    rose = [b - a for a, b in zip(first, last, strict=True) if a is not None and b is not None]
    risen = sum(r > 0 for r in rose)
    report.set(
        "watchers whose Step rose in the window",
        f"{risen} / {args.watchers} (rise min / median {min(rose, default=0)} / "
        f"{sorted(rose)[len(rose) // 2] if rose else 0} steps; "
        f"{len(watchers) - len(rose)} showed no Step at the start or the end)",
    )
    if teacher0 is not None and teacher1 is not None:
        rate = (teacher1 - teacher0) / window
        report.set(
            "teacher's run in the window", f"{teacher1 - teacher0} steps ({rate:.1f}/s of 20)"
        )
    states = [(h.read(p) or {}).get("metrics", {}) for p in learners]
    learners1 = [int(m["Step"].replace(",", "")) if "Step" in m else None for m in states]
    done = sum(m.get("State") in ENDED for m in states)
    summary: dict[str, int] = {}
    for m in states:
        state = m.get("State", "no answer").split(" (")[0]
        summary[state] = summary.get(state, 0) + 1
    progressed = sum(
        (b or 0) > (a or 0) or m.get("State") in ENDED
        for a, b, m in zip(learners0, learners1, states, strict=True)
    )
    report.set(
        "students' jobs at the end",
        f"{', '.join(f'{k}: {v}' for k, v in sorted(summary.items()))}; "
        f"{progressed} of {len(learners)} progressed or finished ({done} finished)",
    )
    pages = [teacher, *learners, *watchers]
    seen = [h.read(p) for p in pages]
    report.set(
        "errors on the pages (exceptions / error boxes / no answer)",
        f"{sum(s['exceptions'] for s in seen if s)} / {sum(s['errors'] for s in seen if s)} / "
        f"{sum(s is None for s in seen)} of {len(pages)} pages",
    )
    h.health.done.set()
    report.check(
        "p95 < 1 s",
        percentile(h.health.latencies, 95) < 1 and percentile(reruns, 95) < 1,
    )
    report.check("every watcher saw the Step rise", risen == args.watchers)


def rate(h: Harness, page: Any, seconds: float) -> tuple[float, int, float]:
    """Steps per second over ``seconds``: the least-squares slope of the Step metric against
    the time each new value was first seen; and how many changes it saw, and the server's CPU
    seconds in the phase."""
    points: list[tuple[float, int]] = []
    cpu0 = h.server_cpu()[0]
    end = min(time.monotonic() + seconds, h.deadline)
    while time.monotonic() < end:
        step = h.step_of(page)
        if step is not None and (not points or step != points[-1][1]):
            points.append((time.monotonic(), step))
        time.sleep(STEP_POLL_S)
    cpu = h.server_cpu()[0] - cpu0
    if len(points) < 3:
        return float("nan"), len(points), cpu
    n = len(points)
    mt = sum(t for t, _ in points) / n
    ms = sum(s for _, s in points) / n
    slope = sum((t - mt) * (s - ms) for t, s in points) / sum((t - mt) ** 2 for t, _ in points)
    return slope, n, cpu


def watchers_cost(h: Harness) -> None:
    args, report = h.args, h.report
    report.set(
        "scenario",
        f"teacher run {FAST_TEACHER}, shared, its page open throughout; phases of "
        f"{args.phase:.0f} s: alone, with {args.watchers} watchers, alone again",
    )
    teacher, url = share(h, FAST_TEACHER)
    page_wait = time.monotonic() + 5
    while (h.step_of(teacher) or 0) < 1 and time.monotonic() < page_wait + 25:
        time.sleep(0.2)
    h.health.start()
    rates: dict[str, float] = {}
    for phase in ("alone", f"with {args.watchers} watchers", "alone again"):
        if phase.startswith("with"):
            t_open = time.monotonic()
            h.limit = h.deadline - 2 * args.phase - 20  # leave the last two phases their time
            watchers, ready = open_watchers(h, url, args.watchers)
            h.limit = h.deadline
            report.set("watchers showing the run after set-up", f"{ready} / {args.watchers}")
            report.set("watchers' set-up (not measured)", f"{time.monotonic() - t_open:.0f} s")
            time.sleep(min(5.0, max(0.0, h.left())))  # let their first loads finish
        if h.expired():
            break
        log(f"phase '{phase}': {args.phase:.0f} s")
        slope, n, cpu = rate(h, teacher, args.phase)
        rates[phase] = slope
        report.set(
            f"steps/s {phase}",
            f"{slope:.1f} ({n} changes of the Step metric; server CPU {cpu:.0f} s)",
        )
        log(f"phase '{phase}': {slope:.1f} steps/s")
        if phase.startswith("with"):
            first = steps(h, watchers)
            report.set(
                "watchers answering with a Step at the end of their phase",
                f"{sum(s is not None for s in first)} / {args.watchers}",
            )
            for page in watchers:
                if h.expired():
                    break
                h.close_page(page)
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
        report.check("watchers slow the run by under 10%", slowdown < 0.10)
    else:
        report.partial = report.partial or f"{len(rates)} of 3 phases measured"
    report.set("health p50 / p95 (all phases)", h.health.summary())
