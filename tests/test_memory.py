"""The memory engine against references: connectivity against the textbook GRU (float64, an
independent autograd computation) and a hand-written RNN backward, its position on a trained
copy task, activations against forward's hiddens, top-5 against softmax, a planted unit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from gru_core import memory
from gru_core.config import TrainConfig
from gru_core.data import Vocab
from gru_core.memory import (
    PRESETS,
    analyse,
    connectivity,
    encode_passage,
    input_gradients,
    model_from_weights,
    pattern_mask,
    rank_units,
    reach,
    top_next,
)
from gru_core.model import textbook
from gru_core.model.cells import GRUScratch, LSTMScratch, RecurrentLM, RNNScratch, build_model

from helpers import reference_model

TEXT = "the time traveller for so it will be convenient to speak of him was expounding"
VOCAB = Vocab(TEXT)


def seeded(model: RecurrentLM, seed: int, std: float = 0.5, bias: float = 0.3) -> RecurrentLM:
    """``model`` with weights ~ N(0, std^2) and biases ~ N(0, bias^2) from its own generator."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = bias if name.startswith("b_") else std
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return model


@torch.no_grad()
def hidden_activations(model: RecurrentLM, tokens: Tensor) -> np.ndarray:
    """H_1..H_T of ``tokens`` (T,) read from a zero state: (T, H) float64 (forward's hiddens)."""
    return model(tokens[None]).hiddens[:, 0].double().cpu().numpy()


def tokens_of(text: str) -> Tensor:
    return encode_passage(VOCAB, text).tokens


# -- connectivity against references -----------------------------------------------------------


def textbook_connectivity(model: GRUScratch, tokens: Tensor, t: int) -> np.ndarray:
    """||d log p(x_{t+1}) / d e_s|| by the book's one-hot GRU, independently of memory.py.

    The one-hot input X_s (V,) is widened by a position indicator (T,), and each W_x* by a
    (T, H) block P_* of zeros: X'_s W'_x* = X_s W_x* + P_*[s], so d/dP_*[s] = d/de_s.
    """
    T, V = len(tokens), model.vocab_size
    X = torch.cat([F.one_hot(tokens, V), torch.eye(T, dtype=torch.int64)], 1).double()
    params = {n: p.detach().double() for n, p in model.named_parameters()}
    P = {
        n: torch.zeros(T, model.hidden_size, dtype=torch.float64, requires_grad=True)
        for n in ("W_xz", "W_xr", "W_xh")
    }
    wide = params | {n: torch.cat([params[n], P[n]]) for n in P}
    H0 = torch.zeros(1, model.hidden_size, dtype=torch.float64)
    logits, _ = textbook.gru(X[:, None], (H0,), wide)
    log_p = torch.log_softmax(logits[t], 0)[tokens[t + 1]]
    grads = torch.autograd.grad(log_p, list(P.values()))
    full = torch.cat(grads, 1).norm(dim=1).numpy()
    assert np.all(full[t + 1 :] == 0.0)  # nothing after t can matter
    return full[: t + 1]


def test_connectivity_equals_the_textbook_gru_in_float64() -> None:
    model = seeded(GRUScratch(len(VOCAB), 6, variant="d2l").double(), seed=0)
    tokens = tokens_of(TEXT[:24])
    for t in (0, 5, 22):
        ours = connectivity(model, tokens, t)
        assert ours.shape == (t + 1,)
        np.testing.assert_allclose(
            ours, textbook_connectivity(model, tokens, t), rtol=0, atol=1e-10
        )


def test_rnn_connectivity_equals_a_hand_written_backward() -> None:
    """H_s = tanh(A_s), A_s = e_s + H_{s-1} W_hh + b_h: d/de_s = dA_s, back-propagated by hand."""
    model = seeded(RNNScratch(len(VOCAB), 5).double(), seed=1)
    tokens, t = tokens_of("time traveller"), 9
    W_hh, W_hq = model.W_hh.detach().numpy(), model.W_hq.detach().numpy()
    H = hidden_activations(model, tokens)[: t + 1]
    logits = H[t] @ W_hq + model.b_q.detach().numpy()
    p = np.exp(logits - logits.max())
    p /= p.sum()
    dH = W_hq @ (np.eye(len(VOCAB))[int(tokens[t + 1])] - p)  # d log p / d H_t
    expected = np.zeros(t + 1)
    for s in range(t, -1, -1):
        dA = dH * (1.0 - H[s] ** 2)
        expected[s] = np.linalg.norm(dA)
        dH = W_hh @ dA
    np.testing.assert_allclose(connectivity(model, tokens, t), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["gru-d2l", "gru-cudnn", "rnn", "lstm"])
