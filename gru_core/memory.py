r"""What the model remembers: hidden units on a passage, a unit finder, and how far back it looks.

The engine behind three classic pictures: Karpathy's char-rnn cells (a passage coloured by one
hidden unit, the model's top guesses under each character), LSTMVis (units whose activation
follows a marked region of text) and Distill's "Visualizing memorization in RNNs"
(connectivity: how strongly one prediction depends on each earlier character).

Conventions. A passage is preprocessed and encoded as training does (``data.preprocess`` then
``vocab.encode``; a character the vocabulary lacks becomes ``<unk>``), and read from a zero
state, one sequence (B = 1). Position t (0-based) is the t-th character the model saw; its
output O_t predicts character t+1. Connectivity of a target position t is, for every s <= t,

.. math::

    c_s = \left\| \frac{\partial \log p(y_t \mid x_{\le t})}{\partial e_s} \right\|_2,
    \qquad e_s = (X_s W_{xz}, X_s W_{xr}, X_s W_{xh})

where e_s is the input row that character s selects, concatenated over every input matrix
``W_x*`` of the model (GRU: z, r, h; LSTM: i, f, o, c; RNN: h). The target y_t is the next
character x_{t+1} when the passage has one; at the last position (no x_{t+1}) it is the
model's own most likely next character (argmax of O_t). ``reach`` counts how many characters
back from t (t itself = 1) hold a given share of the total connectivity.

The gradient of the GRU (both variants) and the RNN is the step core's own input-row
gradient (``step/backward.input_gradients``, the derivative training scatters into ``W_x*``),
run in float64 from the output path of log p(y_t) alone (half the cost of autograd, which
matters to a job training in the same process); the LSTM's is autograd's. Neither writes
a ``.grad``: the model's parameters are only read, so the model may be a private copy made by
``model_from_weights`` while a job trains the original.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.func import functional_call

from gru_core.config import TrainConfig
from gru_core.data import Vocab, preprocess
from gru_core.i18n import N_, _
from gru_core.model.cells import GRUScratch, RecurrentLM, RNNScratch, build_model
from gru_core.step.backward import input_gradients as step_input_gradients
from gru_core.step.forward import Workspace, gru_forward, rnn_forward

TOP_K = 5  # next-character guesses shown per position
MAX_PASSAGE = 1000  # characters after preprocessing; the cost of a refresh grows with T


def model_from_weights(
    config: TrainConfig, vocab_size: int, weights: Mapping[str, Tensor]
) -> RecurrentLM:
    """A private CPU float32 model with the given parameters (names/shapes of ``build_model``).

    ``weights`` maps each parameter name to a tensor, e.g. the snapshot a running job
    publishes. The values are copied, so later changes to ``weights`` do not reach the model.
    ValueError names any missing, unexpected or mis-shaped parameter. Nothing is drawn from
    any random generator: the model is built on the meta device, then filled.
    """
    with torch.device("meta"):  # names and shapes only
        skeleton = build_model(config, vocab_size)
    model = skeleton.to_empty(device="cpu")
    own = dict(model.named_parameters())
    missing, extra = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    if missing or extra:
        raise ValueError(
            f"weights do not fit a {config.model} model (hidden {config.hidden_size}, vocab "
            f"{vocab_size}): missing {missing or 'none'}, unexpected {extra or 'none'}"
        )
    with torch.no_grad():
        for name, param in own.items():
            value = torch.as_tensor(weights[name])
            if tuple(value.shape) != tuple(param.shape):
                raise ValueError(
                    f"weights[{name!r}] has shape {tuple(value.shape)}; a {config.model} with "
                    f"hidden {config.hidden_size} and vocab {vocab_size} needs {tuple(param.shape)}"
                )
            param.copy_(value.detach().to("cpu", torch.float32))
    return model.eval()


class Passage(NamedTuple):
    text: str  # what the model saw: the preprocessed passage, one character per token
    tokens: Tensor  # (T,) int64 vocabulary indices
    unknown: np.ndarray  # (T,) bool: characters the vocabulary lacks, read as <unk>


def encode_passage(vocab: Vocab, text: str, max_chars: int = MAX_PASSAGE) -> Passage:
    """Preprocess and encode ``text`` exactly as training does; ValueError if nothing is left
    or if more than ``max_chars`` characters are."""
    seen = preprocess(text)
    if not seen:
        raise ValueError(
            _(
                "the passage has no letters left after preprocessing (d2l keeps only the "
                "letters a-z, lowercased, and single spaces)"
            )
        )
    if len(seen) > max_chars:
        raise ValueError(
            _("the passage has {n} characters after preprocessing; at most {most}").format(
                n=len(seen), most=max_chars
            )
        )
    ids = vocab.encode(seen)
    unknown = np.array([seen_ch not in vocab.token_to_idx for seen_ch in seen], dtype=bool)
    return Passage(seen, torch.tensor(ids, dtype=torch.int64), unknown)


def _run(model: RecurrentLM, tokens: Tensor, target: int) -> tuple[Tensor, Tensor, Tensor]:
    """One read of ``tokens`` (T,) from a zero state (forward, no graph), then the gradient of
    log p(y_t) w.r.t. every e_s, s <= target: by the step core's backward
    (``step/backward.input_gradients``, in float64 on the CPU) for the GRU and the RNN, by
    autograd for the LSTM. Returns hiddens (T, H), logits (T, V) and the gradient (t+1, G*H)."""
    with torch.no_grad():
        out = model(tokens[None])
    hiddens, logits = out.hiddens[:, 0], out.logits[:, 0]
    t = target
    y = int(tokens[t + 1]) if t + 1 < len(tokens) else int(logits[t].argmax())
    if not isinstance(model, GRUScratch | RNNScratch):
        return hiddens, logits, _autograd_input_grads(model, tokens[: t + 1], y)
    return hiddens, logits, _step_input_grads(model, tokens[: t + 1], y).to(hiddens.dtype)


def _step_input_grads(model: GRUScratch | RNNScratch, head: Tensor, y: int) -> Tensor:
    """d log p(y | head) / d e_s by the step core (K = 1 member, B = 1 sequence, float64):
    its forward over ``head`` (t+1,), then its backward from the output path
    d log p(y) / d H_t = W_hq (onehot(y) - softmax(O_t)) at t alone."""
    P = {n: p.detach().to("cpu", torch.float64)[None] for n, p in model.named_parameters()}
    steps = head.to("cpu")[:, None]  # (t+1, B = 1)
    T, Hn = len(head), model.hidden_size
    ws = Workspace()
    H0 = torch.zeros(1, 1, Hn, dtype=torch.float64)
    cache = (gru_forward if isinstance(model, GRUScratch) else rnn_forward)(P, steps, H0, ws)
    W_hq, b_q = P["W_hq"][0], P["b_q"][0]
    p = torch.softmax(cache.Hs[T, 0, 0] @ W_hq + b_q, dim=0)  # O_t = H_t W_hq + b_q
    D = torch.zeros(T, 1, 1, Hn, dtype=torch.float64)  # (T, K, B, H): the output path
    D[T - 1, 0, 0] = W_hq @ (torch.nn.functional.one_hot(torch.tensor(y), len(p)) - p)
    return step_input_gradients(P, cache, D, ws)[:, 0, 0]


def _autograd_input_grads(model: RecurrentLM, head: Tensor, y: int) -> Tensor:
    """d log p(y | head) / d e_s by autograd, for any model (the LSTM's path).

    Trick: each input matrix W_x* is replaced (via ``functional_call``) by its gathered rows
    W_x*[head] as a (t+1, H) leaf and the model reads positions 0..t, so row s of the leaf
    is e_s itself and autograd gives d/de_s per position, even for a repeated character.
    """
    params = {n: p.detach() for n, p in model.named_parameters()}
    names = [n for n in params if n.startswith("W_x")]  # the input matrices, in order
    leaves = {n: params[n][head].clone().requires_grad_(True) for n in names}
    positions = torch.arange(len(head), device=head.device)[None]
    with torch.enable_grad():
        out = functional_call(model, params | leaves, (positions,))
        log_p = torch.log_softmax(out.logits[-1, 0], dim=0)[y]
        grads = torch.autograd.grad(log_p, [leaves[n] for n in names])
    return torch.cat(grads, dim=1)


def _check_target(target: int | None, T: int) -> int:
    """A target position in [0, T); None means the last, negative counts from the end."""
    if target is None:
        return T - 1
    if not -T <= target < T:
        raise ValueError(f"target={target} is outside the passage's {T} positions")
    return target % T


def input_gradients(model: RecurrentLM, tokens: Tensor, target: int | None = None) -> Tensor:
    """d log p(y_t | x_<=t) / d e_s for s = 0..t: (t+1, G*H), G input matrices concatenated
    in parameter order. ``tokens`` (T,) int64; y_t as in the module docstring."""
    t = _check_target(target, len(tokens))
    return _run(model, tokens, t)[2]


def connectivity(model: RecurrentLM, tokens: Tensor, target: int | None = None) -> np.ndarray:
    """c_s = ||d log p(y_t) / d e_s|| for s = 0..t: (t+1,) float64 (module docstring)."""
    grad = input_gradients(model, tokens, target)
    return grad.double().norm(dim=1).cpu().numpy()


def reach(conn: np.ndarray, share: float = 0.9) -> int:
    """Fewest characters back from the target (the target itself counts 1) whose connectivity
    sums to at least ``share`` of the total. 0 when the total is 0; NaN entries count as 0."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share={share} must be in (0, 1]")
    c = np.nan_to_num(np.asarray(conn, dtype=np.float64).reshape(-1), nan=0.0, posinf=0.0)
    if c.size == 0:
        raise ValueError("reach of an empty connectivity")
    total = c.sum()
    if total <= 0.0:
        return 0
    back = np.cumsum(c[::-1])  # back[n-1] = mass of the last n positions
    return int(np.searchsorted(back, share * total * (1 - 1e-12)) + 1)


