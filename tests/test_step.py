"""The K-axis step core: K = 1 equals the reference step, members equal their single runs,
the divergence guard, one-position gradient flows, and generators per configuration."""

from __future__ import annotations

import ast
import copy
import math
import random
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from gru_core.config import TrainConfig
from gru_core.data import Corpus, batch_iterator, split_train_val
from gru_core.model.cells import GRUScratch, RecurrentLM, build_model
from gru_core.model.gates import GATES
from gru_core.run.records import PERCENTILES, StepRecord
from gru_core.run.trainer import Trainer
from gru_core.step import backward as step_backward
from gru_core.step import bptt as step_bptt
from gru_core.step import fused
from gru_core.step import lstm as step_lstm
from gru_core.step.core import StepCore
from gru_core.step.forward import Workspace

from helpers import HALF_KINDS, reference_model
from helpers import KINDS as HELPER_KINDS

GRU_CORE = Path(__file__).resolve().parents[1] / "gru_core"
SMALL = {
    "hidden_size": 16,
    "num_steps": 8,
    "batch_size": 4,
    "max_tokens": 2000,
    "val_tokens": 200,
    "num_epochs": 1,
    "init_std": 0.3,
    "flow_every": 3,
    "device": "cpu",
}
KINDS = {
    "gru-d2l": {"model": "gru", "gru_variant": "d2l"},
    "gru-cudnn": {"model": "gru", "gru_variant": "cudnn"},
    "rnn": {"model": "rnn"},
    # half a GRU (d2l's exercise 4), one per convention here; tests/test_half_gru.py has all
    "gru_reset_only-d2l": {"model": "gru_reset_only", "gru_variant": "d2l"},
    "gru_update_only-cudnn": {"model": "gru_update_only", "gru_variant": "cudnn"},
}
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def batches(config: TrainConfig, corpus: Corpus) -> list[tuple[Tensor, Tensor]]:
    """The first epoch's minibatches, as the trainer draws them (Random(seed))."""
    train, _ = split_train_val(corpus.tokens, config.max_tokens, config.val_tokens)
    it = batch_iterator(
        train, config.batch_size, config.num_steps, config.sampling, random.Random(config.seed)
    )
    return list(it)


def reference_step(
    model: RecurrentLM, X: Tensor, Y: Tensor, state: tuple[Tensor, ...], config: TrainConfig
) -> dict[str, object]:
    """The old Trainer.train_step written out: autograd gradients, float64 global norm,
    ``g <- g * theta / ||g||`` when ``||g|| > theta``, ``W <- W - lr * g``."""
    res = fused.autograd_loss_and_grads(model, X, Y, state, want_flow=True)
    norms = {n: float(g.double().norm()) for n, g in res.grads.items()}
    grad_norm = math.sqrt(sum(v * v for v in norms.values()))
    theta, lr = config.clip_threshold, config.lr
    clipped = theta is not None and grad_norm > theta
    scale = theta / grad_norm if clipped else 1.0
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(res.grads[name], alpha=-lr * scale)
        weight_norm = math.sqrt(sum(float(p.double().square().sum()) for p in model.parameters()))
    return {
        "loss": float(res.loss),
        "grad_norm": grad_norm,
        "grad_norm_clipped": grad_norm * scale,
        "clipped": clipped,
        "param_grad_norms": norms,
        "update_ratio": lr * grad_norm * scale / weight_norm,
        "grad_flow": res.grad_flow,
        "gates": res.gates,
        "state": res.state,
    }


