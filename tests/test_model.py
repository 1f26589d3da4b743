"""The from-scratch models against references (ARCHITECTURE.md, rule 8): gradcheck in float64,
the cudnn GRU against torch.nn.GRU with copied weights, the d2l GRU against a transcription
of d2l's code.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from gru_core.config import TrainConfig
from gru_core.model.cells import GRUScratch, LSTMScratch, RecurrentLM, RNNScratch, build_model
from gru_core.model.gates import gate as gate_registry
from gru_core.model.init import initial_parameters, run_generator

from helpers import HALF_KINDS, KINDS, reference_model

V, HN, T, B = 7, 5, 4, 3  # vocab, hidden, steps, batch: tiny, for float64 references
TOL = {"rtol": 0.0, "atol": 1e-10}


def make_model(
    kind: str, vocab: int = V, hidden: int = HN, init_std: float = 0.5, seed: int = 0
) -> RecurrentLM:
    """A float64 model with non-trivial weights and non-zero random biases."""
    return reference_model(kind, vocab, hidden, init_std, seed)


def random_inputs(model: RecurrentLM, seed: int = 1) -> tuple[Tensor, tuple[Tensor, ...]]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.vocab_size, (B, T), generator=g)
    state = tuple(
        torch.randn(B, model.hidden_size, generator=g, dtype=torch.float64) * 0.5
        for _ in range(model.state_size)
    )
    return tokens, state


def as_function(model: RecurrentLM, tokens: Tensor) -> tuple[Callable[..., tuple], list[Tensor]]:
    """forward as a pure function of (all parameters..., initial state...)."""
    names = [n for n, _ in model.named_parameters()]

    def f(*args: Tensor) -> tuple[Tensor, ...]:
        params = dict(zip(names, args[: len(names)], strict=True))
        state = tuple(args[len(names) :])
        out = functional_call(model, params, (tokens, state))
        return (out.logits, *out.state)

    params = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    return f, params


# -- gradcheck ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS + HALF_KINDS)
def test_gradcheck_wrt_parameters_and_initial_state(kind: str) -> None:
    model = make_model(kind)
    tokens, state = random_inputs(model)
    f, params = as_function(model, tokens)
    state_in = [s.clone().requires_grad_(True) for s in state]
    inputs = (*params, *state_in)
    assert all(x.dtype == torch.float64 for x in inputs)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_detects_a_wrong_gradient() -> None:
    """The harness has teeth: a function with a deliberately wrong backward fails it."""

    class Bad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
            return torch.tanh(x)

        @staticmethod
        def backward(ctx, g: Tensor) -> Tensor:  # type: ignore[override]
            return g  # wrong: misses (1 - tanh^2)

    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(Bad.apply, (x,), raise_exception=False)


# -- cudnn variant == torch.nn.GRU -------------------------------------------------------


def _gru_pair() -> tuple[GRUScratch, nn.GRU, nn.Linear]:
    """A cudnn-variant GRUScratch whose weights are copied from a random nn.GRU + nn.Linear."""
    torch.manual_seed(3)
    ref = nn.GRU(input_size=V, hidden_size=HN).double()
    head = nn.Linear(HN, V).double()
    with torch.no_grad():
        for p in (*ref.parameters(), *head.parameters()):
            p.normal_(0.0, 0.5)  # non-zero biases, gates far from 0.5
    ours = GRUScratch(V, HN, 0.5, variant="cudnn").double()
    w_ih, w_hh = ref.weight_ih_l0, ref.weight_hh_l0  # rows: [r; z; n]
    b_ih, b_hh = ref.bias_ih_l0, ref.bias_hh_l0
    r, z, n = slice(0, HN), slice(HN, 2 * HN), slice(2 * HN, 3 * HN)
    with torch.no_grad():
        ours.W_xr.copy_(w_ih[r].T)
        ours.W_xz.copy_(w_ih[z].T)
        ours.W_xh.copy_(w_ih[n].T)
        ours.W_hr.copy_(w_hh[r].T)
        ours.W_hz.copy_(w_hh[z].T)
        ours.W_hh.copy_(w_hh[n].T)
        ours.b_r.copy_(b_ih[r] + b_hh[r])
        ours.b_z.copy_(b_ih[z] + b_hh[z])
        ours.b_xh.copy_(b_ih[n])
        ours.b_hh.copy_(b_hh[n])
        ours.W_hq.copy_(head.weight.T)
        ours.b_q.copy_(head.bias)
    return ours, ref, head


def test_cudnn_gru_matches_torch_nn_gru_forward() -> None:
    ours, ref, head = _gru_pair()
    tokens, (H0,) = random_inputs(ours, seed=5)
    X = F.one_hot(tokens.T, V).double()  # (T, B, V)
    with torch.no_grad():
        ref_out, ref_hn = ref(X, H0[None])
        out = ours(tokens, (H0,))
        # Per-step states: T single-step forwards, carrying our state.
        state = (H0,)
        for t in range(T):
            state = ours(tokens[:, t : t + 1], state).state
            torch.testing.assert_close(state[0], ref_out[t], **TOL)
    torch.testing.assert_close(out.state[0], ref_hn[0], **TOL)
    torch.testing.assert_close(out.logits, head(ref_out), **TOL)


def test_cudnn_gru_matches_torch_nn_gru_gradients() -> None:
    ours, ref, head = _gru_pair()
    tokens, (H0,) = random_inputs(ours, seed=6)
    targets = torch.randint(0, V, (T * B,), generator=torch.Generator().manual_seed(7))
    w_state = torch.randn(B, HN, dtype=torch.float64, generator=torch.Generator().manual_seed(8))

    def scalar_loss(logits: Tensor, H_T: Tensor) -> Tensor:
        return F.cross_entropy(logits.reshape(T * B, V), targets) + (H_T * w_state).sum()

    h0_ours = H0.clone().requires_grad_(True)
    out = ours(tokens, (h0_ours,))
    scalar_loss(out.logits, out.state[0]).backward()

    h0_ref = H0[None].clone().requires_grad_(True)
    ref_out, ref_hn = ref(F.one_hot(tokens.T, V).double(), h0_ref)
    scalar_loss(head(ref_out), ref_hn[0]).backward()

    g_ih, g_hh = ref.weight_ih_l0.grad, ref.weight_hh_l0.grad
    gb_ih, gb_hh = ref.bias_ih_l0.grad, ref.bias_hh_l0.grad
    assert g_ih is not None and g_hh is not None and gb_ih is not None and gb_hh is not None
    r, z, n = slice(0, HN), slice(HN, 2 * HN), slice(2 * HN, 3 * HN)
    expected = {
        "W_xr": g_ih[r].T,
        "W_xz": g_ih[z].T,
        "W_xh": g_ih[n].T,
        "W_hr": g_hh[r].T,
        "W_hz": g_hh[z].T,
        "W_hh": g_hh[n].T,
        "b_r": gb_ih[r],
        "b_z": gb_ih[z],
        "b_xh": gb_ih[n],
        "b_hh": gb_hh[n],
        "W_hq": head.weight.grad.T,
        "b_q": head.bias.grad,
    }
    grads = {name: p.grad for name, p in ours.named_parameters()}
    assert set(grads) == set(expected)
    for name, g in expected.items():
        torch.testing.assert_close(grads[name], g, **TOL, msg=name)
    # A summed bias gets the gradient of each of its parts.
    torch.testing.assert_close(grads["b_z"], gb_hh[z], **TOL)
    torch.testing.assert_close(grads["b_r"], gb_hh[r], **TOL)
    torch.testing.assert_close(h0_ours.grad, h0_ref.grad[0], **TOL)


# -- d2l variant == a transcription of d2l's code -----------------------------------------


def d2l_gru(
    p: dict[str, Tensor], tokens: Tensor, H: Tensor
) -> tuple[Tensor, Tensor, dict[str, list[Tensor]]]:
    """d2l's gru() (section 10.2.4) over one-hot inputs, plus the gates it computes."""
    gates: dict[str, list[Tensor]] = {"Z": [], "R": [], "H_tilde": []}
    outputs = []
    for X in F.one_hot(tokens.T, p["W_xz"].shape[0]).double():
        Z = torch.sigmoid((X @ p["W_xz"]) + (H @ p["W_hz"]) + p["b_z"])
        R = torch.sigmoid((X @ p["W_xr"]) + (H @ p["W_hr"]) + p["b_r"])
        H_tilde = torch.tanh((X @ p["W_xh"]) + ((R * H) @ p["W_hh"]) + p["b_h"])
        H = Z * H + (1 - Z) * H_tilde
        Y = H @ p["W_hq"] + p["b_q"]
        outputs.append(Y)
        for name, value in zip(gates, (Z, R, H_tilde), strict=True):
            gates[name].append(value)
    return torch.cat(outputs, dim=0), H, gates


