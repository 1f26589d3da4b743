"""Real-browser fixtures: one Streamlit server per session, one fresh Chromium page per test.

The server is ``streamlit run dashboard/app.py`` on a free port, reading The Time Machine from
``../shared/data`` (or generated English when that file is absent). The browser is Debian's
``/usr/bin/chromium`` driven by Playwright; ``playwright install`` is never needed or run.

Tests talk to the page through ``GruLab``, a small page object that reads what the page shows
(metrics, slider values, plotly traces) and waits on it with timeouts, never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, WebSocketRoute, expect, sync_playwright
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from dashboard.sidebar.controls import to_query
from dashboard.sidebar.lessons import lesson_values

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "e2e"
TIME_MACHINE = REPO.parent / "shared" / "data" / "timemachine.txt"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1500, "height": 2400}  # tall: Streamlit scrolls inside its own container
SERVER_START_S = 60.0  # until /_stcore/health answers 'ok'
PAGE_LOAD_MS = 60_000  # the first page of a session imports torch and reads the corpus
TIMEOUT_MS = 20_000  # default for Playwright actions and expectations

# Plotly traces of every chart on the page, read from the decoded ``_fullData`` (the figure's
# ``data`` may hold arrays as {bdata, dtype} objects). ``n`` counts points (x, y or z rows).
_PLOTS_JS = """
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
  const size = a => (a && (Array.isArray(a) || ArrayBuffer.isView(a))) ? a.length : 0;
  const title = (el.layout && el.layout.title && el.layout.title.text) || '';
  const traces = (el._fullData || []).map(t => ({
    name: t.name || '',
    type: t.type || '',
    n: Math.max(size(t.x), size(t.y), size(t.z)),
    y: (t.type === 'scatter' && size(t.y)) ? Array.from(t.y, Number) : [],
  }));
  return {title: String(title).replace(/<[^>]*>/g, ''), traces: traces};
})
"""

T = TypeVar("T")


# -- the server ------------------------------------------------------------------------------
def read_the_wire(page: Page, on_message: Callable[[ForwardMsg], None]) -> None:
    """Every message the server sends ``page`` from now on, decoded and handed to
    ``on_message``, then passed on to the page unchanged (its websocket routed through
    Playwright)."""

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            msg = ForwardMsg()
            msg.ParseFromString(message if isinstance(message, bytes) else message.encode())
            on_message(msg)
            ws.send(message)

        server.on_message(from_server)

    page.route_web_socket(re.compile(r"/_stcore/stream$"), route)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"streamlit exited with code {proc.returncode} before answering {url}; "
                f"its stderr ({log}) ends with:\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)  # polling a subprocess's health endpoint, not the page
    pytest.fail(f"streamlit did not answer 'ok' on {url} within {timeout_s:.0f} s; see {log}")


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Time Machine from ../shared/data, else a file of generated English sentences."""
    if TIME_MACHINE.exists():
        return TIME_MACHINE
    subjects = ("the time traveller", "my friend", "the machine", "a small crowd", "the doctor")
    verbs = ("looked at", "spoke of", "walked towards", "laughed about", "thought about")
    objects = ("the lamp", "the fourth dimension", "the garden", "the future", "the river")
    lines = [
        f"{s} {v} {o} and then {subjects[(i + j) % 5]} {verbs[(j + k) % 5]} {objects[i]}."
        for i, s in enumerate(subjects)
        for j, v in enumerate(verbs)
        for k, o in enumerate(objects)
    ]
    path = tmp_path_factory.mktemp("corpus") / "generated_english.txt"
    path.write_text("\n".join(lines * 12), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def runs_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs") / "runs.sqlite3"


@pytest.fixture(scope="session")
def app_url(corpus_path: Path, runs_db: Path) -> Iterator[str]:
    """Start the dashboard once for the session; stop it (by its pid) at the end."""
    with serve(corpus_path, runs_db, "streamlit-stderr.log") as url:
        yield url


@contextlib.contextmanager
def serve(corpus_path: Path, runs_db: Path, log_name: str) -> Iterator[str]:
    """A dashboard server on a free port for the duration of the block."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    stderr_log = ARTIFACTS / log_name
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "dashboard/app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--",
        "--corpus",
        str(corpus_path),
    ]
    # Saved runs go to a database of this test session's own (never the user's cache).
    env = {
        **os.environ,
        "GRU_LAB_CORPUS": str(corpus_path),
        "GRU_LAB_RUNS_DB": str(runs_db),
        # the checkout under test, whatever the editable install points at
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    with stderr_log.open("wb") as err:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_healthy(f"{base}/_stcore/health", proc, stderr_log, SERVER_START_S)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


# -- the browser -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium); "
            "the e2e tests never download a browser (do not run `playwright install`)"
        )
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item, so a fixture can tell that its test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def lab(browser: Browser, app_url: str, request: pytest.FixtureRequest) -> Iterator[GruLab]:
    """A fresh browser context and page (so a fresh Streamlit session) for one test."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    gru = GruLab(page, app_url)
    try:
        yield gru
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            failures = ARTIFACTS / "failures"
            failures.mkdir(parents=True, exist_ok=True)
            try:
                page.screenshot(path=str(failures / f"{request.node.name}.png"), full_page=True)
            except Exception:  # a crashed page: the test's own error says more
                pass
        gru.stop_training()  # free the CPU (and the job slot) for the next test
        context.close()


# -- the page object -------------------------------------------------------------------------
class GruLab:
    """What a learner sees and does on the GRU Lab page, as Playwright calls."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    # navigation and waiting
    def open(self, query: str = "") -> None:
        """Open ``/?query`` and wait until the page has rendered its run controls."""
        self.page.goto(f"{self.base_url}/{'?' + query if query else ''}")
        start = self.page.get_by_role("button", name=re.compile(r"^(Start|Restart)$"))
        expect(start).to_be_visible(timeout=PAGE_LOAD_MS)
        expect(self.page.get_by_text("Corpus:")).to_be_visible(timeout=PAGE_LOAD_MS)

    def wait_until(
        self,
        read: Callable[[], T],
        done: Callable[[T], bool],
        timeout_s: float,
        what: str,
        poll_ms: int = 250,
    ) -> T:
        """Poll ``read()`` (a look at the page) until ``done(value)``; fail saying ``what``."""
        deadline = time.monotonic() + timeout_s
        value = read()
        while not done(value):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}; saw {value!r}")
            self.page.wait_for_timeout(poll_ms)
            value = read()
        return value

    # widgets
    def button(self, name: str) -> Locator:
        return self.page.get_by_role("button", name=name, exact=True)

    def press(self, name: str) -> None:
        button = self.button(name)
        expect(button).to_be_enabled()
        button.click()

    def slider(self, label: str) -> Locator:
        """The thumb (an ``input[type=range]``, role slider) of the slider labelled ``label``.

        The thumb's accessible name repeats the label ("Hidden size Hidden size"), so it is
        found inside the slider's group, which is named exactly by the label."""
        group = self.page.get_by_role("group", name=label, exact=True)
        return group.get_by_role("slider")

    def slider_value(self, label: str) -> str:
        return self.slider(label).get_attribute("aria-valuetext") or ""

    def query(self) -> dict[str, str]:
        """The URL's settings (without ``bench``, this browser's saved-runs token)."""
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.page.url).query).items()}
        query.pop("bench", None)
        return query

    def wait_for_query(self, wanted: dict[str, str], exact: bool = False) -> None:
        """Wait until the URL holds ``wanted`` (the app syncs it at the end of each full
        rerun, so this also says that the rerun after a widget change has finished)."""
        self.wait_until(
            self.query,
            lambda q: q == wanted if exact else wanted.items() <= q.items(),
            20,
            f"the URL to hold {wanted}",
        )

    def choose_lesson(self, name: str) -> None:
        """Pick a lesson and wait until its rerun has put the lesson's values in the URL, so
        that what the test does next acts on the lesson's widgets (a click on the old ones
        in that moment is dropped; see test_lessons)."""
        box = self.page.get_by_role("combobox", name="Lesson preset")
        box.click()
        self.page.get_by_role("option", name=name, exact=True).click()
        expect(box).to_have_value(name)
        self.wait_for_query(to_query(lesson_values(name)), exact=True)

    def set_number(self, label: str, param: str, value: int) -> None:
        """Type ``value`` into the number input ``label`` (URL parameter ``param``)."""
        field = self.page.locator('[data-testid="stNumberInput"]').filter(
            has=self.page.get_by_text(label, exact=True)
        )
        box = field.locator("input")
        box.fill(str(value))
        box.press("Enter")
        expect(box).to_have_value(str(value))
        self.wait_for_query({param: str(value)})

    def choose_view(self, name: str) -> None:
        views = self.page.locator('[data-testid="stButtonGroup"]')
        option = views.get_by_role("radio", name=name, exact=True)
        option.click()
        expect(option).to_have_attribute("aria-checked", "true")

    def settle(self, timeout_s: float = 10.0) -> bool:
        """Wait (best effort) for a moment with no stale elements, i.e. between two reruns, so
        the previous view's charts are gone. False if the live refresh never paused."""
        stale = self.page.locator('[data-stale="true"]')
        deadline = time.monotonic() + timeout_s
        while stale.count():
            if time.monotonic() > deadline:
                return False
            self.page.wait_for_timeout(100)
        return True

    # reading the page
    def metric_card(self, label: str) -> Locator:
        """The ``st.metric`` labelled exactly ``label`` ('Step', not 'Steps clipped')."""
        label_el = self.page.locator('[data-testid="stMetricLabel"]').get_by_text(label, exact=True)
        return self.page.locator('[data-testid="stMetric"]').filter(has=label_el)

    def metric(self, label: str) -> str:
        """The value shown by the metric labelled ``label`` (waits for it to be shown)."""
        value = self.metric_card(label).locator('[data-testid="stMetricValue"]')
        return value.inner_text().strip()

    def step(self) -> int:
        return int(self.metric("Step").replace(",", ""))

    def wait_for_step(self, at_least: int, timeout_s: float = 60.0) -> int:
        """Wait until the Step metric shows ``at_least`` (it is absent before a run starts)."""
        return self.wait_until(
            lambda: self.step() if self.metric_card("Step").count() else -1,
            lambda s: s >= at_least,
            timeout_s,
            f"the Step metric to reach {at_least}",
        )

    def plots(self) -> list[dict[str, Any]]:
        """Every plotly chart on the page: its title and its traces (name, type, n, y)."""
        return self.page.evaluate(_PLOTS_JS)

    def plot(self, title_start: str) -> dict[str, Any] | None:
        return next((p for p in self.plots() if p["title"].startswith(title_start)), None)

    def trace(self, title_start: str, name: str) -> dict[str, Any] | None:
        plot = self.plot(title_start)
        if plot is None:
            return None
        return next((t for t in plot["traces"] if t["name"] == name), None)

    def points(self, title_start: str) -> int:
        """Points in the fullest trace of the chart whose title starts with ``title_start``."""
        plot = self.plot(title_start)
        return max((t["n"] for t in plot["traces"]), default=0) if plot else 0

    def wait_for_points(self, title_start: str, timeout_s: float = 30.0) -> int:
        return self.wait_until(
            lambda: self.points(title_start),
            lambda n: n > 0,
            timeout_s,
            f"plotted data in the chart '{title_start}…'",
        )

    def wait_for_no_plot(self, title_start: str, timeout_s: float = 20.0) -> None:
        """Wait until no chart's title starts with ``title_start``. After a view switch the
        old view's charts stay on the page (faded) until the redraw of the new view has
        finished, which takes up to about a second while training competes for the CPU."""
        self.wait_until(
            lambda: [p["title"] for p in self.plots() if p["title"].startswith(title_start)],
            lambda titles: not titles,
            timeout_s,
            f"the charts '{title_start}…' to leave the page",
            poll_ms=100,
        )

    def exception_box(self) -> Locator:
        return self.page.locator('[data-testid="stException"]')

    def exceptions(self) -> int:
        return self.exception_box().count()

    def errors(self) -> list[str]:
        return self.page.locator('[data-testid="stAlertContentError"]').all_inner_texts()

    def screenshot(self, name: str) -> Path:
        self.settle()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def reset(self) -> None:
        """Stop and forget the current run, and wait until the page says nothing is training
        (so the next Start's Step metric cannot be confused with this run's)."""
        self.press("Reset")
        expect(self.page.get_by_text("Nothing is training")).to_be_visible()

    # clean-up
    def stop_training(self) -> None:
        """Press Stop if a job is active, so it does not keep the CPU busy (best effort)."""
        try:
            stop = self.button("Stop")
            if stop.count() and stop.is_enabled():
                stop.click()
                expect(stop).to_be_disabled(timeout=15_000)
        except Exception:  # the page may be gone already; the server stops the job later
            pass
