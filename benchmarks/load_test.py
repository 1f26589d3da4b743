"""Load test: browser sessions against one local GRU Lab server, in five scenarios.

    python benchmarks/load_test.py [--scenario students] --sessions 20 [--timeout 600]
    python benchmarks/load_test.py --scenario classroom --watchers 30 --students 5 --duration 90
    python benchmarks/load_test.py --scenario watchers-cost --watchers 40 --phase 30
    python benchmarks/load_test.py --scenario watchers-cost --teacher-client protocol  # below
    python benchmarks/load_test.py --scenario classroom --watcher-clients browser
    python benchmarks/load_test.py --scenario classroom --student-clients browser
    python benchmarks/load_test.py --scenario views --busy 2 [--marks 100,1000,4000]
    python benchmarks/load_test.py --scenario storm --busy 2 [--minutes 10] [--every 0.3]

Starts ``streamlit run dashboard/app.py`` on a free loopback port and drives headless
Chromium pages (Debian's /usr/bin/chromium; never ``playwright install``):

- ``students`` (the default): ``--sessions`` pages each train a tiny run until all are done;
- ``classroom``: one teacher run shared with ``--watchers`` watchers while ``--students``
  students train their own runs, measured for ``--duration`` seconds (``load_classroom.py``);
- ``watchers-cost``: the teacher's training rate alone, with ``--watchers`` watchers, and alone
  again (``load_classroom.py``);
- ``views``: one page runs the book's config and, at each step mark in ``--marks``, clicks
  through every view ``--rounds`` times, timing each click until the view's charts carry data
  with nothing stale, beside ``--busy`` busy CPU loops (``load_views.py``);
- ``storm``: one page runs the book's config and clicks a view every ``--every`` seconds for
  ``--minutes`` minutes beside ``--busy`` busy loops: the slowest click to answer, the clicks
  over 5 s, and whether the Step kept moving (``load_storm.py``).

The observer and the sessions of ``students`` are always Chromium pages. The watchers, by
default (``--watcher-clients protocol``), are ``st_client.py`` pages: one child process that
speaks Streamlit's websocket protocol for all of them (the reruns their ``run_every`` asks for,
the messages the server sends back) and draws nothing. In a classroom each watcher's browser
runs on its own laptop, so the server bears only that traffic; thirty Chromium pages drawing
plotly charts on this machine would take the cores the server needs.
``--watcher-clients browser`` opens them as Chromium pages, as before. Likewise the classroom's
students 2..N, by default (``--student-clients protocol``), are pages of the same client: each
opens the lab with the tiny settings, chooses the Text view and presses Start over the protocol,
and its Step and State metrics are read from the client; the server bears their traffic and
their training jobs, not their drawing. Student 1 stays a Chromium page, since the rerun latency
is timed on a real page. ``--student-clients browser`` makes every student a Chromium page. The
teacher (``classroom``, ``watchers-cost``) is, by default (``--teacher-client browser``), a
Chromium page, whose drawing takes about one of a 2-core machine's cores; with
``--teacher-client protocol`` it is a page of the same client, as if the teacher's browser ran
on another machine (the projector's laptop): it opens the lab, presses Start and "Share this run
with the class" and reads the watch link over the protocol, and its Step metric (with the time
of each change) and the job's thread count are read from the client. The server still does all
of the owner's work (the live fragment's reruns, the snapshots and figures they build). Chromium
is started only for the first page that needs it.

What it measures: the health endpoint's latency (``/_stcore/health`` every 100 ms from a
thread); a page rerun's latency (click the Seed field's "+" and wait until the page's URL holds
the new seed: the app writes the URL at the end of each full rerun); what the pages' metrics
say; CPU seconds of the server, of the browser, and of the protocol client (teacher, watchers
and students), each apart; the server's peak RSS (VmHWM) and the tracebacks in its stderr.

Set-up counts inside ``--timeout``; progress lines go to stdout as it runs; every read of a page
waits at most ``READ_S`` (a page that does not answer is skipped and counted); the table is
always printed, marked partial when the timeout cut the run short. A watchdog prints what there
is and ends the process ``WATCHDOG_S`` after the timeout if a call into the browser hangs.
Not part of the test suite. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gru_core.run.verdict import VERDICTS

if TYPE_CHECKING:
    from st_client import ProtocolClient

REPO = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    # every page is someone's foreground tab: no timer throttling of the pages' refreshes
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--js-flags=--max-old-space-size=256",
]
VIEWPORT = {"width": 1200, "height": 900}
TINY = "hidden=16&steps=10&batch=8&epochs=20"
READ_S = 1.0  # the longest one read of one page may wait
RERUN_TIMEOUT_S = 10.0  # a rerun slower than this is recorded as this long, and counted
WATCHDOG_S = 45.0  # after the timeout: print what there is and exit, whatever hangs
ENDED = frozenset(VERDICTS)

# Every metric on the page (label -> value), plus the exception and error boxes it shows.
_READ_JS = """
() => ({
  metrics: Object.fromEntries(Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
    .map(m => [(m.querySelector('[data-testid="stMetricLabel"]') || {}).innerText,
               (m.querySelector('[data-testid="stMetricValue"]') || {}).innerText])
    .filter(([k, v]) => k && v).map(([k, v]) => [k.trim(), v.trim()])),
  exceptions: document.querySelectorAll('[data-testid="stException"]').length,
  errors: document.querySelectorAll('[data-testid="stAlertContentError"]').length,
})
"""
_URL_BENCH_JS = "() => new URLSearchParams(location.search).has('bench')"
_URL_SEED_JS = "want => new URLSearchParams(location.search).get('seed') === want"

T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def p50_p95(values: list[float], unit: str = "ms") -> str:
    scale = 1e3 if unit == "ms" else 1.0
    return (
        f"{percentile(values, 50) * scale:.0f} {unit} / {percentile(values, 95) * scale:.0f} {unit}"
    )


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the whole process) from /proc, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cpu:
    """CPU seconds (user + system) of what the load test started, each part apart."""

    server: float
    browser: float  # the browser's processes and Playwright's driver
    protocol: float  # the protocol client's pages: teacher, watchers, students (0 when none)

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(
            self.server - other.server,
            self.browser - other.browser,
            self.protocol - other.protocol,
        )


def cpu_seconds(server_pid: int, client_pid: int | None) -> Cpu:
    """CPU seconds so far of the server, of the protocol client (``client_pid``), and of
    everything else this process started (the browser's processes and Playwright's
    driver)."""
    stats = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(int(p)))}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)

    def tree(root: int) -> float:
        todo, total = [root], 0.0
        while todo:
            pid = todo.pop()
            total += stats[pid][1] if pid in stats else 0.0
            todo += children.get(pid, [])
        return total

    server = tree(server_pid)
    protocol = tree(client_pid) if client_pid is not None else 0.0
    others = tree(os.getpid()) - stats.get(os.getpid(), (0, 0.0))[1] - server - protocol
    return Cpu(server, others, protocol)


class HealthProbe(threading.Thread):
    """GET /_stcore/health every 100 ms; latencies of the answers, count of the failures."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.latencies, self.failures = url, [], 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    ok = r.read().strip() == b"ok"
            except OSError:
                ok = False
            if ok:
                self.latencies.append(time.perf_counter() - t0)
            else:
                self.failures += 1
            self.done.wait(0.1)

    def summary(self) -> str:
        return f"{p50_p95(self.latencies)} ({len(self.latencies)} probes, {self.failures} failed)"


