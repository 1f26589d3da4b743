"""A real two-node Ray cluster on loopback, started the README's way, driven by the sweep CLI.

The fixture runs ``ray start --head --port P --num-cpus 1`` and ``ray start --address
127.0.0.1:P --num-cpus 1`` (each ``--block``, in its own process session, so the test stops
exactly the processes it started and never touches another Ray on this machine), with token
authentication as Ray 2.60 has it by default: ``RAY_AUTH_MODE=token`` and a fresh
``RAY_AUTH_TOKEN`` on both nodes and where the sweep runs, ``HOME`` a private folder (no
``~/.ray/auth_token`` read or written), every port its own, the checkout on ``PYTHONPATH``.

Then: a 2 x 2 map on the cluster equals the in-process map; Ctrl-C stops a sweep on it (exit
130, cells 'stopped'); a process without the token is told about authentication; an
unreachable address fails fast naming it; and, last, the worker node is killed mid-map and
the map still completes (its chunk rerun on the head).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from gru_core.cli import EXIT_BAD_ARGS, EXIT_DONE, EXIT_INTERRUPTED
from gru_core.sweep.cli import main as sweep_main
from tests.clirun import Cli, cli_env

pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")

RAY = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` command of this Python
START_S = 180  # a node's start on a loaded 2-core machine
TINY = ["--hidden-size", "16", "--num-steps", "10", "--batch-size", "4", "--max-tokens", "2000",
        "--val-tokens", "500", "--device", "cpu"]  # fmt: skip
MAP = ["--x", "init_std=0.01,0.5", "--y", "clip_threshold=1,off"]
NUMBERS = ["final_train_perplexity", "best_train_perplexity", "final_val_perplexity",
           "best_val_perplexity", "max_grad_norm", "clipped_share"]  # fmt: skip


NODE_PORTS = 6  # the flags node_ports sets


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` free ports, all different: each socket stays bound until all are chosen
    (one port at a time, the system may hand the same one out twice: Ray then refuses to
    start, "trying to use a port number ... used by other components")."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def node_ports(ports: list[int]) -> list[str]:
    """Every port a node opens besides the head's GCS port, from ``ports`` (free ones)."""
    flags = (
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    )
    return [x for flag, port in zip(flags, ports, strict=True) for x in (flag, str(port))]


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    worker: subprocess.Popen

    def sweep(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> Cli:
        return Cli(tmp, "gru_core.sweep", "--backend", "ray", "--ray-address", self.address,
                   *args, env=env or self.env)  # fmt: skip


def node_processes(node: subprocess.Popen) -> dict[int, bytes]:
    """Every process of a node started by ``start_node`` -> its title: its process group (the
    blocking ``ray start``, the raylet, the agents) and their children (Ray's workers, which
    each get a process group of their own)."""
    procs: dict[int, tuple[int, int, bytes]] = {}  # pid -> (ppid, pgid, title)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            title = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        ppid, pgid = map(int, stat.rsplit(")", 1)[1].split()[1:3])  # "state ppid pgrp ..."
        procs[int(proc.name)] = (ppid, pgid, title)
    group = {pid for pid, (_, pgid, _) in procs.items() if pgid == node.pid}
    return {pid: t for pid, (ppid, _, t) in procs.items() if pid in group or ppid in group}


def running_chunks(node: subprocess.Popen) -> int:
    """Workers of ``node`` running a chunk: Ray titles one ``ray::run_chunk_task`` meanwhile."""
    return sum(t.startswith(b"ray::run_chunk_task") for t in node_processes(node).values())


def start_node(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``ray start ... --block`` in a new session; returns once it says it started."""
    with log.open("w") as out:
        proc = subprocess.Popen([*RAY, "start", *args, "--block"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + START_S
    while "Ray runtime started" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            kill_node(proc)
            raise AssertionError(f"ray start failed:\n{log.read_text()}")
        time.sleep(0.2)
    return proc


def kill_node(node: subprocess.Popen) -> None:
    """Kill one node at once, as a machine lost: every process ``node_processes`` finds.
    (Nothing to save in a test cluster, and ``ray start --block`` ignores a plain SIGTERM.)"""
    deadline = time.monotonic() + 30
    while (procs := node_processes(node)) and time.monotonic() < deadline:
        for pid in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.wait(5)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Short: a node's Unix sockets live under its --temp-dir, and their paths must fit 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="gru-ray-"))
    try:
        yield from _cluster(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cluster(tmp: Path) -> Iterator[Cluster]:
    (tmp / "home").mkdir()
    env = cli_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
                  HOME=str(tmp / "home"), RAY_USAGE_STATS_ENABLED="0")  # fmt: skip
    port, dashboard, *ports = free_ports(2 + 2 * NODE_PORTS)  # all of the cluster's, all different
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    head_args = ["--head", "--port", str(port), "--include-dashboard", "false",
                 "--dashboard-port", str(dashboard), "--temp-dir", str(tmp / "head")]  # fmt: skip
    head = start_node([*head_args, *common, *node_ports(ports[:NODE_PORTS])], env, tmp / "head.log")
    try:
        worker_args = ["--address", f"127.0.0.1:{port}", "--temp-dir", str(tmp / "worker")]
        worker_ports = node_ports(ports[NODE_PORTS:])
        worker = start_node([*worker_args, *common, *worker_ports], env, tmp / "worker.log")
        try:
            yield Cluster(f"127.0.0.1:{port}", env, worker)
        finally:
            kill_node(worker)
    finally:
        kill_node(head)


def in_process_map(corpus_path: str, tmp: Path, *args: str) -> pd.DataFrame:
    """The same map through the local backend (``sweep_main`` in this process)."""
    path = tmp / "here.csv"
    code = sweep_main(["--corpus", corpus_path, *args, "--backend", "local", "--csv", str(path)])
    assert code == EXIT_DONE
    return pd.read_csv(path)


def test_a_map_on_two_nodes_equals_the_in_process_map(
    cluster: Cluster, corpus_path: str, tmp_path: Path
) -> None:
    args = [*TINY, *MAP, "--num-epochs", "2"]
    cli = cluster.sweep(tmp_path, "--corpus", corpus_path, *args, "--csv", str(tmp_path / "a.csv"))
    assert cli.finish() == EXIT_DONE, cli.out + cli.err
    assert "(ray, 2 CPUs)" in cli.out  # both nodes joined
    there = pd.read_csv(tmp_path / "a.csv")
    here = in_process_map(corpus_path, tmp_path, *args)
    keys = ["model", "init_std", "clip_threshold", "seed", "status", "verdict", "diverged_step"]
    assert there[keys].astype(str).equals(here[keys].astype(str))
    assert there[NUMBERS].to_numpy() == pytest.approx(here[NUMBERS].to_numpy(), rel=1e-6,
                                                      nan_ok=True)  # fmt: skip


def test_ctrl_c_stops_a_sweep_on_the_cluster(
    cluster: Cluster, corpus_path: str, tmp_path: Path
) -> None:
    out_csv = tmp_path / "map.csv"
    cli = cluster.sweep(tmp_path, "--corpus", corpus_path, *TINY, *MAP, "--num-epochs", "500",
                        "--csv", str(out_csv))  # fmt: skip
    cli.wait_for("0/4 runs finished")  # the tasks are submitted
    cli.interrupt()
    code = cli.finish()
    assert code == EXIT_INTERRUPTED, cli.out + cli.err
    assert "Traceback" not in cli.out + cli.err
    assert set(pd.read_csv(out_csv)["status"]) == {"stopped"}


def test_a_process_without_the_token_is_told_about_authentication(
    cluster: Cluster, corpus_path: str, tmp_path: Path
) -> None:
    (tmp_path / "home").mkdir()
    env = {k: v for k, v in cluster.env.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path / "home")  # no ~/.ray/auth_token either
    cli = cluster.sweep(tmp_path, "--corpus", corpus_path, *TINY, *MAP, env=env)
    assert cli.finish() == EXIT_BAD_ARGS
    assert "authentication" in cli.err and "RAY_AUTH_MODE" in cli.err, cli.err
    assert cluster.address in cli.err


def test_an_unreachable_address_fails_at_once_naming_it(corpus_path: str, tmp_path: Path) -> None:
    """Nothing listens on the port: refused by the probe, before Ray waits for minutes."""
    address = f"127.0.0.1:{free_port()}"
    cli = Cli(tmp_path, "gru_core.sweep", "--corpus", corpus_path, *TINY, *MAP,
              "--backend", "ray", "--ray-address", address)  # fmt: skip
    assert cli.finish(timeout=120) == EXIT_BAD_ARGS
    assert f"could not reach Ray at {address}" in cli.err


def test_a_lost_node_s_cells_are_rerun_and_the_map_completes(
    cluster: Cluster, corpus_path: str, tmp_path: Path
) -> None:
    """Last in this file: it kills the worker node. Two chunks run, one per node; the
    worker's dies with its node and Ray reruns it on the head."""
    out_csv = tmp_path / "map.csv"
    cli = cluster.sweep(tmp_path, "--corpus", corpus_path, *TINY, *MAP, "--num-epochs", "12",
                        "--csv", str(out_csv))  # fmt: skip
    cli.wait_until(lambda: running_chunks(cluster.worker) > 0)  # a chunk runs on the worker
    kill_node(cluster.worker)
    assert cli.finish() == EXIT_DONE, cli.out + cli.err
    rows = pd.read_csv(out_csv)
    assert len(rows) == 4 and set(rows["status"]) <= {"done", "diverged"}, rows