def test_positions_sum_to_the_parameter_gradient(kind: str) -> None:
    """Every occurrence of a character uses the same row W_x*[c], so sum over s with x_s = c
    of d/de_s must equal autograd's gradient w.r.t. that row through the ordinary forward."""
    V = len(VOCAB)
    model: RecurrentLM = {
        "gru-d2l": lambda: GRUScratch(V, 4, variant="d2l"),
        "gru-cudnn": lambda: GRUScratch(V, 4, variant="cudnn"),
        "rnn": lambda: RNNScratch(V, 4),
        "lstm": lambda: LSTMScratch(V, 4),
    }[kind]()
    model = seeded(model.double(), seed=2)
    tokens, t = tokens_of("the time traveller"), 14
    ours = input_gradients(model, tokens, t)
    names = [n for n, _ in model.named_parameters() if n.startswith("W_x")]
    params = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters()}
    out = functional_call(model, params, (tokens[None, : t + 1],))
    log_p = torch.log_softmax(out.logits[t, 0], 0)[tokens[t + 1]]
    ref = torch.cat(torch.autograd.grad(log_p, [params[n] for n in names]), 1)  # (V, G*H)
    summed = torch.zeros_like(ref).index_add_(0, tokens[: t + 1], ours)
    torch.testing.assert_close(summed, ref, rtol=0, atol=1e-12)
    # per position: the hand-written GRU/RNN backward equals autograd through forward
    by_autograd = memory._autograd_input_grads(model, tokens[: t + 1], int(tokens[t + 1]))
    torch.testing.assert_close(ours, by_autograd, rtol=0, atol=1e-12)
    assert model.W_hq.grad is None  # the model's own parameters are never touched


def _numpy_input_gradients(model: RecurrentLM, tokens: Tensor, t: int) -> np.ndarray:
    """What memory.py computed before it reused the step core's derivative: its own numpy
    backward (float64) from the traced gates of one float32-or-64 forward, kept here as a
    regression reference. Returns (t+1, G*H)."""
    with torch.no_grad():
        out = model(tokens[None], trace=True)
    w = {n: p.detach().double().numpy() for n, p in model.named_parameters()}
    H = out.hiddens[: t + 1, 0].double().numpy()
    H_prev = np.vstack([np.zeros((1, H.shape[1])), H[:-1]])
    p = torch.softmax(out.logits[t, 0].double(), dim=0).numpy()
    dH = w["W_hq"] @ (np.eye(len(p))[int(tokens[t + 1])] - p)
    if isinstance(model, RNNScratch):
        grad = np.empty_like(H)
        for s in range(len(H) - 1, -1, -1):
            grad[s] = dA = dH * (1.0 - H[s] ** 2)
            dH = w["W_hh"] @ dA
        return grad
    assert isinstance(model, GRUScratch) and out.gates is not None
    Z, R, Ht = (out.gates[k][: t + 1, 0].double().numpy() for k in ("Z", "R", "H_tilde"))
    Hn = Z.shape[1]
    grad = np.empty((t + 1, 3 * Hn))
    U = H_prev @ w["W_hh"] + w["b_hh"] if model.variant == "cudnn" else None
    for s in range(t, -1, -1):
        dZ, dA_h = dH * (H_prev[s] - Ht[s]), dH * (1.0 - Z[s]) * (1.0 - Ht[s] ** 2)
        dH_prev = dH * Z[s]
        if U is None:  # d2l: A_h = e_h + (R * H_prev) W_hh + b_h
            dRH = w["W_hh"] @ dA_h
            dR = dRH * H_prev[s]
            dH_prev += dRH * R[s]
        else:  # cudnn: A_h = e_h + b_xh + R * (H_prev W_hh + b_hh)
            dR = dA_h * U[s]
            dH_prev += w["W_hh"] @ (dA_h * R[s])
        dA_z, dA_r = dZ * Z[s] * (1.0 - Z[s]), dR * R[s] * (1.0 - R[s])
        dH_prev += w["W_hz"] @ dA_z + w["W_hr"] @ dA_r
        grad[s] = np.concatenate([dA_z, dA_r, dA_h])
        dH = dH_prev
    return grad


