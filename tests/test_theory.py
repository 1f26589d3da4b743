"""The largest Lyapunov exponent of the untrained recurrence (gru_core/theory.py) against
references: the engine's own forward pass (torch.func.jvp and finite differences), and the
linear recurrence at the zero state, whose exponent is the log of a known spectral radius."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.func import jvp

from gru_core.config import TrainConfig
from gru_core.data import Corpus
from gru_core.model.cells import RecurrentLM, build_model
from gru_core.step.core import StepCore
from gru_core.theory import (
    State,
    edge_of_chaos,
    initial_weights,
    log_growth,
    lyapunov_exponent,
    lyapunov_exponents,
    tangent_step,
)

F64 = torch.float64
# (model, gru_variant): every recurrence the module covers
KINDS = [("gru", "d2l"), ("gru", "cudnn"), ("rnn", "d2l"), ("lstm", "d2l")]
# half a GRU (d2l's exercise 4): Z = 0 or R = 1, in both conventions
KINDS += [(m, v) for m in ("gru_reset_only", "gru_update_only") for v in ("d2l", "cudnn")]
IDS = [m if m in ("rnn", "lstm") else f"{m}-{v}" for m, v in KINDS]


def engine_model(model: str, variant: str, weights: dict[str, Tensor], k: int) -> RecurrentLM:
    """The engine's model (cells.py) in float64 holding member k of ``weights``."""
    hidden, vocab = weights["W_hq"].shape[1:]
    config = TrainConfig(model=model, gru_variant=variant, hidden_size=hidden)
    net = build_model(config, vocab).double()
    net.load_state_dict({name: W[k] for name, W in weights.items()})
    return net.requires_grad_(False)


def unit_tangent(parts: int, K: int, hidden: int, seed: int) -> State:
    v = torch.randn(K, parts, hidden, generator=torch.Generator().manual_seed(seed), dtype=F64)
    v = v / torch.linalg.vector_norm(v, dim=(1, 2), keepdim=True)
    return tuple(v[:, i : i + 1] for i in range(parts))


def with_random_biases(weights: dict[str, Tensor], seed: int) -> dict[str, Tensor]:
    """Biases start at 0; non-zero ones exercise every term of the JVPs (b_hh in cudnn's)."""
    g = torch.Generator().manual_seed(seed)
    return {
        n: torch.randn(W.shape, generator=g, dtype=F64) * 0.3 if n.startswith("b_") else W
        for n, W in weights.items()
    }


@pytest.mark.parametrize(("model", "variant"), KINDS, ids=IDS)
def test_one_step_equals_jvp_of_the_engines_forward(
    small_corpus: Corpus, model: str, variant: str
) -> None:
    V, hidden, K = len(small_corpus.vocab), 12, 2
    weights = initial_weights(model, hidden, 0.4, V, seeds=K, gru_variant=variant, dtype=F64)
    weights = with_random_biases(weights, seed=5)
    parts = 2 if model == "lstm" else 1
    g = torch.Generator().manual_seed(3)
    state = tuple(torch.randn(K, 1, hidden, generator=g, dtype=F64) * 0.5 for _ in range(parts))
    tangent = unit_tangent(parts, K, hidden, seed=4)
    inputs = small_corpus.tokens[100 : 100 + 2 * K].view(2, K)  # step 0 reads row 0
    got_state, got_u = tangent_step(model, weights, inputs, variant)(0, state, tangent)
    for k in range(K):
        net = engine_model(model, variant, weights, k)
        x = inputs[0, k].view(1, 1)

        def f(*s: Tensor, net: RecurrentLM = net, x: Tensor = x) -> tuple[Tensor, ...]:
            return net(x, tuple(s)).state

        want_state, want_u = jvp(f, tuple(s[k] for s in state), tuple(v[k] for v in tangent))
        for got, want in zip((*got_state, *got_u), (*want_state, *want_u), strict=True):
            torch.testing.assert_close(got[k], want, rtol=0.0, atol=1e-12)


