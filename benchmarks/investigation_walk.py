"""How long a student takes to walk each investigation, in headless Chromium against one local
server (issue 19's target: each under 10 minutes on the 2-core CPU at the book's size, the maps
included).

For each investigation (``--only clip,init,bptt,half``), a fresh browser context (a new
student, a new bench) at 1400 x 900 does what a student does, through the walks the e2e test
runs (``walks.py``): reads the step, clicks its one-click settings button, clicks Start on the
lab or the map, waits on what the page shows (the run saved, the map finished, the step marked
done), opens the view the step names, comes back, writes a short answer in the last step and
moves on. The clock runs from opening the investigations page to reading what the data says;
no time is allowed for reading (add it when comparing with a class). It prints a line per step
as it goes (step, seconds, cumulative), then a table: investigation, minutes, pass/fail against
10 minutes, with the load average at the start and the end.

``--scale full`` is the catalogue's normal scale (hidden 256: the target's); ``--scale small``
sets ``GRU_LAB_INVESTIGATE_SCALE=small`` (hidden 16, an epoch or a few: a few minutes for all
four, to check the walk itself). Each investigation stops by itself after ``--timeout``
seconds (it then fails, and the next one starts in a new context).

Usage: ``python benchmarks/investigation_walk.py --scale small``
``python benchmarks/investigation_walk.py --scale full --only init --timeout 900``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from load_test import CHROMIUM, FLAGS, log
from playwright.sync_api import Browser, Page, sync_playwright
from serve import streamlit_server
from walks import TITLES, WALKS, Walk

from dashboard.investigate.catalogue import SCALE_ENV, Scale

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / "timemachine.txt"
VIEWPORT = {"width": 1400, "height": 900}
TARGET_MIN = 10.0  # each investigation, for a student who has never seen the app
SERVER_START_S = 90.0


class WalkTimeoutError(Exception):
    """An investigation ran past ``--timeout``."""


@contextlib.contextmanager
def server(corpus: Path, small: bool, logdir: Path) -> Iterator[str]:
    """The dashboard on a free port, with its own runs database, for the block."""
    env = {**os.environ, "GRU_LAB_RUNS_DB": str(logdir / "runs.sqlite3"), "PYTHONPATH": str(REPO)}
    env.pop(SCALE_ENV, None)
    if small:
        env[SCALE_ENV] = "small"
    if corpus.exists():
        env["GRU_LAB_CORPUS"] = str(corpus)
    stderr = logdir / "streamlit-stderr.log"
    with streamlit_server("dashboard/app.py", REPO, env, stderr) as base:
        log(f"server up on {base} (stderr in {stderr})")
        yield base


def _expired(signum: int, frame: FrameType | None) -> None:
    raise WalkTimeoutError


def _screenshot(page: Page, key: str) -> None:
    """What the student saw when the walk stopped, kept for a look."""
    with contextlib.suppress(Exception):  # a page stopped mid-wait may be gone already
        shot = Path(tempfile.gettempdir()) / f"investigation-walk-{key}.png"
        page.screenshot(path=str(shot), full_page=True, timeout=10_000)
        log(f"{key}: the page then: {shot}")


def walk_one(browser: Browser, base: str, key: str, scale: Scale, timeout_s: int) -> float | None:
    """Walk ``key`` in a new context; its seconds, or None when it failed or timed out."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    started = last = time.monotonic()

    def lap(label: str) -> None:
        nonlocal last
        now = time.monotonic()
        print(f"  {label:<12} {now - last:7.1f} s   cumulative {now - started:7.1f} s", flush=True)
        last = now

    log(f"{key}: {TITLES[key]}")
    signal.signal(signal.SIGALRM, _expired)
    signal.alarm(timeout_s)
    try:
        WALKS[key](Walk(page, base, scale, timeout_s, lap))
        return time.monotonic() - started
    except WalkTimeoutError:
        log(f"{key}: stopped after --timeout {timeout_s} s")
        _screenshot(page, key)
    except Exception as exc:  # a failed wait: report it and go on with the next one
        lines = str(exc).splitlines()
        waiting = next((line.strip() for line in lines if "waiting for" in line), "")
        log(f"{key}: failed after {time.monotonic() - started:.0f} s: {lines[0]} {waiting}")
        _screenshot(page, key)
    finally:
        signal.alarm(0)
        with contextlib.suppress(Exception):  # a page stopped mid-wait may be gone already
            context.close()
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    scales = "full: hidden 256, the target's; small: hidden 16 (default full)"
    parser.add_argument("--scale", choices=("full", "small"), default="full", help=scales)
    parser.add_argument("--only", default=",".join(WALKS), help="investigations, comma-separated")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per investigation")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = sorted(set(keys) - set(WALKS))
    if unknown:
        parser.error(f"--only: unknown {unknown}; choose from {', '.join(WALKS)}")
    small = args.scale == "small"
    scale = Scale.small() if small else Scale()
    load_start = os.getloadavg()
    log(f"scale {args.scale} (hidden {scale.hidden}); load average {load_start[0]:.2f}")
    times: dict[str, float | None] = {}
    with (
        tempfile.TemporaryDirectory(prefix="gru-lab-walk-") as tmp,
        server(args.corpus, small, Path(tmp)) as base,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            for key in keys:
                times[key] = walk_one(browser, base, key, scale, args.timeout)
        finally:
            browser.close()
    load_end = os.getloadavg()
    print(f"\n| investigation | minutes | under {TARGET_MIN:.0f} min |\n|---|---|---|")
    for key, seconds in times.items():
        minutes = "-" if seconds is None else f"{seconds / 60:.1f}"
        ok = seconds is not None and seconds / 60 < TARGET_MIN
        print(f"| {key} | {minutes} | {'pass' if ok else 'FAIL'} |")
    print(
        f"\nscale {args.scale} (hidden {scale.hidden}); load average (1 min) "
        f"{load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end; {os.cpu_count()} CPUs"
    )
    passed = all(t is not None and t / 60 < TARGET_MIN for t in times.values())
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