def test_d2l_gru_matches_transcription_of_d2l() -> None:
    model = make_model("gru-d2l")
    tokens, (H0,) = random_inputs(model, seed=11)
    params = {n: p.detach() for n, p in model.named_parameters()}
    ref_logits, ref_H, ref_gates = d2l_gru(params, tokens, H0)
    with torch.no_grad():
        out = model(tokens, (H0,), trace=True)
    # d2l concatenates time-major: row t*B + b is (step t, sequence b).
    torch.testing.assert_close(out.logits.reshape(T * B, V), ref_logits, **TOL)
    torch.testing.assert_close(out.state[0], ref_H, **TOL)
    assert out.gates is not None
    for name, values in ref_gates.items():
        torch.testing.assert_close(out.gates[name], torch.stack(values), **TOL)


def test_d2l_and_cudnn_variants_are_different_functions() -> None:
    d2l = make_model("gru-d2l")
    cudnn = GRUScratch(V, HN, 0.5, variant="cudnn").double()
    with torch.no_grad():
        for name, p in d2l.named_parameters():
            if name != "b_h":
                getattr(cudnn, name).copy_(p)
        cudnn.b_xh.copy_(d2l.b_h)
        cudnn.b_hh.zero_()  # even with no recurrent bias, (R*H) W_hh != R * (H W_hh)
        tokens, state = random_inputs(d2l, seed=12)
        a, b = d2l(tokens, state), cudnn(tokens, state)
        assert (a.logits - b.logits).abs().max() > 1e-3
        assert (a.state[0] - b.state[0]).abs().max() > 1e-3
        # With R == 1 (b_r huge) the reset gate is a no-op and the two conventions agree.
        for m in (d2l, cudnn):
            m.b_r.fill_(40.0)
        a, b = d2l(tokens, state), cudnn(tokens, state)
        torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=1e-9)