# The reset-only GRU contracts about e^-0.6 a step here: after 25 steps the two trajectories
# differ by ~1e-13, float64's roundoff, so finite differences cannot check it; the JVP test does.
FD_KINDS = [(k, i) for k, i in zip(KINDS, IDS, strict=True) if k[0] != "gru_reset_only"]


@pytest.mark.parametrize(
    ("model", "variant"), [k for k, _ in FD_KINDS], ids=[i for _, i in FD_KINDS]
)
def test_growth_equals_finite_differences_of_the_engines_trajectories(
    small_corpus: Corpus, model: str, variant: str
) -> None:
    """Perturb H_0 by +-eps along v_0, run the engine's forward pass over T characters from
    both, and compare log(||H_T' - H_T|| / eps) with the sum of the renormalised JVP growths."""
    V, hidden, K, T, eps = len(small_corpus.vocab), 16, 2, 25, 1e-6
    weights = initial_weights(model, hidden, 0.3, V, seeds=K, gru_variant=variant, dtype=F64)
    parts = 2 if model == "lstm" else 1
    inputs = small_corpus.tokens[: T * K].view(K, T).T.contiguous()  # (T, K)
    state = tuple(torch.zeros(K, 1, hidden, dtype=F64) for _ in range(parts))
    tangent = unit_tangent(parts, K, hidden, seed=7)
    g = log_growth(tangent_step(model, weights, inputs, variant), T, state, tangent)
    assert g.shape == (T, K) and g.dtype == F64
    for k in range(K):
        net = engine_model(model, variant, weights, k)
        tokens = inputs[:, k].view(1, T)

        def end(sign: float, net: RecurrentLM = net, tokens: Tensor = tokens, k: int = k) -> Tensor:
            s0 = tuple(s[k] + sign * eps * v[k] for s, v in zip(state, tangent, strict=True))
            return torch.cat(net(tokens, s0).state, dim=1)

        finite_difference = torch.linalg.vector_norm(end(1.0) - end(-1.0)) / (2 * eps)
        rate_fd = math.log(float(finite_difference)) / T
        rate_jvp = float(g[:, k].sum()) / T  # the renormalisations telescope
        assert abs(rate_fd) > 0.01  # a real growth or decay, not a flat trajectory
        assert rate_jvp == pytest.approx(rate_fd, abs=1e-6)


@pytest.mark.parametrize("model", ["gru", "rnn"])
def test_exponent_equals_a_two_trajectory_estimate(time_machine: Corpus, model: str) -> None:
    """lambda from the public function (float32 JVPs) against Benettin's finite-difference
    method on the engine's float64 forward: a copy eps away, pulled back every step."""
    V, hidden, steps, burn_in, eps = len(time_machine.vocab), 32, 300, 50, 1e-7
    tokens = time_machine.tokens[: burn_in + steps]  # exactly the length: offset 0
    for std in (0.05, 0.3):
        got = lyapunov_exponents(model, hidden, std, tokens, V, steps=steps, burn_in=burn_in)
        weights = initial_weights(model, hidden, std, V, dtype=F64)
        for k in range(3):
            net = engine_model(model, "d2l", weights, k)
            H = torch.zeros(1, hidden, dtype=F64)
            d = unit_tangent(1, 1, hidden, seed=k)[0][0] * eps
            logs = []
            for t in range(burn_in + steps):
                x = tokens[t].view(1, 1)
                H, H_near = net(x, (H,)).state[0], net(x, (H + d,)).state[0]
                gap = float(torch.linalg.vector_norm(H_near - H))
                logs.append(math.log(gap / eps))
                d = (H_near - H) * (eps / gap)
            want = sum(logs[burn_in:]) / steps
            assert float(got[k]) == pytest.approx(want, abs=0.02)