@dataclass
class Report:
    """The table, filled as the scenario goes, so a cut-short run still prints its figures."""

    title: str
    rows: dict[str, str] = field(default_factory=dict)
    partial: str = ""  # why the figures are partial ("" when the scenario finished)
    verdicts: list[str] = field(default_factory=list)
    ok: bool = True
    printed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, name: str, value: str) -> None:
        with self.lock:
            self.rows[name] = value

    def check(self, what: str, passed: bool) -> None:
        with self.lock:
            self.verdicts.append(f"{what}: {'PASS' if passed else 'FAIL'}")
            self.ok = self.ok and passed

    def text(self) -> str:
        with self.lock:
            rows = dict(self.rows)
            if self.partial:
                rows = {"PARTIAL": self.partial, **rows}
            body = "\n".join(f"| {a} | {b} |" for a, b in rows.items())
            lines = [f"**{self.title}**", "", "| measure | value |", "|---|---|", body]
            if self.verdicts:
                lines += ["", "; ".join(self.verdicts) + (" (partial)" if self.partial else "")]
            return "\n".join(lines)

    def print_once(self, markdown: str | None) -> None:
        with self.lock:
            if self.printed:
                return
            self.printed = True
        table = self.text()
        print("\n" + table, flush=True)
        if markdown:
            Path(markdown).write_text(table + "\n")


