"""A Streamlit server on a free port for the length of a ``with`` block: the benchmarks that
drive a page through Chromium (``investigation_walk.py``, ``chart_mount.py``) start theirs here.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from load_test import free_port

START_S = 90.0  # the first page of a session imports torch and reads the corpus


@contextlib.contextmanager
def streamlit_server(
    app: str | Path, cwd: Path, env: Mapping[str, str], stderr_path: Path
) -> Iterator[str]:
    """``streamlit run app`` (headless, no file watcher, no usage stats) with ``env``; yields
    its base URL once ``/_stcore/health`` answers ok, and stops it when the block ends."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
             "--server.port", str(port), "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + START_S
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start; see {stderr_path}")
                try:
                    with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                        if r.read().strip() == b"ok":
                            break
                except OSError:
                    time.sleep(0.3)  # polling a subprocess's health endpoint
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
