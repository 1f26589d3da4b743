"""Half a GRU (d2l's exercise 4): the reset-only GRU (Z = 0, H_t = H_tilde_t) and the
update-only GRU (R = 1), in both conventions, through the GRU's fused forward, hand BPTT and
step core: each against autograd, finite differences, the textbook GRU with a gate dropped,
the memory view's autograd reference and the single run a map cell stands for."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest
from torch import Tensor
from torch.func import functional_call

from dashboard.screens import map as map_page
from dashboard.session.lab import Lab
from dashboard.sidebar import controls as ctl
from dashboard.views.teaching import equation_legend, equations
from gru_core.config import GRU_MODELS, MODELS, TrainConfig
from gru_core.data import Corpus, Vocab, split_train_val
from gru_core.memory import analyse, input_gradients, model_from_weights
from gru_core.model.cells import GRUScratch, build_model
from gru_core.model.gates import MODEL_GATES
from gru_core.model.textbook import TextbookGRU, loss_and_backward
from gru_core.run.records import EpochRecord, Outcome
from gru_core.run.trainer import Trainer
from gru_core.sources import load_corpus
from gru_core.step import bptt as step_bptt
from gru_core.step import fused
from gru_core.step.core import StepCore
from gru_core.step.forward import Workspace
from gru_core.sweep.chunk import run_chunk
from gru_core.sweep.spec import SweepSpec, plan

from helpers import HALF_KINDS, SyncRunner, reference_model

V, HN, B, T = 7, 5, 3, 6
TINY = {"hidden_size": 16, "num_steps": 8, "batch_size": 4, "max_tokens": 2000,
        "val_tokens": 300, "num_epochs": 1, "init_std": 0.3, "device": "cpu"}  # fmt: skip


def inputs(seed: int = 1) -> tuple[Tensor, Tensor, tuple[Tensor]]:
    g = torch.Generator().manual_seed(seed)
    X, Y = torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)
    return X, Y, (torch.randn(B, HN, generator=g, dtype=torch.float64) * 0.5,)


# -- config and model ----------------------------------------------------------------------


def test_the_halves_are_models_of_the_config_in_both_conventions() -> None:
    assert {"gru_reset_only", "gru_update_only"} <= set(MODELS) and len(GRU_MODELS) == 3
    for model in ("gru_reset_only", "gru_update_only"):
        for variant in ("d2l", "cudnn"):
            config = TrainConfig(model=model, gru_variant=variant, hidden_size=8)
            net = build_model(config, V)
            assert isinstance(net, GRUScratch) and (net.model, net.variant) == (model, variant)
    with pytest.raises(ValueError, match="model='gru_half' is not one of .*gru_update_only"):
        TrainConfig(model="gru_half")
    with pytest.raises(ValueError, match="model='lstm' is not one of"):
        GRUScratch(V, HN, model="lstm")


@pytest.mark.parametrize("kind", HALF_KINDS)
def test_a_half_has_no_parameters_for_its_missing_gate(kind: str) -> None:
    model = reference_model(kind, V, HN)
    names = {n for n, _ in model.named_parameters()}
    missing = "z" if kind.startswith("gru_reset_only") else "r"
    kept = "r" if missing == "z" else "z"
    assert not {f"W_x{missing}", f"W_h{missing}", f"b_{missing}"} & names
    assert {f"W_x{kept}", f"W_h{kept}", f"b_{kept}", "W_xh", "W_hh"} <= names
    assert model.gate_names == MODEL_GATES[kind.split("-")[0]]
    assert ("b_hh" in names) == kind.endswith("cudnn")


@pytest.mark.parametrize("variant", ["d2l", "cudnn"])
def test_the_halves_are_the_gru_with_one_gate_fixed(variant: str) -> None:
    """A full GRU whose Z is driven to 0 (b_z = -60) is the reset-only GRU with its other
    weights; one whose R is driven to 1 (b_r = +60) is the update-only GRU."""
    full = reference_model(f"gru-{variant}", V, HN)
    X, _, state = inputs()
    for kind, bias, value in (("gru_reset_only", "b_z", -60.0), ("gru_update_only", "b_r", 60.0)):
        half = reference_model(f"{kind}-{variant}", V, HN)
        with torch.no_grad():
            getattr(full, bias).fill_(value)
            for name, p in half.named_parameters():
                p.copy_(full.get_parameter(name))
            want, got = full(X, state).logits, half(X, state).logits
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
        full = reference_model(f"gru-{variant}", V, HN)


@pytest.mark.parametrize("kind", [k for k in HALF_KINDS if k.endswith("d2l")])
def test_forward_and_gradients_equal_the_textbook_half(kind: str) -> None:
    """The book's structure (one-hot inputs, a matmul per gate, float32) with a gate dropped."""
    model = reference_model(kind, V, HN, dtype=torch.float32)
    gates = "r" if kind.startswith("gru_reset_only") else "z"
    book = TextbookGRU(V, HN, gates=gates).load_from(model)
    X, Y, state64 = inputs()
    state = (state64[0].float(),)
    logits, _ = book(X, state)
    torch.testing.assert_close(logits.view(T, B, V), model(X, state).logits)
    loss, _ = loss_and_backward(book, X, Y, state)
    ours = fused.loss_and_grads(model, X, Y, state)
    assert float(ours.loss) == pytest.approx(float(loss), rel=1e-6)
    for name, p in book.params.items():
        assert p.grad is not None
        torch.testing.assert_close(ours.grads[name], p.grad, rtol=1e-5, atol=1e-6, msg=name)
    with pytest.raises(ValueError, match="other gates"):
        TextbookGRU(V, HN, gates="zr").load_from(model)