def zero_state_weights(model: str, W_hh: Tensor, vocab: int = 5) -> dict[str, Tensor]:
    """Weights with no input (W_x* = 0) and zero biases around a given W_hh (the GRU's W_hz
    and W_hr zero too): from H_0 = 0 the state stays 0, where the recurrence is linear."""
    hidden = W_hh.shape[0]
    weights = initial_weights(model, hidden, 0.1, vocab, seeds=1, dtype=F64)
    weights = {n: torch.zeros_like(W) for n, W in weights.items()}
    weights["W_hh"] = W_hh.unsqueeze(0)
    return weights


def matrix_with_spectrum(eigenvalues: list[float], seed: int) -> Tensor:
    """S diag(eigenvalues) S^-1 for a random S: not normal, so its spectral norm exceeds its
    spectral radius and only the radius gives the exponent."""
    n = len(eigenvalues)
    S = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=F64) + 2 * torch.eye(
        n, dtype=F64
    )
    return S @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ torch.linalg.inv(S)


def exponent_at_zero(model: str, W_hh: Tensor, steps: int) -> float:
    hidden = W_hh.shape[0]
    step = tangent_step(
        model, zero_state_weights(model, W_hh), torch.zeros(steps, 1, dtype=torch.long)
    )
    state = (torch.zeros(1, 1, hidden, dtype=F64),)
    g = log_growth(step, steps, state, unit_tangent(1, 1, hidden, seed=0))
    return float(g[50:].mean())


def test_linear_rnn_exponent_is_log_spectral_radius() -> None:
    """With no input the tanh RNN stays at H = 0, where tanh' = 1: H_t = H_{t-1} W_hh, a
    linear RNN, and lambda = log rho(W_hh)."""
    eigenvalues = [0.8, -0.6, 0.5, 0.3, -0.2, 0.1, 0.05, 0.0]
    W_hh = matrix_with_spectrum(eigenvalues, seed=1)
    assert float(torch.linalg.matrix_norm(W_hh, ord=2)) > 1.2  # the norm would say "grows"
    assert exponent_at_zero("rnn", W_hh, 400) == pytest.approx(math.log(0.8), abs=1e-6)
    W_big = matrix_with_spectrum([1.5, *eigenvalues[1:]], seed=2)
    assert exponent_at_zero("rnn", W_big, 400) == pytest.approx(math.log(1.5), abs=1e-6)


def test_random_linear_rnn_exponent_is_log_spectral_radius() -> None:
    """A Gaussian W_hh (its top eigenvalues may be a complex pair: the norm then turns as it
    grows, and only the average growth is log rho)."""
    W_hh = torch.randn(64, 64, generator=torch.Generator().manual_seed(0), dtype=F64) / 8
    rho = float(torch.linalg.eigvals(W_hh).abs().max())
    assert exponent_at_zero("rnn", W_hh, 3000) == pytest.approx(math.log(rho), abs=0.01)


def test_gru_at_zero_state_is_linear_with_half_gates() -> None:
    """At H = 0 with no input, Z = R = 1/2 and H~ = 0: J = I/2 + W_hh/4 (rows convention),
    the linearisation behind the GRU's edge near 2/sqrt(H): lambda = log max |1/2 + mu/4|."""
    eigenvalues = [3.0, -2.5, 1.0, 0.4, -0.3, 0.0]
    W_hh = matrix_with_spectrum(eigenvalues, seed=3)
    want = math.log(max(abs(0.5 + mu / 4) for mu in eigenvalues))
    assert exponent_at_zero("gru", W_hh, 400) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("model", ["gru", "rnn"])