def top_next(logits: Tensor, vocab: Vocab, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """The k most likely next characters at every position of ``logits`` (T, V): probabilities
    (T, k) float64, softmax of the logits, best first, and the characters (T, k) ('<unk>' for 0)."""
    k = min(k, logits.shape[-1])
    probs, idx = torch.softmax(logits.double(), dim=-1).topk(k, dim=-1)
    names = np.asarray(vocab.idx_to_token, dtype=object)
    return probs.cpu().numpy(), names[idx.cpu().numpy()]


# -- the unit finder ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """A set of characters of the (preprocessed) passage: those inside matches of ``regex``,
    or only the second half of each match's characters when ``second_half``."""

    regex: str
    caption: str
    second_half: bool = False


# Presets for preprocessed text: only a-z and single spaces remain (no quotes, no punctuation).
# The names are identifiers (a page's widget options) marked for the catalogue: shown as _(name).
PRESETS: dict[str, Pattern] = {
    N_("first letter of a word"): Pattern(r"\b[a-z]", "the letter that starts each word"),
    N_("last letter of a word"): Pattern(r"[a-z]\b", "the letter that ends each word"),
    N_("spaces"): Pattern(" ", "the gaps between words"),
    N_("vowels"): Pattern("[aeiou]", "a, e, i, o, u"),
    N_("the letter e"): Pattern("e", "every e, the commonest letter"),
    N_("second half of a word"): Pattern("[a-z]+", "letters in the later half of their word", True),
    N_("the word 'the'"): Pattern(r"\bthe\b", "each whole word 'the'"),
    N_("long words (7+ letters)"): Pattern("[a-z]{7,}", "every letter of a word of 7+ letters"),
}


def pattern_mask(text: str, pattern: str | Pattern) -> np.ndarray:
    """(T,) bool: the characters of ``text`` inside a match of ``pattern`` (a preset name, a
    Pattern, or any regular expression). ValueError for a bad regex."""
    if isinstance(pattern, str):
        pattern = PRESETS.get(pattern) or Pattern(pattern, "custom")
    try:
        compiled = re.compile(pattern.regex)
    except re.error as exc:
        raise ValueError(
            _("{regex} is not a valid regular expression: {error}").format(
                regex=repr(pattern.regex), error=exc
            )
        ) from None
    mask = np.zeros(len(text), dtype=bool)
    for m in compiled.finditer(text):
        start = m.start() + (m.end() - m.start() + 1) // 2 if pattern.second_half else m.start()
        mask[start : m.end()] = True
    return mask


class UnitMatch(NamedTuple):
    unit: int  # index into H
    r: float  # Pearson correlation of the unit's activation with the mask (signed)


def rank_units(activations: np.ndarray, mask: np.ndarray, n: int = 8) -> list[UnitMatch]:
    """The ``n`` units whose activation (T, H) best follows ``mask`` (T,), by |Pearson r|,
    best first (ties: lower unit first). A unit that never changes has r = 0. ValueError when
    the mask marks no character or every character (r is undefined then)."""
    a = np.asarray(activations, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64).reshape(-1)
    if a.ndim != 2 or a.shape[0] != m.size:
        raise ValueError(f"activations {a.shape} do not match a mask of {m.size} characters")
    if m.size == 0 or m.min() == m.max():
        if m.size and m[0]:
            raise ValueError(
                _("the pattern marks every character of the passage: nothing to match")
            )
        raise ValueError(_("the pattern marks no character of the passage: nothing to match"))
    a_c, m_c = a - a.mean(axis=0), m - m.mean()
    norms = np.linalg.norm(a_c, axis=0) * np.linalg.norm(m_c)
    tiny = norms <= 1e-12 * max(1.0, float(np.abs(a).max(initial=0.0)))
    r = np.where(tiny, 0.0, (m_c @ a_c) / np.where(tiny, 1.0, norms))
    r = np.nan_to_num(np.clip(r, -1.0, 1.0), nan=0.0)
    order = np.argsort(-np.abs(r), kind="stable")[:n]
    return [UnitMatch(int(j), float(r[j])) for j in order]


# -- one refresh of the view -------------------------------------------------------------------


class MemoryAnalysis(NamedTuple):
    text_seen: str  # the preprocessed passage, one character per position
    unknown: np.ndarray  # (T,) bool: characters read as <unk>
    activations: np.ndarray  # (T, H) float64: H_t per position and unit
    top_probs: np.ndarray  # (T, k) float64: p of the k likeliest next characters, best first
    top_chars: np.ndarray  # (T, k) object: those characters
    target: int  # the position t whose prediction the connectivity explains
    target_next: str  # y_t: x_{t+1}, or the model's argmax at the last position
    target_prob: float  # p(y_t | x_<=t)
    connectivity: np.ndarray  # (t+1,) float64: c_s for s = 0..t
    reach: int  # characters back from t holding 90% of the connectivity


def analyse(
    model: RecurrentLM, vocab: Vocab, text: str, target: int | None = None
) -> MemoryAnalysis:
    """Everything the memory view draws, from one read of ``text`` (a no-grad forward, then
    the gradient of log p(y_t) back through the positions up to ``target``: the step core's
    backward for the GRU and the RNN, autograd for the LSTM). ``target`` indexes the
    preprocessed passage (None = the last character; negative counts from the end)."""
    passage = encode_passage(vocab, text)
    tokens = passage.tokens.to(model.W_hq.device)
    t = _check_target(target, len(tokens))
    hiddens, logits, grad = _run(model, tokens, t)
    probs, chars = top_next(logits, vocab)
    log_p = torch.log_softmax(logits[t].double(), dim=0)
    y = int(tokens[t + 1]) if t + 1 < len(tokens) else int(log_p.argmax())
    conn = grad.double().norm(dim=1).cpu().numpy()
    return MemoryAnalysis(
        text_seen=passage.text,
        unknown=passage.unknown,
        activations=hiddens.double().cpu().numpy(),
        top_probs=probs,
        top_chars=chars,
        target=t,
        target_next=vocab.idx_to_token[y],
        target_prob=float(log_p[y].exp()),
        connectivity=conn,
        reach=reach(conn),
    )
