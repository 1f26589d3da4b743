"""Text -> Vocab -> minibatch iterators, with d2l's semantics for The Time Machine.

Text is preprocessed as d2l does: each line keeps only the letters ``A-Za-z`` (every other run
becomes one space), is stripped and lowercased, and the lines are joined with no separator.
Tokens are characters; the vocabulary is ordered by descending frequency with ``<unk>`` at 0.
Where the text comes from (a path, the cache, d2l's download, an upload, the offline
fallback) is ``sources.py``'s business; ``build_corpus`` is where both meet.

The two iterators follow d2l's ``seq_data_iter_sequential`` / ``seq_data_iter_random`` exactly,
except that the random offset is clamped so a text of exactly ``B*T+1`` tokens still yields
one minibatch (d2l would yield none for most offsets).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from gru_core.config import SAMPLINGS
from gru_core.i18n import N_, Nn_, Note, _, pgettext

_NON_LETTERS = re.compile("[^A-Za-z]+")
# File iteration in text mode (d2l's f.readlines()) splits on universal newlines only.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def preprocess(text: str) -> str:
    """Apply d2l's ``preprocess``: letters only, per line, lowercased, lines joined with ''."""
    return "".join(_NON_LETTERS.sub(" ", line).strip().lower() for line in _LINE_BREAK.split(text))


class Vocab:
    """Character vocabulary: ``<unk>`` at index 0, then tokens by descending frequency.

    Ties keep first-occurrence order, as d2l's stable ``sorted(Counter(...).items())`` gives.
    """

    def __init__(self, text: str) -> None:
        freqs = sorted(Counter(text).items(), key=lambda kv: kv[1], reverse=True)
        self.idx_to_token: list[str] = ["<unk>"] + [tok for tok, _ in freqs]
        self.token_to_idx: dict[str, int] = {tok: i for i, tok in enumerate(self.idx_to_token)}

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def encode(self, text: str) -> list[int]:
        """Characters -> indices; a character not in the vocabulary maps to 0 (``<unk>``)."""
        get = self.token_to_idx.get
        return [get(ch, 0) for ch in text]

    def decode(self, indices: Iterable[int] | torch.Tensor) -> str:
        """Indices (ints or a 1-D tensor) -> text."""
        if isinstance(indices, torch.Tensor):
            indices = indices.reshape(-1).tolist()
        out = []
        for i in indices:
            if not 0 <= int(i) < len(self.idx_to_token):
                raise ValueError(
                    _("index {i} is outside the vocabulary (size {size})").format(
                        i=i, size=len(self)
                    )
                )
            out.append(self.idx_to_token[int(i)])
        return "".join(out)


@dataclass(frozen=True)
class Corpus:
    """A preprocessed, encoded text and where it came from."""

    name: str  # display name, e.g. "The Time Machine", "my_notes.txt"
    source: str  # 'path' | 'cache' | 'download' | 'upload' | 'fallback'
    notes: tuple[Note, ...]  # what happened, as facts (``reason`` words them)
    title: Note | str  # its short label as a fact (``label`` words it); a str is an N_ id
    vocab: Vocab
    tokens: torch.Tensor  # (N,) int64, every preprocessed character token encoded
    num_chars: int  # length of the raw text in characters
    prefix: str = ""  # where generated text starts ('time traveller'; an upload's first words)
    probe: str = ""  # a passage of the text whose gates and memory are shown

    @property
    def reason(self) -> str:
        """What happened, in the language in force when it is read (the corpus is cached
        and shared by readers of every language, so it keeps facts, not one reader's words)."""
        return pgettext("list separator", "; ").join(note.worded() for note in self.notes)

    @property
    def label(self) -> str:
        """A short label, worded when read: 'The Time Machine (cached)', 《时光机器》（缓存）."""
        return self.title.worded() if isinstance(self.title, Note) else _(self.title)


def opening(clean: str, max_chars: int) -> str:
    """The first whole words of a preprocessed text, at most ``max_chars`` characters (the
    first word cut to fit when it alone is longer)."""
    words, out = clean.split(" "), ""
    for word in words:
        candidate = f"{out} {word}" if out else word
        if len(candidate) > max_chars:
            break
        out = candidate
    return out or clean[:max_chars]