class Harness:
    """The server, the browser, the protocol client (watchers', students' pages), the deadline
    and the report that a scenario works with."""

    def __init__(self, args: argparse.Namespace, report: Report) -> None:
        self.args, self.report = args, report
        self.deadline = time.monotonic() + args.timeout
        self.limit = self.deadline  # a scenario may end its set-up before the deadline
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logdir = Path(tempfile.mkdtemp(prefix="gru-lab-load-"))
        self.server: subprocess.Popen[bytes] | None = None
        self.health = HealthProbe(self.base + "/_stcore/health")
        self.pw: Any = None
        self.browser: Any = None
        self.contexts: list[Any] = []
        self.client: ProtocolClient | None = None  # started by the first protocol pages

    # time
    def left(self) -> float:
        return min(self.deadline, self.limit) - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0

    def ms(self, cap_s: float) -> int:
        """A Playwright timeout: ``cap_s`` seconds, or what is left until the deadline (or
        the earlier ``limit`` a scenario set for its set-up)."""
        return max(1, int(min(cap_s, self.left()) * 1000))

    # server and browser
    def start(self) -> None:
        env = {
            **os.environ,
            "GRU_LAB_CLOSE_GRACE_S": "5",
            "GRU_LAB_RUNS_DB": str(self.logdir / "runs.sqlite3"),
        }
        if Path(self.args.corpus).exists():
            env["GRU_LAB_CORPUS"] = self.args.corpus
        self.stderr = (self.logdir / "streamlit-stderr.log").open("wb")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless",
             "true", "--server.port", str(self.port), "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=self.stderr,
            start_new_session=True,
        )  # fmt: skip
        while not self.expired():
            if self.server.poll() is not None:
                raise RuntimeError(f"streamlit exited early; see {self.stderr.name}")
            try:
                with urllib.request.urlopen(self.base + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                time.sleep(0.3)
        log(f"server up on {self.base} (pid {self.server.pid}; stderr in {self.stderr.name})")

    def launch_browser(self) -> None:
        """Start Playwright's driver and Chromium: on the first page that needs them, so that
        a run with no Chromium page has no browser competing for the cores."""
        from playwright.sync_api import sync_playwright

        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        log("browser started")

    def protocol_client(self) -> ProtocolClient:
        """The protocol client (``st_client.py``) of the teacher, watchers and students that
        are not Chromium pages, started on the first call."""
        if self.client is None:
            from st_client import ProtocolClient

            self.client = ProtocolClient(self.logdir / "st_client-stderr.log")
            log(f"protocol client started (pid {self.client.pid})")
        return self.client

    def new_page(self) -> Any:
        """A page in a browser context of its own: its own Streamlit session."""
        if self.browser is None:
            self.launch_browser()
        context = self.browser.new_context(viewport=VIEWPORT)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    def close_page(self, page: Any) -> None:
        try:
            page.context.close()
        except Exception:  # a crashed page is closed already
            pass

    def stop(self) -> None:
        """Protocol client, browser, driver and server: each stopped by what started it,
        errors or not."""
        self.health.done.set()
        for step in (
            lambda: self.client and self.client.stop(),
            lambda: self.browser and self.browser.close(),
            lambda: self.pw and self.pw.stop(),
        ):
            try:
                step()
            except Exception as exc:  # keep stopping the rest
                log(f"while closing the clients: {exc!r}")
        self.kill_server()

    def kill_server(self) -> None:
        if self.server is None or self.server.poll() is not None:
            return
        self.server.terminate()
        try:
            self.server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, signal.SIGKILL)

    def cpu(self) -> Cpu:
        if self.server is None:
            return Cpu(0.0, 0.0, 0.0)
        return cpu_seconds(self.server.pid, self.client.pid if self.client else None)

    def tracebacks(self, name: str = "streamlit-stderr.log") -> int:
        """Tracebacks in one of the logs in ``logdir`` (the server's stderr by default)."""
        try:
            return (self.logdir / name).read_text(errors="replace").count("Traceback")
        except OSError:
            return 0

    # pages
    def read(self, page: Any, wait_s: float = READ_S) -> dict[str, Any] | None:
        """The page's metrics and error boxes, or None when it does not answer in time."""
        try:
            return page.locator("body").evaluate(_READ_JS, timeout=self.ms(wait_s))
        except Exception:  # timeouts and crashed pages alike: skip it
            return None

    def step_of(self, page: Any, wait_s: float = READ_S) -> int | None:
        seen = self.read(page, wait_s)
        value = (seen or {}).get("metrics", {}).get("Step")
        return int(value.replace(",", "")) if value else None

    def open(self, page: Any, url: str) -> None:
        """Start loading ``url`` and return at once (the page asks for it by itself, so that
        many pages load side by side); whoever waits for the page sees whether it came."""
        try:
            page.evaluate("u => { setTimeout(() => { location.href = u }, 0) }", url)
        except Exception as exc:  # a page that cannot even do that: its wait will say so
            log(f"opening {url}: {type(exc).__name__}")

    def open_lab(self, page: Any, query: str) -> None:
        self.open(page, f"{self.base}/?{query}")

    def wait_start(self, page: Any, cap_s: float = 60) -> None:
        """Wait until the lab page shows Start and its first full rerun has ended (the app
        writes ``bench=`` into the URL then): a click before that may be dropped."""
        start = page.get_by_role("button", name="Start", exact=True)
        start.wait_for(timeout=self.ms(cap_s))
        page.wait_for_function(_URL_BENCH_JS, polling=50, timeout=self.ms(cap_s))

    def press(self, page: Any, name: str, cap_s: float = 20) -> None:
        page.get_by_role("button", name=name, exact=True).click(timeout=self.ms(cap_s))

    def choose_view(self, page: Any, name: str) -> None:
        views = page.locator('[data-testid="stButtonGroup"]')
        views.get_by_role("radio", name=name, exact=True).click(timeout=self.ms(20))

    def rerun_latency(self, page: Any) -> tuple[float, bool]:
        """Click Seed "+" and wait until the URL holds the new seed (the end of the full
        rerun): (seconds, finished in time)."""
        seed = page.locator('[data-testid="stNumberInput"]', has_text="Seed")
        want = str(int(seed.locator("input").input_value(timeout=self.ms(5))) + 1)
        t0 = time.perf_counter()
        seed.locator('[data-testid="stNumberInputStepUp"]').click(timeout=self.ms(5))
        try:
            page.wait_for_function(
                _URL_SEED_JS, arg=want, polling=10, timeout=self.ms(RERUN_TIMEOUT_S)
            )
            return time.perf_counter() - t0, True
        except Exception:  # a timeout: record it as that long
            return time.perf_counter() - t0, False