@pytest.mark.parametrize("kind", ["gru-d2l", "gru-cudnn", "rnn"])
def test_connectivity_is_the_step_cores_derivative(kind: str) -> None:
    """memory's input gradient is ``step/backward.input_gradients``: equal to autograd through
    the reference model (float64), and to what memory's own numpy backward computed before
    (float64 to rounding; a float32 model to float32 precision)."""
    model = reference_model(kind, len(VOCAB), 5, init_std=0.5, seed=4)  # float64
    tokens, t = tokens_of("the time traveller for so"), 20
    ours = input_gradients(model, tokens, t)
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    names = [n for n in params if n.startswith("W_x")]
    rows = {n: params[n][tokens[: t + 1]].clone().requires_grad_(True) for n in names}
    positions = torch.arange(t + 1)[None]  # row s of each leaf is e_s itself
    out = functional_call(model, params | rows, (positions,))
    log_p = torch.log_softmax(out.logits[t, 0], 0)[tokens[t + 1]]
    by_autograd = torch.cat(torch.autograd.grad(log_p, [rows[n] for n in names]), 1)
    torch.testing.assert_close(ours, by_autograd, rtol=0, atol=1e-12)
    before = _numpy_input_gradients(model, tokens, t)
    np.testing.assert_allclose(ours.numpy(), before, rtol=0, atol=1e-12)
    small = model.float()
    ours32 = input_gradients(small, tokens, t)
    assert ours32.dtype == torch.float32
    scale = np.abs(before).max()
    np.testing.assert_allclose(ours32.numpy(), _numpy_input_gradients(small, tokens, t),
                               rtol=0, atol=1e-5 * scale)  # fmt: skip


def test_last_position_targets_the_models_own_guess() -> None:
    model = seeded(GRUScratch(len(VOCAB), 6).double(), seed=3)
    tokens = tokens_of("time trav")
    T = len(tokens)
    logits = model(tokens[None]).logits[:, 0]
    guess = int(logits[-1].argmax())
    # the same as asking for that guess as the next character of a one-longer passage
    longer = torch.cat([tokens, torch.tensor([guess])])
    np.testing.assert_allclose(
        connectivity(model, tokens, T - 1), connectivity(model, longer, T - 1)
    )
    np.testing.assert_array_equal(connectivity(model, tokens, -1), connectivity(model, tokens))
    with pytest.raises(ValueError, match="outside"):
        connectivity(model, tokens, T)


# -- a copy task: the connectivity peaks where the answer is -----------------------------------

S, NOISE, K, T_COPY, B_COPY = 4, 4, 4, 16, 32  # signal symbols, noise symbols, lag, length, batch


def copy_batch(g: torch.Generator, n: int) -> tuple[Tensor, Tensor]:
    """Noise symbols, one signal symbol a at a random p and again at p + K (x_{p+K} = x_p).
    Returns tokens (n, T) and the query positions t = p + K - 1, whose next character is a."""
    x = torch.randint(S, S + NOISE, (n, T_COPY), generator=g)
    a = torch.randint(0, S, (n,), generator=g)
    p = torch.randint(0, T_COPY - K, (n,), generator=g)
    rows = torch.arange(n)
    x[rows, p], x[rows, p + K] = a, a
    return x, p + K - 1


