"""Load test: many browser sessions training at once against one local GRU Lab server.

    python benchmarks/load_test.py --sessions 20 [--corpus PATH] [--markdown OUT]

Starts ``streamlit run dashboard/app.py`` on a free loopback port, opens ``--sessions``
headless Chromium pages (Debian's /usr/bin/chromium; never ``playwright install``), and in
each one starts a small training run. While they train it measures:

- the health endpoint's latency (``/_stcore/health``, polled every 100 ms from a thread);
- a page rerun's latency: on one extra observer page, the time from clicking the Seed
  field's "+" to the page showing the new value (a full script rerun of that session);
- whether every session's job reaches 'done' (queued sessions included), and
- the server process's peak resident memory (VmHWM from /proc).

It prints a markdown table. Not part of the test suite: it takes a few minutes and loads
the machine on purpose. Traffic goes to 127.0.0.1 only; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TINY = "hidden=16&steps=10&batch=8&epochs=20"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class HealthProbe(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.latencies, self.failures = url, [], 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as r:
                    ok = r.read().strip() == b"ok"
            except OSError:
                ok = False
            if ok:
                self.latencies.append(time.perf_counter() - t0)
            else:
                self.failures += 1
            self.done.wait(0.1)


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]', has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text(timeout=5000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--corpus", default=str(REPO.parent / "shared/data/timemachine.txt"))
    parser.add_argument("--timeout", type=float, default=600, help="seconds for all to finish")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GRU_LAB_CLOSE_GRACE_S": "5"}
    if Path(args.corpus).exists():
        env["GRU_LAB_CORPUS"] = args.corpus
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless",
         "true", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(base + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        health = HealthProbe(base + "/_stcore/health")
        rerun_latencies: list[float] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            pages = []
            t_start = time.perf_counter()
            for _ in range(args.sessions):
                page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
                page.set_default_timeout(120_000)
                page.goto(f"{base}/?{TINY}")
                page.get_by_role("button", name="Start", exact=True).click(timeout=60_000)
                pages.append(page)
            health.start()
            for page in pages:  # the Text view draws no charts: keep the browser's share small
                views = page.locator('[data-testid="stButtonGroup"]')
                views.get_by_role("radio", name="Text", exact=True).click()  # page default
            observer = browser.new_context().new_page()
            observer.set_default_timeout(120_000)
            observer.goto(f"{base}/?{TINY}")
            seed = observer.locator('[data-testid="stNumberInput"]', has_text="Seed")
            seed.wait_for(timeout=60_000)
            finished: set[int] = set()
            deadline = time.time() + args.timeout
            while len(finished) < len(pages) and time.time() < deadline:
                before = seed.locator("input").input_value()
                t0 = time.perf_counter()
                seed.locator('[data-testid="stNumberInputStepUp"]').click()
                while seed.locator("input").input_value() == before:
                    if time.perf_counter() - t0 > 30:
                        break
                    time.sleep(0.01)
                rerun_latencies.append(time.perf_counter() - t0)
                for i, page in enumerate(pages):
                    if i not in finished and metric(page, "State") == "done":
                        finished.add(i)
                time.sleep(0.5)
            wall = time.perf_counter() - t_start
            health.done.set()
            states = [metric(p, "State") for p in pages]
            browser.close()
        peak = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    rows = [
        ("sessions", f"{args.sessions}"),
        ("jobs finished ('done')", f"{states.count('done')} / {len(states)}"),
        ("wall time until all finished", f"{wall:.1f} s"),
        ("health p50 / p95", f"{percentile(health.latencies, 50) * 1e3:.0f} ms / "
         f"{percentile(health.latencies, 95) * 1e3:.0f} ms ({len(health.latencies)} probes, "
         f"{health.failures} failed)"),
        ("page rerun p50 / p95", f"{percentile(rerun_latencies, 50) * 1e3:.0f} ms / "
         f"{percentile(rerun_latencies, 95) * 1e3:.0f} ms ({len(rerun_latencies)} reruns)"),
        ("server peak RSS", f"{peak:,.0f} MB"),
        ("machine", f"{os.cpu_count()} CPU cores"),
    ]  # fmt: skip
    table = "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    print(table)
    p95_ok = percentile(health.latencies, 95) < 1 and percentile(rerun_latencies, 95) < 1
    all_done = states.count("done") == len(states)
    print(f"target p95 < 1 s: {'PASS' if p95_ok else 'FAIL'}; all jobs finish: "
          f"{'PASS' if all_done else 'FAIL'}")  # fmt: skip
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0 if all_done else 1


if __name__ == "__main__":
    sys.exit(main())