def old_gate_stats(name: str, values: Tensor) -> tuple[float, list[float], float]:
    """The old host-side gate statistics (HEAD's train.gate_stats): histc + numpy.interp."""
    lo, hi = GATES[name].range
    g = values[:, :: max(1, math.ceil(values.numel() / 36_000))].float()
    hist = torch.histc(g, 1000, min=lo, max=hi).double().numpy()
    edges = np.linspace(lo, hi, 1001)
    cdf = np.concatenate([[0.0], np.cumsum(hist)]) / max(hist.sum(), 1.0)
    pct = [float(np.interp(p / 100, cdf, edges)) for p in PERCENTILES]
    sat = hist[GATES[name].saturated((edges[:-1] + edges[1:]) / 2)].sum() / max(hist.sum(), 1)
    return float(g.mean()), pct, float(sat)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_k1_trainer_equals_the_reference_step_for_step(
    small_corpus: Corpus, kind: str, dtype: torch.dtype
) -> None:
    config = TrainConfig(**{**SMALL, **KINDS[kind], "clip_threshold": 0.5, "lr": 1.5})
    trainer = Trainer(config, small_corpus, "cpu", dtype=dtype)
    ref = copy.deepcopy(trainer.model)  # the same initial weights, a separate copy
    tol = TOL[dtype]
    records = [r for _ in range(20) for r in trainer.advance(lookahead=False)]
    pipelined = Trainer(config, small_corpus, "cpu", dtype=dtype).run()  # one step ahead
    assert records == [r for r, _ in zip(pipelined, range(20), strict=False)]
    state = ref.init_state(config.batch_size)
    for record, (X, Y) in zip(records, batches(config, small_corpus), strict=False):
        expected = reference_step(ref, X, Y, state, config)
        state = expected["state"]  # type: ignore[assignment]
        for key in ("loss", "grad_norm", "grad_norm_clipped", "update_ratio"):
            assert getattr(record, key) == pytest.approx(expected[key], rel=tol, abs=tol), key
        assert record.clipped == expected["clipped"]
        got_norms = record.param_grad_norms
        for name, value in expected["param_grad_norms"].items():  # type: ignore[union-attr]
            assert got_norms[name] == pytest.approx(value, rel=tol, abs=tol), name
        if (record.step - 1) % config.flow_every == 0:
            assert record.grad_flow is not None
            np.testing.assert_allclose(record.grad_flow, expected["grad_flow"], rtol=tol, atol=tol)
        else:
            assert record.grad_flow is None and record.grad_flow_last is None
        for name, values in expected["gates"].items():  # type: ignore[union-attr]
            stats, (mean, pct, sat) = record.gates[name], old_gate_stats(name, values)
            assert stats.mean == pytest.approx(mean, abs=1e-6)
            # the same 1000-bin histogram; a value on a bin edge may round into its neighbour
            np.testing.assert_allclose(stats.percentiles, pct, atol=2.5e-3, err_msg=name)
            assert stats.saturated == pytest.approx(sat, abs=5e-3)
    assert len(records) == 20
    for name, p in ref.named_parameters():
        torch.testing.assert_close(trainer.model.get_parameter(name), p, rtol=tol, atol=tol)


def member_configs() -> list[TrainConfig]:
    base = TrainConfig(**{**SMALL, "model": "gru"})
    return [
        base.replace(seed=1, init_std=0.1, clip_threshold=1.0, lr=1.0),
        base.replace(seed=2, init_std=0.3, clip_threshold=None, lr=0.5),
        base.replace(seed=3, init_std=0.05, clip_threshold=0.1, lr=3.0),
        base.replace(seed=4, init_std=0.2, clip_threshold=5.0, lr=2.0),
    ]


def run_core(core: StepCore, data: list[tuple[Tensor, Tensor]], poison: int | None) -> list:
    """20 steps; at step 6, member ``poison`` (of this core) gets a NaN weight."""
    rows = []
    core.reset_state()
    for i, (X, Y) in enumerate(data[:20]):
        if poison is not None and i == 5:
            core.params["W_hq"][poison, 0, 0] = math.nan
        core.load_batch(X, Y)
        rows.append(core.read(core.run(want_flow=i % 3 == 0)))
    return rows


