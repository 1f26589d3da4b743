"""Shared fixtures: the reference corpus from ../shared/data (never copied into the repo)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from gru_core.data import Corpus, corpus_from_text
from gru_core.sources import load_corpus

REPO = Path(__file__).resolve().parents[1]
TIME_MACHINE = REPO.parent / "shared" / "data" / "timemachine.txt"

# A few sentences of ordinary English, generated here, for tests that must not depend on
# the reference file.
_FILLER = (
    "the quick brown fox jumps over the lazy dog while the time traveller explains "
    "that any real body must have extension in four directions length breadth thickness "
    "and duration and we are always getting away from the present moment "
)


@pytest.fixture(scope="session")
def time_machine() -> Corpus:
    """The Time Machine through the project's corpus-path option; skip when absent."""
    if not TIME_MACHINE.exists():
        pytest.skip(f"reference corpus not found at {TIME_MACHINE}")
    return load_corpus(TIME_MACHINE)


@pytest.fixture(scope="session")
def small_corpus() -> Corpus:
    """About 20,000 characters of generated English: enough for tiny training runs."""
    return corpus_from_text(_FILLER * 100, "filler.txt")


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test starts without the caller's GRU_LAB_* variables (a user who exported
    GRU_LAB_CORPUS for the dashboard must not change what a test exercises)."""
    import os

    for name in [n for n in os.environ if n.startswith("GRU_LAB_")]:
        monkeypatch.delenv(name)
    # Saved runs go to a database of the test's own, never the user's cache.
    monkeypatch.setenv("GRU_LAB_RUNS_DB", str(tmp_path / "runs.sqlite3"))
    # The command lines speak English here whatever the caller's locale (LANG=zh_CN.UTF-8
    # would otherwise word their messages in Chinese: i18n.from_environment).
    monkeypatch.setenv("GRU_LAB_LANG", "en")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread per test. The tensors here are tiny, and on a busy 2-core machine
    a second OpenMP thread can make a tiny training step many times slower, not faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A corpus file path: The Time Machine when the reference file is there, else the
    generated English of ``small_corpus`` written to a temporary file."""
    if TIME_MACHINE.exists():
        return str(TIME_MACHINE)
    path = tmp_path_factory.mktemp("corpus") / "filler.txt"
    path.write_text(_FILLER * 100)
    return str(path)