def test_connectivity_peaks_k_steps_back_on_a_copy_task() -> None:
    """A GRU trained to predict x_{p+K} = x_p depends most on s = t - K + 1 for t = p + K - 1.

    Training jitters every input row e_s with N(0, 1) noise. Without it the model only ever
    sees eight discrete rows, its gradient in other directions is unconstrained, and the
    connectivity of a well-trained latch is nearly flat; with it, inputs that carry nothing
    are learned to be ignored. Single sequences still vary (the input just before the signal
    often comes second), so the test reads the mean profile by distance from t.
    """
    g = torch.Generator().manual_seed(0)
    model = seeded(GRUScratch(S + NOISE, 16), seed=0, std=0.3, bias=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    positions = torch.arange(B_COPY * T_COPY).reshape(B_COPY, T_COPY)
    rows = torch.arange(B_COPY)
    for _ in range(200):
        x, q = copy_batch(g, B_COPY)
        params = dict(model.named_parameters())
        for n in ("W_xz", "W_xr", "W_xh"):  # position i reads row i: e = W[x] + noise
            params[n] = params[n][x.reshape(-1)] + torch.randn(B_COPY * T_COPY, 16, generator=g)
        logits = functional_call(model, params, (positions,)).logits  # (T, B, V)
        loss = F.cross_entropy(logits[q, rows], x[rows, q + 1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
    model = model.double()
    x, q = copy_batch(torch.Generator().manual_seed(99), 20)
    peaks, profile = 0, np.zeros(T_COPY)
    for tokens, t in zip(x, q.tolist(), strict=True):
        c = connectivity(model, tokens, t)
        peaks += int(np.argmax(c)) == t - K + 1
        profile[: t + 1] += c[::-1] / c.sum()  # profile[d]: share d characters back
    assert int(np.argmax(profile)) == K - 1  # on average, exactly K - 1 back from t
    assert profile[K - 1] > 1.3 * np.delete(profile, K - 1).max()  # clearly so
    assert peaks >= 12, peaks  # and in most single sequences (14 of 20 with this seed)


# -- reach ---------------------------------------------------------------------------------------


def test_reach() -> None:
    assert reach(np.array([0.0, 0.0, 1.0])) == 1  # all on the target itself
    assert reach(np.array([1.0, 0.0, 0.0, 0.0])) == 4
    assert reach(np.array([0.05, 0.9, 0.05])) == 2  # 0.95 within 2
    assert reach(np.array([0.1] * 10)) == 9
    assert reach(np.array([0.1] * 10), share=1.0) == 10
    assert reach(np.zeros(5)) == 0
    assert reach(np.array([np.nan, 1.0])) == 1
    with pytest.raises(ValueError, match="empty"):
        reach(np.array([]))
    with pytest.raises(ValueError, match="share"):
        reach(np.ones(3), share=0.0)


# -- activations, top-5, passage encoding ---------------------------------------------------


def test_activations_and_top5_match_forward() -> None:
    model = seeded(GRUScratch(len(VOCAB), 8), seed=4)
    tokens = tokens_of(TEXT)
    out = model(tokens[None])
    acts = hidden_activations(model, tokens)
    np.testing.assert_array_equal(acts, out.hiddens[:, 0].detach().double().numpy())
    logits = out.logits[:, 0].detach()
    probs, chars = top_next(logits, VOCAB)
    assert probs.shape == chars.shape == (len(tokens), 5)
    assert np.all(probs.sum(axis=1) <= 1.0 + 1e-12) and np.all(np.diff(probs, axis=1) <= 0)
    full = torch.softmax(logits.double(), -1).numpy()
    np.testing.assert_allclose(probs[:, 0], full.max(axis=1), rtol=1e-12)
    for t in (0, 10):
        for p, ch in zip(probs[t], chars[t], strict=True):
            assert full[t, VOCAB.token_to_idx[ch]] == pytest.approx(p, rel=1e-12)
    assert top_next(out.logits[:, 0].detach()[:, :3], VOCAB)[0].shape == (len(tokens), 3)


def test_analyse_bundles_one_refresh() -> None:
    model = seeded(GRUScratch(len(VOCAB), 8), seed=5)
    text = "The Time-Traveller, zq!"  # 'z', 'q' are not in VOCAB; punctuation is removed
    a = analyse(model, VOCAB, text, target=4)
    assert a.text_seen == "the time traveller zq"
    assert a.unknown.tolist() == [ch in "zq" for ch in a.text_seen]
    T = len(a.text_seen)
    assert a.activations.shape == (T, 8) and a.top_probs.shape == (T, 5)
    np.testing.assert_allclose(a.activations, hidden_activations(model, tokens_of(a.text_seen)))
    assert a.target == 4 and a.target_next == "i" and a.connectivity.shape == (5,)
    np.testing.assert_allclose(a.connectivity, connectivity(model, tokens_of(a.text_seen), 4))
    assert a.reach == reach(a.connectivity) and 0 < a.target_prob < 1
    last = analyse(model, VOCAB, text)
    assert last.target == T - 1 and last.target_next == last.top_chars[-1, 0]
    assert last.target_prob == pytest.approx(last.top_probs[-1, 0], rel=1e-6)
    np.testing.assert_allclose(last.activations, a.activations, rtol=0, atol=1e-6)
    assert analyse(model, VOCAB, text, target=-T).target == 0


def test_encode_passage_errors() -> None:
    with pytest.raises(ValueError, match="no letters"):
        encode_passage(VOCAB, "123 !?")
    with pytest.raises(ValueError, match="at most 10"):
        encode_passage(VOCAB, "a" * 11, max_chars=10)
    assert encode_passage(VOCAB, "héllo").text == "h llo"  # non-ASCII letters are not a-z


# -- model_from_weights --------------------------------------------------------------------


def test_model_from_weights_is_a_validated_private_copy() -> None:
    cfg = TrainConfig(hidden_size=6)
    live = seeded(build_model(cfg, len(VOCAB)), seed=6)
    weights = {n: p.detach().clone() for n, p in live.named_parameters()}
    before = torch.get_rng_state()
    copy = model_from_weights(cfg, len(VOCAB), weights)
    assert torch.equal(torch.get_rng_state(), before)  # built without drawing anything
    tokens = tokens_of(TEXT)
    np.testing.assert_array_equal(
        hidden_activations(copy, tokens), hidden_activations(live, tokens)
    )
    weights["W_hh"].add_(1.0)  # the snapshot changes after the copy: the copy does not
    assert not torch.equal(copy.W_hh, weights["W_hh"])
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in copy.parameters())
    with pytest.raises(ValueError, match="missing \\['b_q'\\]"):
        model_from_weights(cfg, len(VOCAB), {k: v for k, v in weights.items() if k != "b_q"})
    with pytest.raises(ValueError, match="unexpected \\['W_xi'\\]"):
        model_from_weights(cfg, len(VOCAB), weights | {"W_xi": weights["W_xh"]})
    with pytest.raises(ValueError, match="W_hq.*shape \\(6, 3\\)"):
        model_from_weights(cfg, len(VOCAB), weights | {"W_hq": torch.zeros(6, 3)})
    rnn = build_model(cfg.replace(model="rnn"), len(VOCAB))
    rnn_weights = {n: p.detach() for n, p in rnn.named_parameters()}
    assert isinstance(
        model_from_weights(cfg.replace(model="rnn"), len(VOCAB), rnn_weights), RNNScratch
    )
    with pytest.raises(ValueError, match="do not fit a gru"):
        model_from_weights(cfg, len(VOCAB), rnn_weights)


# -- the unit finder ---------------------------------------------------------------------------


def test_pattern_mask_presets_and_errors() -> None:
    text = "the time machine"
    marks = {name: "".join("^" if m else "." for m in pattern_mask(text, name)) for name in PRESETS}
    assert marks["first letter of a word"] == "^...^....^......"
    assert marks["last letter of a word"] == "..^....^.......^"
    assert marks["spaces"] == "...^....^......."
    assert marks["vowels"] == "..^..^.^..^..^.^"
    assert marks["the letter e"] == "..^....^.......^"
    assert marks["second half of a word"] == "..^...^^.....^^^"  # odd: not the middle
    assert marks["the word 'the'"] == "^^^............."
    assert marks["long words (7+ letters)"] == ".........^^^^^^^"
    assert pattern_mask(text, "m[a-z]").tolist() == [c in (6, 7, 9, 10) for c in range(16)]
    with pytest.raises(ValueError, match="not a valid regular expression"):
        pattern_mask(text, "(unclosed")


def test_rank_units_finds_a_planted_unit() -> None:
    """An RNN whose unit 3 is driven to +tanh(3) by vowels and -tanh(3) by everything else,
    with no recurrence, is the best match for 'vowels' (r = +1 exactly)."""
    model = seeded(RNNScratch(len(VOCAB), 12).double(), seed=7, std=0.4)
    with torch.no_grad():
        vowel = torch.tensor([t in "aeiou" for t in VOCAB.idx_to_token])
        model.W_xh[:, 3] = torch.where(vowel, 3.0, -3.0)
        model.W_hh[:, 3] = 0.0
        model.b_h[3] = 0.0
    a = analyse(model, VOCAB, TEXT)
    ranked = rank_units(a.activations, pattern_mask(a.text_seen, "vowels"), n=4)
    assert len(ranked) == 4 and ranked[0].unit == 3 and ranked[0].r == pytest.approx(1.0)
    assert all(abs(x.r) <= abs(ranked[0].r) for x in ranked)
    flipped = rank_units(-a.activations, pattern_mask(a.text_seen, "vowels"))
    assert flipped[0] == (3, pytest.approx(-1.0)) and len(flipped) == 8


def test_rank_units_zero_variance_and_bad_masks() -> None:
    acts = np.zeros((6, 3))
    acts[:, 1] = [0, 1, 0, 1, 0, 1]
    acts[:, 2] = 0.5  # constant: r = 0, not NaN
    mask = np.array([0, 1, 0, 1, 0, 0], dtype=bool)
    ranked = rank_units(acts, mask)
    assert [u for u, _ in ranked] == [1, 0, 2] and ranked[1].r == 0.0 == ranked[2].r
    assert ranked[0].r == pytest.approx(np.corrcoef(acts[:, 1], mask)[0, 1])
    with pytest.raises(ValueError, match="marks no character"):
        rank_units(acts, np.zeros(6, dtype=bool))
    with pytest.raises(ValueError, match="marks every character"):
        rank_units(acts, np.ones(6, dtype=bool))
    with pytest.raises(ValueError, match="do not match"):
        rank_units(acts, mask[:5])


def test_module_imports_no_streamlit() -> None:
    source = open(memory.__file__).read()
    assert "streamlit" not in source