def build_corpus(
    text: str,
    name: str,
    source: str,
    notes: tuple[Note, ...],
    label: Note | str,
    prefix: str | None = None,
    probe: str | None = None,
) -> Corpus:
    """Preprocess and encode ``text``; ``ValueError`` (saying d2l's rule) if no letters remain.
    ``prefix`` and ``probe`` default to the text's own opening words (20 and 60 characters)."""
    clean = preprocess(text)
    if not clean:
        raise ValueError(
            _(
                "'{name}' has no letters left after preprocessing: d2l's rule keeps only the "
                "letters A-Z (lowercased) and single spaces, so digits, punctuation and non-Latin "
                "scripts are removed. Use a text written mostly in English (Latin) letters."
            ).format(name=name)
        )
    vocab = Vocab(clean)
    tokens = torch.tensor(vocab.encode(clean), dtype=torch.int64)
    prefix = prefix if prefix is not None else opening(clean, 20)
    probe = probe if probe is not None else opening(clean, 60)
    return Corpus(name, source, notes, label, vocab, tokens, len(text), prefix, probe)


def corpus_from_text(text: str, name: str) -> Corpus:
    """A learner's text as a corpus (source 'upload'); ``ValueError`` if no letters remain."""
    what = Nn_("text '{name}' ({n} character)", "text '{name}' ({n} characters)")
    notes = (Note(what, name=name, n=len(text)),)
    label = Note(N_("{name} (uploaded)"), name=name)
    return build_corpus(text, name, "upload", notes, label)


