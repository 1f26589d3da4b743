"""CUDA only (marker ``cuda``; skipped without a GPU): the graphed step equals the eager one.

Run: ``python -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py``
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.run.records import StepRecord
from gru_core.run.trainer import Trainer
from gru_core.step.core import StepCore

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
SHAPE = {"hidden_size": 32, "num_steps": 12, "batch_size": 8, "max_tokens": 4000}
KINDS = [
    {"model": "gru", "gru_variant": "d2l"},
    {"model": "gru", "gru_variant": "cudnn"},
    {"model": "rnn"},
]


def configs(kind: dict[str, str]) -> list[TrainConfig]:
    base = TrainConfig(**SHAPE, **kind, flow_every=7, device="cuda")  # type: ignore[arg-type]
    return [
        base.replace(seed=1, init_std=0.1, clip_threshold=1.0, lr=1.0),
        base.replace(seed=2, init_std=0.3, clip_threshold=None, lr=0.5),
        base.replace(seed=3, init_std=0.05, clip_threshold=0.2, lr=2.0),
    ]


def drive(core: StepCore, corpus: Corpus, steps: int = 50) -> list[np.ndarray]:
    """``steps`` steps read one step late; a live theta and lr change at step 20 (member 0),
    member 2 poisoned with a NaN weight at step 30 (it must diverge and stop changing)."""
    tokens = corpus.tokens[: SHAPE["max_tokens"]].cuda()
    B, T = SHAPE["batch_size"], SHAPE["num_steps"]
    n = (len(tokens) - 1) // (B * T)
    rows, pending = [], None
    core.reset_state()
    for i in range(steps):
        if i == 20:
            core.set_config(0, core.configs[0].replace(clip_threshold=0.05, lr=0.25))
        if i == 30:
            core.params["W_hq"][2, 0, 0] = math.nan
        j = (i % n) * B * T
        X = tokens[j : j + B * T].view(B, T)
        Y = tokens[j + 1 : j + B * T + 1].view(B, T)
        core.load_batch(X, Y)
        slot = core.run(want_flow=i % 7 == 0)
        if pending is not None:
            rows.append(core.read(pending))
        pending = slot
    rows.append(core.read(pending))
    return rows


@pytest.mark.parametrize("kind", KINDS, ids=["gru-d2l", "gru-cudnn", "rnn"])
def test_graph_replay_equals_eager(small_corpus: Corpus, kind: dict[str, str]) -> None:
    V = len(small_corpus.vocab)
    graphed = StepCore(configs(kind), V, "cuda", graphs=True)
    eager = StepCore(configs(kind), V, "cuda", graphs=False)
    got, want = drive(graphed, small_corpus), drive(eager, small_corpus)
    assert graphed.graphed and graphed.note is None, graphed.note
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=f"step {i + 1}")
    torch.testing.assert_close(graphed.flat, eager.flat, rtol=1e-5, atol=1e-6, equal_nan=True)
    index = graphed.layout.index
    assert got[25][0, index["clip_threshold"]] == pytest.approx(0.05)
    assert got[25][0, index["lr"]] == 0.25
    assert [r[2, index["diverged"]] for r in got] == [0.0] * 30 + [1.0] * 20
    assert all(r[:2, index["diverged"]].sum() == 0 for r in got)


def test_members_equal_their_single_graphed_runs(small_corpus: Corpus) -> None:
    V = len(small_corpus.vocab)
    members = configs(KINDS[0])
    batch = drive(StepCore(members, V, "cuda"), small_corpus)
    for k, config in enumerate(members[:2]):  # member 2 is the poisoned one
        alone = drive(StepCore([config], V, "cuda"), small_corpus)
        for i, (many, one) in enumerate(zip(batch, alone, strict=True)):
            np.testing.assert_allclose(many[k], one[0], rtol=1e-4, atol=1e-6, err_msg=f"{k} {i}")


def test_trainer_on_cuda_replays_a_graph(small_corpus: Corpus) -> None:
    config = TrainConfig(**SHAPE, num_epochs=2, device="cuda")  # type: ignore[arg-type]
    trainer = Trainer(config, small_corpus)
    records = list(trainer.run())
    assert records[-1].status == "done"  # type: ignore[union-attr]
    assert trainer.core.graphed and trainer.note is None
    steps = [r for r in records if isinstance(r, StepRecord)]
    assert [r.step for r in steps] == list(range(1, len(steps) + 1))
    assert all(math.isfinite(r.loss) for r in steps)