def test_exponent_increases_with_init_std(small_corpus: Corpus, model: str) -> None:
    V = len(small_corpus.vocab)
    stds = [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
    lams = [lyapunov_exponent(model, 64, s, small_corpus.tokens, V) for s in stds]
    assert all(a < b for a, b in zip(lams[:-1], lams[1:], strict=True)), lams
    assert lams[0] < -0.5 and lams[-1] > 0.5  # clearly vanishing, then clearly exploding


@pytest.mark.parametrize("model", ["gru", "rnn"])
def test_edge_of_chaos_at_the_books_hidden_size(time_machine: Corpus, model: str) -> None:
    V, hidden = len(time_machine.vocab), 256
    tokens = time_machine.tokens[:10_000]
    edge = edge_of_chaos(model, hidden, tokens, V)
    assert edge is not None
    assert 0.5 / math.sqrt(hidden) < edge < 4 / math.sqrt(hidden)
    # it is a crossing: below it lambda < 0, above it lambda > 0
    assert lyapunov_exponent(model, hidden, edge / 1.2, tokens, V) < 0
    assert lyapunov_exponent(model, hidden, edge * 1.2, tokens, V) > 0


def test_edge_of_chaos_is_none_without_a_crossing(small_corpus: Corpus) -> None:
    V, tokens = len(small_corpus.vocab), small_corpus.tokens
    assert edge_of_chaos("rnn", 32, tokens, V, low=1e-3, high=1e-2) is None  # all vanishing
    assert edge_of_chaos("rnn", 32, tokens, V, low=1.0, high=3.0) is None  # all exploding


def test_deterministic_given_the_seeds_and_leaves_the_global_generator(
    small_corpus: Corpus,
) -> None:
    V, tokens = len(small_corpus.vocab), small_corpus.tokens
    before = torch.random.get_rng_state()
    a = lyapunov_exponents("gru", 32, 0.2, tokens, V, seeds=3)
    b = lyapunov_exponents("gru", 32, 0.2, tokens, V, seeds=3)
    assert torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), before)
    # seed s is the same network and text whether it is computed alone or in a batch
    alone = lyapunov_exponents("gru", 32, 0.2, tokens, V, seeds=1, seed=1)
    torch.testing.assert_close(alone, a[1:2], rtol=1e-5, atol=1e-6)
    assert len(set(a.tolist())) == 3  # each seed its own weights, text and tangent


def test_a_text_shorter_than_the_probe_is_cycled(small_corpus: Corpus) -> None:
    V, tokens = len(small_corpus.vocab), small_corpus.tokens
    short = lyapunov_exponents("rnn", 16, 0.2, tokens[:40], V, steps=100, burn_in=10)
    cycled = lyapunov_exponents("rnn", 16, 0.2, tokens[:40].repeat(3)[:110], V, steps=100,
                                burn_in=10)  # fmt: skip
    assert torch.isfinite(short).all()
    torch.testing.assert_close(short, cycled)  # offset 0 either way: the same 110 characters


def test_weights_are_the_engines_draw_for_each_seed(small_corpus: Corpus) -> None:
    V = len(small_corpus.vocab)
    weights = initial_weights("gru", 16, 0.05, V, seeds=3, seed=4)
    for k in range(3):
        run = StepCore([TrainConfig(hidden_size=16, init_std=0.05, seed=4 + k)], V, "cpu")
        for name, W in weights.items():
            assert torch.equal(W[k], run.params[name][0]), name


def test_bad_arguments_raise_value_errors(small_corpus: Corpus) -> None:
    V, tokens = len(small_corpus.vocab), small_corpus.tokens
    with pytest.raises(ValueError, match="model='transformer'"):
        lyapunov_exponent("transformer", 16, 0.1, tokens, V)
    with pytest.raises(ValueError, match="vocab_size"):
        lyapunov_exponent("gru", 16, 0.1, tokens, 3)
    with pytest.raises(ValueError, match="steps=0"):
        lyapunov_exponent("gru", 16, 0.1, tokens, V, steps=0)
    with pytest.raises(ValueError, match="init_std"):
        lyapunov_exponent("gru", 16, -1.0, tokens, V)
    weights = initial_weights("gru", 16, 0.1, V, seeds=1)
    with pytest.raises(ValueError, match="gru_variant='flipped'"):
        tangent_step("gru", weights, tokens[:10].view(10, 1), "flipped")
    with pytest.raises(ValueError, match="low"):
        edge_of_chaos("gru", 16, tokens, V, low=1.0, high=0.1)