def load_rows(report: Report, before: tuple[float, ...]) -> None:
    after = os.getloadavg()
    report.set(
        "load average before / after (1, 5, 15 min)",
        f"{' '.join(f'{x:.2f}' for x in before)} / {' '.join(f'{x:.2f}' for x in after)}",
    )
    report.set("machine", f"{os.cpu_count()} CPU cores")


# -- the students scenario -------------------------------------------------------------------
def students(h: Harness) -> None:
    """``--sessions`` pages each train a tiny run; an observer page times reruns meanwhile."""
    args, report = h.args, h.report
    report.set("sessions", str(args.sessions))
    t_start = time.monotonic()
    pages: list[Any] = []
    for _ in range(args.sessions):  # open them all at once, then wait for each
        if h.expired():
            break
        page = h.new_page()
        h.open_lab(page, TINY)
        pages.append(page)
    started: list[Any] = []
    for i, page in enumerate(pages):
        if h.expired():
            break
        try:
            h.wait_start(page)
            h.press(page, "Start")
            h.choose_view(page, "Text")  # draws no charts: keeps the browser's share small
            started.append(page)
        except Exception as exc:  # one page that fails is counted, not fatal
            log(f"session {i + 1} did not start: {type(exc).__name__}")
        if (i + 1) % 5 == 0 or i + 1 == len(pages):
            log(f"set-up: {len(started)} of {i + 1} sessions started")
    report.set("set-up (open pages, press Start)", f"{time.monotonic() - t_start:.1f} s")
    h.health.start()
    observer = h.new_page()
    h.open_lab(observer, TINY)
    h.wait_start(observer)
    reruns: list[float] = []
    slow = 0
    finished: set[int] = set()
    states: dict[int, str] = {}
    last_log = 0.0

    def fill() -> None:
        n = len(started)
        report.set("sessions started", f"{n} / {args.sessions}")
        report.set("jobs finished (a verdict shown)", f"{len(finished)} / {args.sessions}")
        counts = {s: list(states.values()).count(s) for s in sorted(set(states.values()))}
        report.set("last states seen", ", ".join(f"{k}: {v}" for k, v in counts.items()) or "–")
        report.set("health p50 / p95", h.health.summary())
        report.set(
            "page rerun p50 / p95",
            f"{p50_p95(reruns)} ({len(reruns)} reruns, {slow} over {RERUN_TIMEOUT_S:.0f} s)",
        )
        report.set("wall time since set-up began", f"{time.monotonic() - t_start:.1f} s")

    while len(finished) < len(started) and not h.expired():
        try:
            latency, in_time = h.rerun_latency(observer)
            reruns.append(latency)
            slow += not in_time
        except Exception as exc:  # the observer did not answer this time
            log(f"observer rerun failed: {type(exc).__name__}")
        for i, page in enumerate(started):
            if i in finished or h.expired():
                continue
            seen = h.read(page)
            state = (seen or {}).get("metrics", {}).get("State", "no answer")
            states[i] = state
            if state in ENDED:
                finished.add(i)
        fill()
        if time.monotonic() - last_log > 10:
            last_log = time.monotonic()
            log(
                f"{len(finished)}/{len(started)} finished; rerun p95 "
                f"{percentile(reruns, 95) * 1e3:.0f} ms; health p95 "
                f"{percentile(h.health.latencies, 95) * 1e3:.0f} ms"
            )
        time.sleep(0.5)
    fill()
    if len(finished) < args.sessions:
        report.partial = (
            f"{len(finished)} of {args.sessions} sessions finished when the timeout hit"
            if h.expired()
            else ""
        )
    report.check("p95 < 1 s", percentile(h.health.latencies, 95) < 1 and percentile(reruns, 95) < 1)
    report.check("all jobs finish", len(finished) == args.sessions)