def test_build_model_follows_config() -> None:
    cudnn = build_model(TrainConfig(hidden_size=8, gru_variant="cudnn"), 10)
    assert isinstance(cudnn, GRUScratch) and cudnn.variant == "cudnn"
    assert isinstance(build_model(TrainConfig(hidden_size=8, model="rnn"), 10), RNNScratch)
    assert isinstance(build_model(TrainConfig(hidden_size=8, model="lstm"), 10), LSTMScratch)
    with pytest.raises(ValueError, match="gru_variant"):
        GRUScratch(10, 8, variant="pytorch")


# -- outputs, names, initialisation -------------------------------------------------------

GATES = {
    "gru-d2l": ("Z", "R", "H_tilde"),
    "gru-cudnn": ("Z", "R", "H_tilde"),
    "rnn": (),
    "lstm": ("I", "F", "O", "C_tilde"),
    "gru_reset_only-d2l": ("R", "H_tilde"),
    "gru_reset_only-cudnn": ("R", "H_tilde"),
    "gru_update_only-d2l": ("Z", "H_tilde"),
    "gru_update_only-cudnn": ("Z", "H_tilde"),
}


@pytest.mark.parametrize("kind", KINDS + HALF_KINDS)
def test_forward_shapes_and_trace(kind: str) -> None:
    model = make_model(kind)
    tokens, state = random_inputs(model)
    with torch.no_grad():
        traced = model(tokens, state, trace=True)
        plain = model(tokens, state)
        from_zero = model(tokens)  # state None = zeros
        zeros = model(tokens, model.init_state(B))
    assert traced.logits.shape == (T, B, V)
    assert plain.gates is None
    assert traced.gates is not None and tuple(traced.gates) == GATES[kind]
    for name, g in traced.gates.items():
        assert g.shape == (T, B, HN), name
    assert len(traced.state) == model.state_size
    assert all(s.shape == (B, HN) for s in traced.state)
    torch.testing.assert_close(plain.logits, traced.logits, **TOL)
    torch.testing.assert_close(from_zero.logits, zeros.logits, **TOL)
    # Every gate lives in its registry range: (0, 1) for sigmoid gates, (-1, 1) for tanh.
    for name, g in traced.gates.items():
        lo, hi = gate_registry(name).range
        assert g.min() >= lo and g.max() <= hi, name
    # The hidden states H_1..H_T: the last one is the final state; the output layer reads them.
    assert traced.hiddens.shape == (T, B, HN)
    torch.testing.assert_close(traced.hiddens[-1], traced.state[0], **TOL)
    torch.testing.assert_close(traced.hiddens @ model.W_hq + model.b_q, traced.logits, **TOL)


def test_gru_parameter_names_are_the_maths() -> None:
    d2l = GRUScratch(V, HN)
    assert {n for n, _ in d2l.named_parameters()} == {
        "W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h", "W_hq", "b_q",
    }  # fmt: skip
    cudnn = GRUScratch(V, HN, variant="cudnn")
    names = {n for n, _ in cudnn.named_parameters()}
    assert "b_h" not in names and {"b_xh", "b_hh"} <= names
    shapes = {n: tuple(p.shape) for n, p in d2l.named_parameters()}
    assert shapes["W_xz"] == (V, HN) and shapes["W_hz"] == (HN, HN) and shapes["b_z"] == (HN,)
    assert shapes["W_hq"] == (HN, V) and shapes["b_q"] == (V,)


