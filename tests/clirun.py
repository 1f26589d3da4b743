"""Run a command line of this checkout as a subprocess and interrupt it like a terminal does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 240  # generous: the CI machine has 2 cores and other tests beside


def cli_env(**extra: str) -> dict[str, str]:
    """The environment without the caller's GRU_LAB_* variables, importing this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRU_LAB_")}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", GRU_LAB_LANG="en")
    env.update(extra)  # English unless a test asks for another language
    return env


class Cli:
    """``python -m <module> <args>`` started in the background, its output in files."""

    def __init__(self, tmp: Path, module: str, *args: str, env: dict[str, str] | None = None):
        self.out_path, self.err_path = tmp / f"{module}.out", tmp / f"{module}.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=REPO,
                env=env or cli_env(),
                stdout=out,
                stderr=err,
            )

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def wait_for(self, text: str, timeout: float = START_TIMEOUT_S) -> None:
        """Block until ``text`` is in the output (an AssertionError if it exits or times out)."""
        self.wait_until(lambda: text in self.out, timeout, repr(text))

    def wait_until(
        self, ready: Callable[[], bool], timeout: float = START_TIMEOUT_S, what: str = "it"
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode}: {self.out}\n{self.err}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"{what} never came: {self.out}\n{self.err}")
            time.sleep(0.1)

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends

    def finish(self, timeout: float = START_TIMEOUT_S) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"did not end: {self.out}\n{self.err}") from None