# -- the command line ------------------------------------------------------------------------
def scenarios() -> dict[str, Callable[[Harness], None]]:
    # load_classroom imports this module by name: let it find this copy, not load a second
    sys.modules.setdefault("load_test", sys.modules[__name__])
    import load_classroom
    import load_storm
    import load_views

    return {
        "students": students,
        "classroom": load_classroom.classroom,
        "watchers-cost": load_classroom.watchers_cost,
        "views": load_views.views,
        "storm": load_storm.storm,
    }


def watchdog(h: Harness, markdown: str | None) -> None:
    """If the scenario has not returned WATCHDOG_S after the timeout (a hung browser call),
    print the table as it stands, stop the server and the browser, and exit."""
    time.sleep(max(0.0, h.left()) + WATCHDOG_S)
    if h.report.printed:
        return
    h.report.partial = h.report.partial or "the scenario hung past the timeout (watchdog)"
    h.report.print_once(markdown)
    h.kill_server()
    for pid in _descendants():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(3)


def _descendants() -> list[int]:
    parents = {}
    for p in os.listdir("/proc"):
        if p.isdigit() and (s := _stat(int(p))):
            parents[int(p)] = s[0]
    found, todo = [], [os.getpid()]
    while todo:
        parent = todo.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent]
        found += kids
        todo += kids
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scenario_names = ("students", "classroom", "watchers-cost", "views", "storm")
    parser.add_argument("--scenario", choices=scenario_names, default="students")
    parser.add_argument("--sessions", type=int, default=20, help="students: training pages")
    parser.add_argument("--watchers", type=int, default=None,
                        help="watch pages (classroom: 30, watchers-cost: 40)")  # fmt: skip
    parser.add_argument("--students", type=int, default=5, help="classroom: training pages")
    parser.add_argument("--duration", type=float, default=90, help="classroom: window, s")
    parser.add_argument("--phase", type=float, default=30, help="watchers-cost: each phase, s")
    parser.add_argument("--watcher-clients", choices=("protocol", "browser"), default="protocol",
                        help="watchers as st_client.py protocol pages (default) or Chromium "
                        "pages")  # fmt: skip
    parser.add_argument("--student-clients", choices=("protocol", "browser"), default="protocol",
                        help="classroom: students 2..N as st_client.py protocol pages (default; "
                        "student 1 is a Chromium page) or all Chromium pages")  # fmt: skip
    parser.add_argument("--teacher-client", choices=("browser", "protocol"), default="browser",
                        help="classroom, watchers-cost: the teacher as a Chromium page (default) "
                        "or an st_client.py protocol page")  # fmt: skip
    parser.add_argument("--marks", default="100,1000,4000",
                        help="views: step marks (the book's run ends at 4,000; it is made "
                        "longer so that it still trains at the last)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="views: rounds of every view")
    parser.add_argument("--busy", type=int, default=0,
                        help="views, storm: busy CPU loops beside it")  # fmt: skip
    parser.add_argument("--minutes", type=float, default=10, help="storm: how long it clicks")
    parser.add_argument("--every", type=float, default=0.3, help="storm: seconds between clicks")
    parser.add_argument("--from-step", type=int, default=100,
                        help="storm: the Step at which the clicking starts")  # fmt: skip
    parser.add_argument("--alone", type=float, default=15, help="views: idle window at a mark, s")
    parser.add_argument("--settle", type=float, default=30,
                        help="views: the longest a click may take to settle, s")  # fmt: skip
    parser.add_argument("--corpus", default=str(REPO.parent / "shared/data/timemachine.txt"))
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds for everything, set-up included")  # fmt: skip
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    if args.watchers is None:
        args.watchers = 40 if args.scenario == "watchers-cost" else 30
    run = scenarios()[args.scenario]
    report = Report(f"GRU Lab load test: {args.scenario}")
    h = Harness(args, report)
    load_before = os.getloadavg()
    log(f"scenario {args.scenario}; load average {load_before}; timeout {args.timeout:.0f} s")
    threading.Thread(target=watchdog, args=(h, args.markdown), daemon=True).start()
    try:
        h.start()
        run(h)
    except Exception as exc:  # report what there is, with the reason
        log(f"scenario stopped by {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        reason = " ".join(str(exc).split())[:160]
        report.partial = report.partial or f"stopped early by {type(exc).__name__}: {reason}"
        report.ok = False
    except KeyboardInterrupt:
        report.partial = report.partial or "interrupted"
        report.ok = False
    finally:
        if h.server is not None:
            report.set("server peak RSS", f"{peak_rss_mb(h.server.pid):,.0f} MB")
            report.set("tracebacks in the server's stderr", str(h.tracebacks()))
        load_rows(report, load_before)
        log("stopping the clients and the server")
        h.stop()
        if h.client is not None:  # read once it has closed its pages
            report.set(
                "tracebacks in the protocol client's stderr",
                str(h.tracebacks("st_client-stderr.log")),
            )
        report.print_once(args.markdown)
    return 0 if report.ok and not report.partial else 1


if __name__ == "__main__":
    sys.exit(main())