# -- the hand BPTT -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", HALF_KINDS)
def test_hand_bptt_equals_autograd_and_finite_differences(kind: str) -> None:
    """Loss, every parameter gradient, the gates and ||dL/dH_t|| of the hand-written BPTT
    equal autograd through the model (float64); and the gradient's directional derivative
    equals a central finite difference of the fused forward's loss (a gradcheck of the hand
    BPTT that does not lean on autograd)."""
    model = reference_model(kind, V, HN)
    X, Y, state = inputs()
    ours = fused.loss_and_grads(model, X, Y, state, want_flow=True)
    ref = fused.autograd_loss_and_grads(model, X, Y, state, want_flow=True)
    assert set(ours.grads) == {n for n, _ in model.named_parameters()}
    torch.testing.assert_close(ours.loss, ref.loss, rtol=0, atol=1e-12)
    for name, g in ref.grads.items():
        torch.testing.assert_close(ours.grads[name], g, rtol=0, atol=1e-12, msg=name)
    assert set(ours.gates) == set(ref.gates) == set(model.gate_names)
    for name, g in ref.gates.items():
        torch.testing.assert_close(ours.gates[name], g, rtol=0, atol=1e-12, msg=name)
    assert ours.grad_flow is not None and ref.grad_flow is not None
    torch.testing.assert_close(ours.grad_flow, ref.grad_flow, rtol=0, atol=1e-12)
    gen = torch.Generator().manual_seed(9)
    direction = {n: torch.randn(p.shape, generator=gen, dtype=p.dtype) for n, p in
                 model.named_parameters()}  # fmt: skip
    eps = 1e-6

    def loss_at(sign: float) -> float:
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.add_(direction[n], alpha=sign * eps)
            out = float(fused.loss_and_grads(model, X, Y, state).loss)
            for n, p in model.named_parameters():
                p.add_(direction[n], alpha=-sign * eps)
            return out

    numeric = (loss_at(1.0) - loss_at(-1.0)) / (2 * eps)
    analytic = sum(float((ours.grads[n] * d).sum()) for n, d in direction.items())
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("kind", HALF_KINDS)
def test_k_members_at_once_equal_autograd_on_each(kind: str) -> None:
    """K = 3 members (own weights, own state) in one call of the step's BPTT."""
    K = 3
    models = [reference_model(kind, V, HN, seed=s) for s in range(K)]
    X, Y, _ = inputs()
    states = [inputs(seed=10 + k)[2] for k in range(K)]
    names = [n for n, _ in models[0].named_parameters()]
    P = {n: torch.stack([m.get_parameter(n).detach() for m in models]) for n in names}
    kind_name = step_bptt.model_kind(*kind.split("-"))
    got = step_bptt.loss_and_grads(kind_name, P, X, Y, torch.stack([s[0] for s in states]),
                                   Workspace(), want_flow=True)  # fmt: skip
    for k, model in enumerate(models):
        ref = fused.autograd_loss_and_grads(model, X, Y, states[k], want_flow=True)
        torch.testing.assert_close(got.loss[k], ref.loss, rtol=0, atol=1e-12)
        for name, g in ref.grads.items():
            torch.testing.assert_close(got.grads[name][k], g, rtol=0, atol=1e-12, msg=name)
        assert got.flow is not None and ref.grad_flow is not None
        torch.testing.assert_close(got.flow[:, k], ref.grad_flow, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", HALF_KINDS)
def test_step_core_members_equal_their_single_runs(small_corpus: Corpus, kind: str) -> None:
    model, variant = kind.split("-")
    base = TrainConfig(**{**TINY, "model": model, "gru_variant": variant})
    configs = [base.replace(seed=s, init_std=std) for s, std in ((0, 0.3), (1, 0.05))]
    Vc = len(small_corpus.vocab)
    batch = StepCore(configs, Vc, "cpu", torch.float64)
    alone = [StepCore([c], Vc, "cpu", torch.float64) for c in configs]
    assert batch.layout.gates == MODEL_GATES[model]
    train, _ = split_train_val(small_corpus.tokens, base.max_tokens, base.val_tokens)
    n = base.batch_size * base.num_steps
    for core in (batch, *alone):
        core.reset_state()
    for i in range(4):
        chunk = train[i * n : (i + 1) * n + 1]
        X, Y = chunk[:-1].view(base.batch_size, -1), chunk[1:].view(base.batch_size, -1)
        batch.load_batch(X, Y)
        many = batch.read(batch.run(i % 2 == 0))
        for k, core in enumerate(alone):
            core.load_batch(X, Y)
            one = core.read(core.run(i % 2 == 0))
            torch.testing.assert_close(torch.as_tensor(many[k]), torch.as_tensor(one[0]),
                                       rtol=1e-10, atol=1e-12, equal_nan=True)  # fmt: skip
    for name, W in batch.params.items():
        for k, core in enumerate(alone):
            torch.testing.assert_close(W[k], core.params[name][0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("model", ["gru_reset_only", "gru_update_only"])
def test_a_tiny_half_overfits_one_batch(small_corpus: Corpus, model: str) -> None:
    config = TrainConfig(**{**TINY, "model": model, "hidden_size": 32, "lr": 2.0})
    trainer = Trainer(config, small_corpus, device="cpu")
    Bc, Tc = config.batch_size, config.num_steps
    tokens = trainer.train_tokens
    X, Y = tokens[: Bc * Tc].view(Bc, Tc), tokens[1 : Bc * Tc + 1].view(Bc, Tc)
    net = trainer.model
    losses = []
    for _ in range(150):
        g = fused.loss_and_grads(net, X, Y, net.init_state(Bc))
        norm = math.sqrt(sum(float(v.square().sum()) for v in g.grads.values()))
        scale = min(1.0, 1.0 / norm)  # d2l's clipping at theta = 1
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.add_(g.grads[name], alpha=-config.lr * scale)
        losses.append(float(g.loss))
    assert losses[-1] < 0.25 * losses[0], (losses[0], losses[-1])


# -- the memory view and the map -----------------------------------------------------------

TEXT = "the time traveller for so it will be convenient to speak of him "


@pytest.mark.parametrize("kind", HALF_KINDS)
def test_memory_connectivity_is_autograds_input_gradient(kind: str) -> None:
    vocab = Vocab(TEXT)
    model = reference_model(kind, len(vocab), 5, init_std=0.5, seed=4)
    tokens, t = torch.tensor(vocab.encode("the time traveller for so")), 20
    ours = input_gradients(model, tokens, t)
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    names = [n for n in params if n.startswith("W_x")]
    assert ours.shape == (t + 1, len(names) * 5)  # a half GRU has two input matrices
    rows = {n: params[n][tokens[: t + 1]].clone().requires_grad_(True) for n in names}
    out = functional_call(model, params | rows, (torch.arange(t + 1)[None],))
    log_p = torch.log_softmax(out.logits[t, 0], 0)[tokens[t + 1]]
    by_autograd = torch.cat(torch.autograd.grad(log_p, [rows[n] for n in names]), 1)
    torch.testing.assert_close(ours, by_autograd, rtol=0, atol=1e-12)


def test_a_map_cell_of_each_half_equals_its_single_run(small_corpus: Corpus) -> None:
    base = TrainConfig(**{**TINY, "num_epochs": 2})
    spec = SweepSpec(x_values=(0.05, 0.3), y_values=(1.0,), base=base,
                     models=("gru_reset_only", "gru_update_only"))  # fmt: skip
    train, val = split_train_val(small_corpus.tokens, base.max_tokens, base.val_tokens)
    p = plan(spec, len(small_corpus.vocab), "cpu")
    seen = set()
    for chunk in p.chunks:
        results = run_chunk(chunk, train, val, len(small_corpus.vocab), "cpu",
                            spec.target_perplexity, spec.eval_every)  # fmt: skip
        for cell, result in zip(chunk, results, strict=True):
            seen.add(cell.config.model)
            records = list(Trainer(cell.config, small_corpus, "cpu", eval_every=1).run())
            epochs = [r for r in records if isinstance(r, EpochRecord)]
            assert isinstance(records[-1], Outcome) and records[-1].status == result.status
            assert result.model == cell.config.model
            assert result.final_train_perplexity == pytest.approx(
                epochs[-1].train_perplexity, rel=1e-5
            )
            assert result.final_val_perplexity == pytest.approx(epochs[-1].val_perplexity, 1e-5)
    assert seen == {"gru_reset_only", "gru_update_only"}


def test_a_run_records_only_the_gates_a_half_has(small_corpus: Corpus) -> None:
    config = TrainConfig(**{**TINY, "model": "gru_update_only"})
    records = list(Trainer(config, small_corpus, "cpu").run())
    step = records[0]
    assert set(step.gates) == {"Z", "H_tilde"}  # type: ignore[union-attr]
    assert isinstance(records[-1], Outcome) and records[-1].status == "done"


# -- the lab -------------------------------------------------------------------------------

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


@pytest.mark.parametrize(
    ("label", "model", "fixed", "band"),
    [
        ("GRU (reset gate only)", "gru_reset_only", r"\mathbf{Z}_t &= \mathbf{0}", "R"),
        ("GRU (update gate only)", "gru_update_only", r"\mathbf{R}_t &= \mathbf{1}", "Z"),
    ],
)
def test_the_lab_trains_a_half_and_shows_its_equations(
    corpus_path: str, monkeypatch: pytest.MonkeyPatch, label: str, model: str, fixed: str,
    band: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("GRU_LAB_CORPUS", corpus_path)
    monkeypatch.setenv("GRU_LAB_CLOSE_GRACE_S", "0.5")
    st.cache_resource.clear()
    at = AppTest.from_file(str(APP), default_timeout=60)
    lab = Lab(corpus=load_corpus(corpus_path), runner=SyncRunner())
    at.session_state["lab"] = lab
    for key, value in {"hidden": "32", "steps": "10", "batch": "8"}.items():
        at.query_params[key] = value
    try:
        at.run()
        at.radio(key="model").set_value(label).run()
        assert not at.exception
        assert at.radio(key="variant").disabled is False  # both conventions apply to a half
        start = [b for b in at.button if b.label == "Start"][0]
        start.click().run()
        job = lab.job
        assert job is not None and job.config.model == model
        job.run_sync(3)
        at.run()
        assert not at.exception and not at.error
        keys = [c.key for c in at.get("plotly_chart")]
        assert f"overview-bands-{band}" in keys
        equations = [e.value for e in at.latex if "aligned" in e.value]
        assert len(equations) == 1 and fixed in equations[0], equations
        heading = [e.label for e in at.expander if "The equations" in e.label]
        name = {"R": "GRU (reset gate only)", "Z": "GRU (update gate only)"}[band]
        assert heading == [f"**The equations: {name[:-1]}, d2l variant)**"]
    finally:
        lab.close()


@pytest.mark.parametrize("variant", ["d2l", "cudnn"])
def test_each_halfs_equations_show_what_it_fixes(variant: str) -> None:
    sigma_z, sigma_r = r"\mathbf{Z}_t &= \sigma", r"\mathbf{R}_t &= \sigma"
    gated_candidate = r"\mathbf{R}_t \odot"
    full = equations(TrainConfig(model="gru", gru_variant=variant))
    reset = equations(TrainConfig(model="gru_reset_only", gru_variant=variant))
    update = equations(TrainConfig(model="gru_update_only", gru_variant=variant))
    assert sigma_z in full and sigma_r in full and gated_candidate in full
    assert sigma_z not in reset and r"\mathbf{Z}_t &= \mathbf{0}" in reset
    assert sigma_r in reset and gated_candidate in reset
    assert r"\mathbf{H}_t &= \tilde{\mathbf{H}}_t" in reset
    assert sigma_r not in update and gated_candidate not in update
    assert r"\mathbf{R}_t &= \mathbf{1}" in update and sigma_z in update
    assert (r"\mathbf{b}_{hh}" in update) == (variant == "cudnn")
    for text in (full, reset, update):
        assert text.count(r"\begin{aligned}") == text.count(r"\end{aligned}") == 1
    legend = equation_legend(TrainConfig(model="gru_reset_only", gru_variant=variant))
    assert "Z fixed at 0" in legend and "R: reset gate" in legend
    legend = equation_legend(TrainConfig(model="gru_update_only", gru_variant=variant))
    assert "R fixed at 1" in legend and "Z: update gate" in legend


def test_the_controls_and_the_map_offer_both_halves() -> None:
    for label, model in (("GRU (reset gate only)", "gru_reset_only"),
                         ("GRU (update gate only)", "gru_update_only")):  # fmt: skip
        assert ctl.MODELS[label] == model and map_page.MODEL_NAMES[label] == model
        values = {**ctl.defaults(), "model": label, "variant": "cuDNN"}
        config = ctl.config_from_values(values)
        assert (config.model, config.gru_variant) == (model, "cudnn")
        assert ctl.values_from_config(config)["model"] == label
        assert ctl.BY_KEY["variant"].enabled(values)
    assert not ctl.BY_KEY["variant"].enabled({"model": "RNN"})


@pytest.mark.parametrize("model", ["gru_reset_only", "gru_update_only"])
def test_the_memory_view_reads_a_trained_half(small_corpus: Corpus, model: str) -> None:
    """What the Memory view does with a run's weights: rebuild the model, read a passage."""
    config = TrainConfig(**{**TINY, "model": model, "gru_variant": "cudnn"})
    trainer = Trainer(config, small_corpus, "cpu")
    list(trainer.run())
    net = model_from_weights(config, len(small_corpus.vocab), trainer.weights())
    assert isinstance(net, GRUScratch) and net.model == model
    found = analyse(net, small_corpus.vocab, "the time traveller for so it will be")
    T = len(found.text_seen)
    assert found.activations.shape == (T, config.hidden_size)
    assert found.connectivity.shape == (found.target + 1,) and found.reach >= 1
    assert all(math.isfinite(v) for v in found.connectivity)


def _map_page() -> None:
    import streamlit as st

    from dashboard.screens.map import map_page

    st.session_state["_pages"] = {}
    map_page()


def test_the_map_page_maps_both_halves(corpus_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRU_LAB_CORPUS", corpus_path)
    st.cache_resource.clear()
    page = AppTest.from_function(_map_page, default_timeout=60)
    page.query_params.update(map_hidden="8", map_epochs="1", map_steps="10")
    page.run()
    page.multiselect(key="map_models").set_value(
        ["GRU (reset gate only)", "GRU (update gate only)"]
    )
    page.multiselect(key="map_xv").set_value([0.01, 1.0])
    page.multiselect(key="map_yv").set_value([1.0])
    page.run()
    [b for b in page.button if b.label == "Start"][0].click().run()
    assert not page.exception and not page.error
    job = page.session_state["sweep"]
    try:
        job.join(120)
        page.run()
        snap = job.snapshot()
        assert snap.state == "done" and snap.finished == snap.total == 4
        assert {r.model for r in snap.results} == {"gru_reset_only", "gru_update_only"}
        charts = page.get("plotly_chart")
        spec = charts[0].proto.spec.lower() if charts else ""
        assert "gru_reset_only" in spec and "gru_update_only" in spec  # a map per model
        assert "GRU (reset gate only)" in page.query_params["map_models"]
    finally:
        job.stop(wait=True)
