"""The Ray backend: a 2 x 2 map on a local Ray with 2 CPUs equals the in-process map; a map
stopped while its theory runs ends the theory first, on either backend (no thread of the job
left to abort the process at exit); ``--num-cpus`` is validated and a bad cluster address
fails fast, naming it (the real two-node cluster is ``test_ray_cluster.py``).

Ray starts once for this module (and only here) and shuts down at its end; without Ray
installed the module is skipped (``pip install -r requirements-ray.txt``).
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.sweep.cli import main as sweep_main
from gru_core.sweep.job import SweepJob
from gru_core.sweep.ray_backend import connect, probe
from gru_core.sweep.results import CellResult
from gru_core.sweep.spec import SweepSpec
from tests.clirun import REPO, cli_env

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


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_stopped_map_ends_its_theory_before_the_job_ends(
    backend: str, request: pytest.FixtureRequest, small_corpus: Corpus,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Stop (Ctrl-C) while the first λ is computed: the job stays alive until that λ returns,
    starts no other λ or edge, keeps that λ, and then ends with no theory thread left (one
    left in torch used to abort the command line at exit: 'terminate called', exit -6)."""
    if backend == "ray":
        request.getfixturevalue("local_ray")
    entered, release = threading.Event(), threading.Event()
    calls: list[tuple] = []
    slow = fake_theory(calls)
    quick = slow.lyapunov_exponent

    def lyapunov_exponent(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        entered.set()
        assert release.wait(60), "the test never released the theory"
        return quick(*args, **kwargs)

    slow.lyapunov_exponent = lyapunov_exponent  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gru_core.theory", slow)
    spec = SweepSpec("init_std", (0.01, 0.5), "clip_threshold", (1.0, None),
                     BASE.replace(num_epochs=500), backend=backend)  # fmt: skip
    job = SweepJob(spec, small_corpus, device="cpu")
    job.start()
    assert entered.wait(60), "the theory never started"
    job.stop(wait=False)
    job.join(1.0)
    assert job.alive  # waiting for its theory, which holds the first λ
    release.set()
    job.join(60)
    assert not job.alive
    assert not [t for t in threading.enumerate() if t.name == "gru-sweep-theory"]
    assert [c[0] for c in calls] == ["lambda"]  # nothing started after the stop
    snap = job.snapshot()
    assert snap.state == "stopped" and not snap.edges
    first = spec.cells()[0].config.init_std
    assert {r.init_std for r in snap.results if r.lyapunov is not None} == {first}


def test_num_cpus_must_be_at_least_one(capsys: pytest.CaptureFixture[str]) -> None:
    """``--num-cpus 0`` used to start a Ray that never ran a task, and the sweep hung."""
    with pytest.raises(ValueError, match="num_cpus=0"):
        connect(num_cpus=0)
    with pytest.raises(SystemExit) as info:
        sweep_main(["--x", "lr=0.1,1", "--y", "init_std=0.01,0.1", "--backend", "ray",
                    "--num-cpus", "0"])  # fmt: skip
    assert info.value.code == 2
    assert "--num-cpus" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["127.0.0.1:{free}", "no-such-host.invalid:6379"])
def test_an_address_where_nothing_answers_is_refused_at_once(address: str) -> None:
    """Refused or unknown: the probe says so before ray.init would retry it for minutes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = address.format(free=s.getsockname()[1])  # nothing listens there once closed
    with pytest.raises(ValueError, match=f"could not reach Ray at {address}"):
        probe(address)


def test_an_address_that_is_not_a_ray_cluster_fails_within_seconds(corpus_path: str) -> None:
    """An address that accepts TCP but is no Ray head (here any address a proxy answers, or a
    black hole the probe gives up on): exit 2 naming it, Ray's retries bounded to seconds.
    The subprocess timeout only guards against the old 10-minute hang."""
    address = "10.255.255.1:6379"
    result = subprocess.run(
        [sys.executable, "-m", "gru_core.sweep", "--corpus", corpus_path, "--num-epochs", "1",
         "--x", "lr=0.1,1", "--y", "init_std=0.01,0.1", "--backend", "ray",
         "--ray-address", address],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"Ray at {address}" in result.stderr