def test_member_of_a_batch_equals_its_single_run(small_corpus: Corpus) -> None:
    configs = member_configs()
    V = len(small_corpus.vocab)
    data = batches(configs[0], small_corpus)
    batch = StepCore(configs, V, "cpu", torch.float64)
    batch_rows = run_core(batch, data, poison=3)
    for k, config in enumerate(configs):
        alone = StepCore([config], V, "cpu", torch.float64)
        alone_rows = run_core(alone, data, poison=0 if k == 3 else None)
        for step, (many, one) in enumerate(zip(batch_rows, alone_rows, strict=True)):
            np.testing.assert_allclose(
                many[k], one[0], rtol=1e-10, atol=1e-12, err_msg=f"member {k} step {step + 1}"
            )
        for name, W in batch.params.items():
            torch.testing.assert_close(
                W[k], alone.params[name][0], rtol=1e-10, atol=1e-12, equal_nan=True
            )
    diverged = batch.layout.index["diverged"]
    assert [row[3, diverged] for row in batch_rows] == [0.0] * 5 + [1.0] * 15
    assert all(row[:3, diverged].sum() == 0 for row in batch_rows)


def test_a_guarded_step_leaves_the_weights_bit_for_bit(small_corpus: Corpus) -> None:
    configs = member_configs()[:2]
    core = StepCore([c.replace(clip_threshold=None) for c in configs], 28, "cpu")
    X, Y = batches(configs[0], small_corpus)[0]
    core.params["W_hz"][0, 1, 2] = math.inf  # member 0's loss and gradients go non-finite
    before = core.flat.clone()
    core.load_batch(X, Y)
    row = core.read(core.run(want_flow=True))
    assert torch.equal(core.flat[0].view(torch.int32), before[0].view(torch.int32))
    assert not torch.equal(core.flat[1], before[1])  # the other member went on
    index = core.layout.index
    assert (row[0, index["diverged"]], row[1, index["diverged"]]) == (1.0, 0.0)
    core.load_batch(X, Y)
    core.read(core.run(want_flow=False))  # flagged for good: later steps change nothing
    assert torch.equal(core.flat[0].view(torch.int32), before[0].view(torch.int32))


def flow_reference(model: RecurrentLM, X: Tensor, Y: Tensor, state: tuple) -> tuple[Tensor, ...]:
    """||dL/dH_t||, ||d l_T/dH_t||, ||d l_late/dH_t|| by autograd through zero probes."""
    B, T = X.shape
    probe = torch.zeros(T, B, model.hidden_size, dtype=torch.float64, requires_grad=True)
    out = model(X, state, h_probe=probe)
    ce = F.cross_entropy(out.logits.reshape(T * B, -1), Y.T.reshape(-1), reduction="none")
    ce = ce.view(T, B)
    n = min(step_backward.LATE, T)
    norms = []
    for loss in (ce.mean(), ce[-1].mean(), ce[T - n :].mean()):
        (g,) = torch.autograd.grad(loss, probe, retain_graph=True)
        norms.append(g.flatten(1).norm(dim=1))
    return tuple(norms)


def make_model(kind: str, V: int, Hn: int, seed: int) -> RecurrentLM:
    return reference_model(kind, V, Hn, 0.6, seed, random_biases=False)


@pytest.mark.parametrize("T", [7, 3])
@pytest.mark.parametrize("kind", [*HELPER_KINDS, *HALF_KINDS])
def test_one_position_flows_equal_autograd(kind: str, T: int) -> None:
    """K = 3 members at once; each member's three flows against autograd on its own model."""
    V, Hn, B, K = 9, 6, 3, 3
    models = [make_model(kind, V, Hn, seed) for seed in range(K)]
    X, Y = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))
    states = [tuple(torch.randn(B, Hn, dtype=torch.float64) * 0.5 for _ in "HC") for _ in models]
    names = [n for n, _ in models[0].named_parameters()]
    P = {n: torch.stack([m.get_parameter(n).detach() for m in models]) for n in names}
    H0 = torch.stack([s[0] for s in states])
    if kind == "lstm":
        C0 = torch.stack([s[1] for s in states])
        got, _ = step_lstm.lstm_loss_and_grads(P, X, Y, (H0, C0), want_flow=True)
    else:
        got = step_bptt.loss_and_grads(kind, P, X, Y, H0, Workspace(), True)
    for k, model in enumerate(models):
        state = states[k][: model.state_size]
        expected = flow_reference(model, X, Y, state)
        flows = (got.flow, got.flow_last, got.flow_late)
        for name, value, ref in zip(("flow", "last", "late"), flows, expected, strict=True):
            assert value is not None
            torch.testing.assert_close(value[:, k], ref.detach(), rtol=1e-10, atol=1e-13, msg=name)