@pytest.mark.parametrize("init_std", [0.01, 0.5])
@pytest.mark.parametrize("kind", KINDS)
def test_initialisation_weights_normal_biases_zero(kind: str, init_std: float) -> None:
    torch.manual_seed(0)
    vocab, hidden = 28, 256
    if kind.startswith("gru"):
        model: RecurrentLM = GRUScratch(vocab, hidden, init_std, variant=kind.split("-")[1])
    elif kind == "rnn":
        model = RNNScratch(vocab, hidden, init_std)
    else:
        model = LSTMScratch(vocab, hidden, init_std)
    for name, p in model.named_parameters():
        assert p.dtype == torch.float32
        if name.startswith("b_"):
            assert torch.count_nonzero(p) == 0, name
        else:
            assert abs(p.std().item() - init_std) < 0.1 * init_std, name
            assert abs(p.mean().item()) < 0.1 * init_std, name


@pytest.mark.parametrize("kind", ["gru-d2l", "gru-cudnn"])
def test_update_gate_one_keeps_the_old_state(kind: str) -> None:
    model = make_model(kind)
    with torch.no_grad():
        model.b_z.fill_(30.0)  # Z ~ 1 - 1e-13
        tokens, (H0,) = random_inputs(model, seed=4)
        out = model(tokens, (H0,), trace=True)
    assert out.gates is not None and out.gates["Z"].min() > 1 - 1e-12
    torch.testing.assert_close(out.state[0], H0, rtol=0, atol=1e-10)
    # And the opposite: Z ~ 0 takes the candidate, H_T == H_tilde_T.
    with torch.no_grad():
        model.b_z.fill_(-30.0)
        out = model(tokens, (H0,), trace=True)
    assert out.gates is not None
    torch.testing.assert_close(out.state[0], out.gates["H_tilde"][-1], rtol=0, atol=1e-10)
    assert (out.state[0] - H0).abs().max() > 1e-2


def test_the_init_rule_draws_weights_in_order_from_its_generator() -> None:
    """W = randn(shape, generator) * std in the order given, b = 0, on the CPU in float32;
    the process-wide generator is neither read nor advanced."""
    shapes = [("W_xz", (4, 3)), ("b_z", (3,)), ("W_hq", (3, 4)), ("b_q", (4,))]
    before = torch.get_rng_state()
    got = initial_parameters(shapes, 0.25, run_generator(5))
    assert torch.equal(torch.get_rng_state(), before)
    g = torch.Generator().manual_seed(5)
    W_xz, W_hq = torch.randn(4, 3, generator=g) * 0.25, torch.randn(3, 4, generator=g) * 0.25
    assert list(got) == ["W_xz", "b_z", "W_hq", "b_q"]
    assert torch.equal(got["W_xz"], W_xz) and torch.equal(got["W_hq"], W_hq)
    assert torch.equal(got["b_z"], torch.zeros(3)) and torch.equal(got["b_q"], torch.zeros(4))
    assert all(v.dtype == torch.float32 and v.device.type == "cpu" for v in got.values())


@pytest.mark.parametrize("kind", KINDS + HALF_KINDS)
def test_models_are_initialised_by_the_rule(kind: str) -> None:
    """Every model's parameters are ``initial_parameters`` of its named shapes: from the
    generator given, or from the run's own (``run_generator(config.seed)``) in build_model."""
    model_name, _, variant = kind.partition("-")
    config = TrainConfig(hidden_size=6, init_std=0.2, seed=3, model=model_name)
    if variant:
        config = config.replace(gru_variant=variant)
    before = torch.get_rng_state()
    model = build_model(config, V)
    assert torch.equal(torch.get_rng_state(), before)
    shapes = [(n, p.shape) for n, p in model.named_parameters()]
    expected = initial_parameters(shapes, 0.2, run_generator(3))
    for name, p in model.named_parameters():
        assert torch.equal(p.detach(), expected[name]), name
    other = build_model(config, V, generator=run_generator(4))
    assert not torch.equal(other.W_hq, model.W_hq)
    with torch.device("meta"):  # a skeleton: names and shapes, no values drawn
        skeleton = build_model(config, V)
    assert [n for n, _ in skeleton.named_parameters()] == [n for n, _ in shapes]
