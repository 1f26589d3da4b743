"""The Ray backend: a 2 x 2 map on a local Ray with 2 CPUs equals the in-process map.

Ray starts once for this module (and only here) and shuts down at its end; without Ray
installed the module is skipped (``pip install -r requirements-ray.txt``).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator

import pytest

from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.sweep.job import SweepJob
from gru_core.sweep.results import CellResult
from gru_core.sweep.spec import SweepSpec

from helpers import fake_theory

ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")

BASE = TrainConfig(hidden_size=16, num_steps=10, batch_size=4, max_tokens=2000,
                   val_tokens=500, num_epochs=2, device="cpu")  # fmt: skip


@pytest.fixture(autouse=True)
def quick_theory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The maps here draw their theory from a quick stand-in (helpers.fake_theory)."""
    monkeypatch.setitem(sys.modules, "gru_core.theory", fake_theory([]))


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def numbers(r: CellResult) -> tuple:
    return (r.final_train_perplexity, r.best_train_perplexity, r.final_val_perplexity,
            r.best_val_perplexity, r.max_grad_norm, r.clipped_share)  # fmt: skip


def test_a_map_on_ray_equals_the_in_process_map(local_ray: None, small_corpus: Corpus) -> None:
    spec = SweepSpec("init_std", (0.01, 0.5), "clip_threshold", (1.0, None), BASE)
    here = SweepJob(spec, small_corpus, device="cpu").run_sync()
    job = SweepJob(dataclasses.replace(spec, backend="ray"), small_corpus, device="cpu")
    assert job.cluster_cpus == 2
    there = job.run_sync()
    assert there.state == here.state == "done"
    assert there.finished == there.total == 4
    for a, b in zip(there.results, here.results, strict=True):
        assert (a.key, a.status, a.verdict, a.steps, a.epochs, a.diverged_step) == (
            b.key, b.status, b.verdict, b.steps, b.epochs, b.diverged_step,
        )  # fmt: skip
        assert numbers(a) == pytest.approx(numbers(b), rel=1e-6)
        assert a.curve_perplexity == pytest.approx(b.curve_perplexity, rel=1e-6)