def test_records_carry_the_one_position_flows(small_corpus: Corpus) -> None:
    trainer = Trainer(TrainConfig(**SMALL), small_corpus, "cpu")
    rec = next(r for r in trainer.run() if isinstance(r, StepRecord))
    assert rec.step == 1 and rec.grad_flow is not None
    assert rec.grad_flow_last is not None and rec.grad_flow_late is not None
    assert len(rec.grad_flow_last) == len(rec.grad_flow_late) == SMALL["num_steps"]
    assert all(v > 0 and math.isfinite(v) for v in rec.grad_flow_last + rec.grad_flow_late)


def test_initial_weights_are_the_models_by_the_one_rule(small_corpus: Corpus) -> None:
    """Every member starts where ``build_model`` of its config starts (both use
    ``init.initial_parameters`` with ``run_generator(seed)``), and those are the values a model
    built right after torch.manual_seed(seed) has (the old Trainer's weights, unchanged)."""
    V = len(small_corpus.vocab)
    pairs = ((7, 0.3), (8, 2.0))
    configs = [TrainConfig(**{**SMALL, "seed": s, "init_std": std}) for s, std in pairs]
    before = torch.get_rng_state()
    core = StepCore(configs, V, "cpu")
    assert torch.equal(torch.get_rng_state(), before)  # the process-wide generator is untouched
    for k, config in enumerate(configs):
        model = build_model(config, V)
        torch.manual_seed(config.seed)
        old = dict(GRUScratch(V, config.hidden_size, config.init_std).named_parameters())
        for name, p in model.named_parameters():
            assert torch.equal(core.params[name][k], p.detach()), (k, name)
            assert torch.equal(old[name].detach(), p.detach()), name


def test_two_threads_starting_at_once_get_what_each_gets_alone(small_corpus: Corpus) -> None:
    configs = [TrainConfig(**{**SMALL, "seed": s}) for s in (11, 12)]
    alone = [Trainer(c, small_corpus, "cpu").weights() for c in configs]
    barrier = threading.Barrier(3)
    got: dict[int, list[dict[str, Tensor]]] = {0: [], 1: []}
    stop = threading.Event()

    def start(i: int) -> None:
        barrier.wait()
        for _ in range(10):
            got[i].append(Trainer(configs[i], small_corpus, "cpu").weights())

    def noise() -> None:  # someone else using the process-wide generator meanwhile
        barrier.wait()
        while not stop.is_set():
            torch.manual_seed(0)
            torch.randn(100)

    threads = [threading.Thread(target=start, args=(i,)) for i in (0, 1)]
    threads.append(threading.Thread(target=noise))
    for t in threads:
        t.start()
    for t in threads[:2]:
        t.join(60)
    stop.set()
    threads[2].join(10)
    for i in (0, 1):
        assert len(got[i]) == 10
        for weights in got[i]:
            for name, W in alone[i].items():
                assert torch.equal(weights[name], W), (i, name)
    assert not torch.equal(alone[0]["W_hq"], alone[1]["W_hq"])


def test_no_process_wide_seed_and_no_host_reads_in_the_step() -> None:
    core_files = sorted(GRU_CORE.rglob("*.py"))
    step_files = sorted((GRU_CORE / "step").glob("*.py"))
    # the globs must match what they are meant to guard (a move would empty them silently)
    assert len(core_files) > 20 and GRU_CORE / "step" / "core.py" in step_files
    for path in core_files:
        assert "torch.manual_seed" not in path.read_text(), path.name
        assert "_WORKSPACES" not in path.read_text(), path.name
    for path in step_files:  # every module of the step: validation returns device tensors
        text = path.read_text()
        assert not re.search(r"\.item\(\)|\.tolist\(\)|float\(", text), path.name


