"""The Ray backend of a sweep: chunks as Ray tasks on one machine's cores or a cluster.

Ray is an optional extra (``pip install -r requirements-ray.txt``); it is imported only
here, only when the Ray backend is asked for, and a missing Ray is a ValueError saying how
to install it. ``connect`` joins the cluster at ``address`` (or ``RAY_ADDRESS``), or starts a
local Ray with ``num_cpus`` CPUs (all of them by default; at least 1), or reuses a Ray already
started in this process. Every node needs this project importable (installed, or started with
``PYTHONPATH`` pointing at the checkout), since a task imports ``gru_core``.

**Failing fast, with the reason.** Before ``ray.init`` a cluster address is probed with a plain
TCP connection (``PROBE_TIMEOUT_S``): an unreachable address is a ValueError naming it within
seconds (``ray.init`` itself retries a silent address for many minutes). Ray's own connection
retries are bounded to ``CONNECT_WAIT_S`` (``RAY_gcs_server_port_wait_time_s``, unless set).
Ray 2.60 turns token authentication on by default (``ray start --head`` says so): a cluster
started that way refuses a process without its token (``InvalidAuthToken``), and the error
then says so and what to set: ``RAY_AUTH_MODE=token`` with ``RAY_AUTH_TOKEN`` (or
``RAY_AUTH_TOKEN_PATH``) where the sweep runs, or ``RAY_AUTH_MODE=disabled`` on every node and
here (README, "Beyond one machine").

``SweepJob`` plans a Ray sweep so that each group is cut into about as many chunks as the
cluster has CPUs (each chunk one StepCore, one task, one CPU, one torch thread).
``run_on_ray`` puts the training and validation slices into Ray's object store once, keeps at
most that many tasks in flight, and collects results as each finishes (a ``ray.wait`` loop),
storing them in the job. Results equal the local backend's: a chunk is the same computation
whatever its size (members are independent; ``tests/test_sweep_ray.py`` holds them equal).

**A lost node.** A task whose worker or node dies (``NodeDiedError``, ``WorkerCrashedError``)
is resubmitted by Ray on the nodes left, up to ``MAX_RETRIES`` times (a chunk is a pure
function of its arguments, so a rerun computes the same cells); after that its cells end
'error' with the reason. An exception raised by the chunk itself is not retried (it would
raise again). ``tests/test_ray_cluster.py`` kills a node of a real two-node cluster mid-map.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from types import ModuleType

from gru_core.i18n import N_, _
from gru_core.sweep.chunk import SweepControl, run_chunk_task
from gru_core.sweep.results import RUNNING, pending_result

INSTALL_HINT = "pip install -r requirements-ray.txt"
ADDRESS_ENV = "RAY_ADDRESS"
POLL_S = 0.5  # how often the loop looks at pause and stop while tasks run
PROBE_TIMEOUT_S = 5.0  # seconds a cluster address has to accept a TCP connection
WAIT_ENV = "RAY_gcs_server_port_wait_time_s"  # Ray's own connection retries, in seconds
CONNECT_WAIT_S = "10"  # ... when this process joins a cluster and the variable is not set
MAX_RETRIES = 3  # reruns of a chunk whose worker or node died, on the nodes left
AUTH_HINT = N_(
    "Ray 2.60 turns token authentication on by default and this process has no token for "
    "the cluster: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (the head's ~/.ray/auth_token) "
    "or RAY_AUTH_TOKEN_PATH here, or start every node and this process with "
    "RAY_AUTH_MODE=disabled (README, 'Beyond one machine')"
)


def ray_module() -> ModuleType:
    """``import ray``, or a ValueError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(
            _("the Ray backend needs Ray, which is not installed: {hint}").format(hint=INSTALL_HINT)
        ) from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> int:
    """Make sure this process is connected to Ray (module docstring); the cluster's CPUs."""
    if num_cpus is not None and (not isinstance(num_cpus, int) or num_cpus < 1):
        raise ValueError(
            _("num_cpus={value!r}: a local Ray needs at least 1 CPU").format(value=num_cpus)
        )
    ray = ray_module()
    if not ray.is_initialized():
        address = address or os.environ.get(ADDRESS_ENV) or None
        bounded = bool(address) and WAIT_ENV not in os.environ
        if address:
            probe(address)
            os.environ.setdefault(WAIT_ENV, CONNECT_WAIT_S)
        try:
            if address:
                ray.init(address=address, logging_level="ERROR")
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR")
        except Exception as exc:  # ConnectionError, a bad address, a port in use, ...
            raise ValueError(init_failure(address, exc)) from None
        finally:
            if bounded:
                os.environ.pop(WAIT_ENV, None)
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def probe(address: str) -> None:
    """A ValueError naming ``address`` unless something accepts a TCP connection there
    within ``PROBE_TIMEOUT_S`` ('auto' and addresses without a port are left to Ray)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), PROBE_TIMEOUT_S).close()
    except OSError as err:
        why = _("no answer") if isinstance(err, TimeoutError) else err.strerror or str(err)
        raise ValueError(
            _(
                "could not reach Ray at {address}: {why} (within {seconds:g} s). Is a "
                "cluster running there (ray start --head --port {port})?"
            ).format(address=address, why=why, seconds=PROBE_TIMEOUT_S, port=port)
        ) from None


def init_failure(address: str | None, exc: BaseException) -> str:
    """Why ``ray.init`` failed, in words: authentication when that is the reason."""
    where = address or ""
    chain, cause = [], exc
    while cause is not None and len(chain) < 5:
        chain.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = " ".join(chain)
    if "InvalidAuthToken" in text or "AuthenticationError" in text:
        if where:
            return _(
                "could not connect to Ray at {address}: authentication failed. {hint}."
            ).format(address=where, hint=_(AUTH_HINT))
        return _("could not connect to Ray: authentication failed. {hint}.").format(
            hint=_(AUTH_HINT)
        )
    if address:
        return _(
            "could not reach Ray at {address}: {why} (something answers there, but no Ray "
            "head that accepts this process: is `ray start --head` running at that address?)"
        ).format(address=address, why=exc)
    return _("could not start Ray: {why}").format(why=exc)


def run_on_ray(job: SweepControl) -> None:
    """Run ``job``'s chunks as Ray tasks, at most one per cluster CPU in flight, storing each
    chunk's results as it returns."""
    ray = ray_module()
    spec, cpus = job.spec, job.cluster_cpus or 1
    chunks = deque(job.plan.chunks)
    # Ray reruns a chunk whose worker or node died (not one that raised), on the nodes left.
    task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(run_chunk_task)
    train, val = ray.put(job.train.cpu()), ray.put(job.val.cpu())
    args = (train, val, job.vocab_size, spec.target_perplexity, spec.eval_every)
    in_flight: dict = {}
    while chunks or in_flight:
        if job.stopping():
            for ref in in_flight:
                ray.cancel(ref, force=True)
            return
        while chunks and len(in_flight) < cpus and not job.paused():
            chunk = chunks.popleft()
            job.store([pending_result(c, RUNNING) for c in chunk])
            in_flight[task.remote(chunk, *args)] = chunk
        if not in_flight:
            job.wait()  # paused with nothing running: sleep until resumed or stopped
            continue
        done, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
        for ref in done:
            chunk = in_flight.pop(ref)
            try:
                job.store(ray.get(ref))
            except Exception as exc:  # the task raised, or its worker died
                job.fail(chunk, exc)