def split_sizes(num_tokens: int, max_tokens: int, val_tokens: int) -> tuple[int, int, int]:
    """Where ``split_train_val`` cuts a text of ``num_tokens``: (train_end, val_start, val_end).

    Train on ``[0, train_end)`` (d2l's first ``max_tokens``), validate on
    ``[val_start, val_end)``: the ``val_tokens`` right after the training slice, or, when
    nothing is left after it, the last ``min(val_tokens, num_tokens // 10)`` tokens (which
    then leave the training slice), so a short upload still gets a validation curve.
    """
    if max_tokens < 1:
        raise ValueError(
            _("{name} must be >= {low}, got {value}").format(
                name="max_tokens", low=1, value=max_tokens
            )
        )
    if val_tokens < 0:
        raise ValueError(
            _("{name} must be >= {low}, got {value}").format(
                name="val_tokens", low=0, value=val_tokens
            )
        )
    n = num_tokens
    if n > max_tokens or val_tokens == 0:
        end = min(n, max_tokens)
        return end, end, min(n, max_tokens + val_tokens)
    k = min(val_tokens, n // 10)
    return n - k, n - k, n


def split_train_val(
    tokens: torch.Tensor, max_tokens: int, val_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and validation slices of ``tokens`` (see ``split_sizes``)."""
    train_end, val_start, val_end = split_sizes(len(tokens), max_tokens, val_tokens)
    return tokens[:train_end], tokens[val_start:val_end]


def max_num_steps(num_tokens: int, batch_size: int) -> int:
    """The longest sequence length T for which ``num_tokens`` fill one (B, T) minibatch."""
    return (num_tokens - 1) // batch_size


def min_tokens(batch_size: int, num_steps: int) -> int:
    """Tokens needed for one minibatch: ``B*T`` inputs plus one for the last target."""
    return batch_size * num_steps + 1


def check_trainable(num_tokens: int, batch_size: int, num_steps: int) -> None:
    """``ValueError`` if ``num_tokens`` cannot fill one ``(batch_size, num_steps)`` minibatch."""
    need = min_tokens(batch_size, num_steps)
    if num_tokens < need:
        raise ValueError(
            _(
                "the training text has {n} tokens after preprocessing; one minibatch of "
                "batch_size {batch_size} x num_steps {num_steps} needs at least {need} "
                "({batch_size}*{num_steps}+1). Use a longer text or a smaller batch/sequence "
                "length."
            ).format(n=num_tokens, batch_size=batch_size, num_steps=num_steps, need=need)
        )


def _check_shape(batch_size: int, num_steps: int) -> None:
    if batch_size < 1 or num_steps < 1:
        raise ValueError(
            _("batch_size and num_steps must be >= 1, got {batch_size}, {num_steps}").format(
                batch_size=batch_size, num_steps=num_steps
            )
        )


def seq_data_iter_sequential(
    corpus: torch.Tensor, batch_size: int, num_steps: int, rng: random.Random
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """d2l's sequential partitioning: each batch row is one contiguous stream.

    After a random offset in ``[0, T]``, the text is cut into ``B`` equal streams (rows of
    ``Xs``); minibatch k is columns ``[kT, (k+1)T)``, so row i of batch k+1 continues row i of
    batch k and the hidden state can carry over. ``Y`` is ``X`` shifted one token ahead.

    Deviation from d2l: the offset's upper bound is clamped to ``len - 1 - B*T`` so a text of
    exactly ``B*T+1`` tokens yields one minibatch for every draw.

    Yields ``(X, Y)``, each ``(B, T)`` int64.
    """
    _check_shape(batch_size, num_steps)
    tokens = torch.as_tensor(corpus, dtype=torch.int64).reshape(-1)
    high = max(0, min(num_steps, len(tokens) - 1 - batch_size * num_steps))
    offset = rng.randint(0, high)
    usable = ((len(tokens) - offset - 1) // batch_size) * batch_size
    Xs = tokens[offset : offset + usable].reshape(batch_size, -1)
    Ys = tokens[offset + 1 : offset + 1 + usable].reshape(batch_size, -1)
    n_batches = Xs.shape[1] // num_steps

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, num_steps * n_batches, num_steps):
            yield Xs[:, i : i + num_steps], Ys[:, i : i + num_steps]

    return batches()


def seq_data_iter_random(
    corpus: torch.Tensor, batch_size: int, num_steps: int, rng: random.Random
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """d2l's random sampling: minibatches of ``B`` subsequences from shuffled start positions.

    After a random offset in ``[0, T-1]``, the text is cut into non-overlapping subsequences of
    length ``T``; their starts are shuffled with ``rng`` and taken ``B`` at a time. Adjacent
    minibatches are not adjacent in the text, so the state should be reset per minibatch.
    ``Y`` is ``X`` shifted one token ahead. Same offset clamp as the sequential iterator.

    Yields ``(X, Y)``, each ``(B, T)`` int64.
    """
    _check_shape(batch_size, num_steps)
    tokens = torch.as_tensor(corpus, dtype=torch.int64).reshape(-1)
    high = max(0, min(num_steps - 1, len(tokens) - 1 - batch_size * num_steps))
    tokens = tokens[rng.randint(0, high) :]
    num_subseqs = (len(tokens) - 1) // num_steps
    starts = list(range(0, num_subseqs * num_steps, num_steps))
    rng.shuffle(starts)
    n_batches = num_subseqs // batch_size
    steps = torch.arange(num_steps)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, batch_size * n_batches, batch_size):
            index = torch.tensor(starts[i : i + batch_size])[:, None] + steps  # (B, T)
            yield tokens[index], tokens[index + 1]

    return batches()


def num_batches(num_tokens: int, batch_size: int, num_steps: int, sampling: str) -> int:
    """Minibatches per epoch at offset 0 (an upper bound for other offsets), for progress bars."""
    _check_shape(batch_size, num_steps)
    if sampling == "sequential":
        return max(0, (num_tokens - 1) // batch_size) // num_steps
    if sampling == "random":
        return max(0, (num_tokens - 1) // num_steps) // batch_size
    raise ValueError(
        _("sampling must be one of {choices}, got {value!r}").format(
            choices=SAMPLINGS, value=sampling
        )
    )


def batch_iterator(
    corpus: torch.Tensor, batch_size: int, num_steps: int, sampling: str, rng: random.Random
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Dispatch to the sequential or random iterator by name."""
    if sampling == "sequential":
        return seq_data_iter_sequential(corpus, batch_size, num_steps, rng)
    if sampling == "random":
        return seq_data_iter_random(corpus, batch_size, num_steps, rng)
    raise ValueError(
        _("sampling must be one of {choices}, got {value!r}").format(
            choices=SAMPLINGS, value=sampling
        )
    )