def test_the_step_modules_import_each_other_without_a_cycle() -> None:
    """Every import between step modules, function-level ones included, goes one way."""
    step = GRU_CORE / "step"
    graph: dict[str, set[str]] = {}
    for path in step.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[path.stem] = {
            node.module.rsplit(".", 1)[1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("gru_core.step.")
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "gru_core.step"
            for alias in node.names
        }
    assert {"bptt", "backward", "forward", "core"} <= set(graph)
    assert "backward" in graph["bptt"] and "bptt" not in graph["backward"]
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for dep in graph.get(name, ()):
                visit(dep, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())


def test_configs_stepped_together_must_share_a_shape() -> None:
    base = TrainConfig(**SMALL)
    with pytest.raises(ValueError, match="hidden_size"):
        StepCore([base, base.replace(hidden_size=32)], 28, "cpu")
    with pytest.raises(ValueError, match="at least one"):
        StepCore([], 28, "cpu")
    core = StepCore([base], 28, "cpu")
    with pytest.raises(ValueError, match="num_steps"):
        core.set_config(0, base.replace(num_steps=9))


def test_live_knobs_are_device_tensors_written_in_place(small_corpus: Corpus) -> None:
    base = TrainConfig(**SMALL)
    core = StepCore([base, base.replace(seed=5)], len(small_corpus.vocab), "cpu")
    lr, theta = core.lr, core.theta
    core.set_config(1, base.replace(seed=5, lr=0.25, clip_threshold=None))
    assert core.lr is lr and core.theta is theta  # the same tensors a graph would read
    assert lr.tolist() == [1.0, 0.25] and theta.tolist() == [1.0, math.inf]
    X, Y = batches(base, small_corpus)[0]
    core.load_batch(X, Y)
    row = core.read(core.run(False))
    index = core.layout.index
    assert row[1, index["lr"]] == 0.25 and math.isinf(row[1, index["clip_threshold"]])
    assert core.configs[1].lr == 0.25


@pytest.mark.parametrize("kind", ["gru-d2l", "gru-cudnn", "rnn", "lstm"])
def test_the_switches_drop_only_their_own_columns(small_corpus: Corpus, kind: str) -> None:
    """gate_stats=False writes NaN in the gate columns and probes=False in the one-position
    flows; every other column and every weight is what the full step gives, bit for bit."""
    base = [c.replace(**KINDS.get(kind, {"model": "lstm"})) for c in member_configs()[:2]]
    V = len(small_corpus.vocab)
    data = batches(base[0], small_corpus)
    full = StepCore(base, V, "cpu", torch.float64)
    lean = StepCore(base, V, "cpu", torch.float64, gate_stats=False, probes=False)
    full_rows, lean_rows = run_core(full, data, None), run_core(lean, data, None)
    columns = full.layout.columns
    dropped = [i for i, c in enumerate(columns) if c.startswith(("flow_last:", "flow_late:"))] + [
        i for i, c in enumerate(columns) if c.split(":")[0] in full.layout.gates
    ]
    kept = [i for i in range(len(columns)) if i not in dropped]
    assert (kind == "rnn") == (not full.layout.gates)
    for step, (a, b) in enumerate(zip(full_rows, lean_rows, strict=True)):
        np.testing.assert_array_equal(a[:, kept], b[:, kept], err_msg=f"step {step + 1}")
        assert np.isnan(b[:, dropped]).all()
        if step % 3 == 0:  # a flow step: the total flow is still there, the probes were too
            assert np.isfinite(b[:, [columns.index(f"flow:{t}") for t in (1, 2)]]).all()
            assert np.isfinite(a[:, [columns.index(f"flow_last:{t}") for t in (1, 2)]]).all()
    assert torch.equal(full.flat, lean.flat)
