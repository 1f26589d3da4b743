"""Corpus -> Vocab -> minibatch iterators, with d2l's semantics for The Time Machine.

Text is preprocessed as d2l does: each line keeps only the letters ``A-Za-z`` (every other run
becomes one space), is stripped and lowercased, and the lines are joined with no separator.
Tokens are characters; the vocabulary is ordered by descending frequency with ``<unk>`` at 0.

Where the text comes from, in order (``load_corpus``): an explicit path (argument or the
``GRU_LAB_CORPUS`` environment variable), the SHA-1-checked cache, a SHA-1-checked download,
and finally an offline fallback: the Python reference text that ships with Python
(``pydoc_data.topics``), so the dashboard still runs without a network. A learner's own text
comes through ``corpus_from_upload``, which works in memory and never opens a path.

The two iterators follow d2l's ``seq_data_iter_sequential`` / ``seq_data_iter_random`` exactly,
except that the random offset is clamped so a text of exactly ``B*T+1`` tokens still yields
one minibatch (d2l would yield none for most offsets).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import re
import tempfile
import unicodedata
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

D2L_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
D2L_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
CORPUS_ENV = "GRU_LAB_CORPUS"  # env var holding an explicit corpus path
CACHE_ENV = "GRU_LAB_CACHE"  # env var overriding the cache dir (default ~/.cache/gru_lab)
MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # default size cap for uploads, in bytes

CACHE_FILE = "timemachine.txt"
TIME_MACHINE = "The Time Machine"
FALLBACK_NAME = "the Python reference text"
FALLBACK_LABEL = "offline: using the Python reference text; upload a .txt to use your own"
FALLBACK_WHAT = "using the offline fallback (the Python reference text that ships with Python)"
SAMPLINGS = ("sequential", "random")

_NON_LETTERS = re.compile("[^A-Za-z]+")
# File iteration in text mode (d2l's f.readlines()) splits on universal newlines only.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NETWORK_ERRORS = (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException)
_SNIFF_BYTES = 8192
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or a .docx/.xlsx, which are ZIP files)"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
)


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
                raise ValueError(f"index {i} is outside the vocabulary (size {len(self)})")
            out.append(self.idx_to_token[int(i)])
        return "".join(out)


@dataclass(frozen=True)
class Corpus:
    """A preprocessed, encoded text and where it came from."""

    name: str  # display name, e.g. "The Time Machine", "my_notes.txt"
    source: str  # 'path' | 'cache' | 'download' | 'upload' | 'fallback'
    reason: str  # human sentence of what happened
    label: str  # short UI label, e.g. "The Time Machine (cached)"
    vocab: Vocab
    tokens: torch.Tensor  # (N,) int64, every preprocessed character token encoded
    num_chars: int  # length of the raw text in characters


def _build(text: str, name: str, source: str, reason: str, label: str) -> Corpus:
    clean = preprocess(text)
    if not clean:
        raise ValueError(
            f"'{name}' has no letters left after preprocessing: d2l's rule keeps only the "
            "letters A-Z (lowercased) and single spaces, so digits, punctuation and non-Latin "
            "scripts are removed. Use a text written mostly in English (Latin) letters."
        )
    vocab = Vocab(clean)
    tokens = torch.tensor(vocab.encode(clean), dtype=torch.int64)
    return Corpus(name, source, reason, label, vocab, tokens, len(text))


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _size(num_bytes: int) -> str:
    """Human size: '512 bytes', '12.3 KB' below one MB, else '5.0 MB' (1 KB = 1024 bytes)."""
    if num_bytes < 1024:
        return f"{num_bytes} bytes"
    if num_bytes < 1024 * 1024:
        return f"{num_bytes / 1024:.1f} KB"
    return f"{num_bytes / (1024 * 1024):.1f} MB"


def default_cache_dir() -> Path:
    """``$GRU_LAB_CACHE`` if set, else ``~/.cache/gru_lab``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "gru_lab"


def _from_path(path: str | os.PathLike[str], sha1: str) -> Corpus:
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read the corpus file '{p}': {err.strerror or err}") from err
    try:
        text, encoding = _decode(data, str(p))
    except ValueError as err:
        raise ValueError(f"corpus file '{p}': {err}") from err
    name = TIME_MACHINE if _sha1(data) == sha1 else p.name
    reason = f"read from '{p}' ({_size(len(data))}, {encoding})"
    return _build(text, name, "path", reason, f"{name} (from a file)")


def _write_atomic(directory: Path, data: bytes) -> None:
    """Write ``directory/CACHE_FILE`` via a temp file in the same directory and ``os.replace``."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{CACHE_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, directory / CACHE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fallback_text() -> str:
    try:
        from pydoc_data.topics import topics
    except ImportError as err:  # some distributions strip pydoc_data
        raise ValueError(
            "no corpus is available: the download failed and this Python has no pydoc_data "
            "for the offline fallback; pass a corpus path or upload a .txt file"
        ) from err
    return "".join(topics[key] for key in sorted(topics))


def load_corpus(
    path: str | os.PathLike[str] | None = None,
    *,
    cache_dir: Path | None = None,
    allow_download: bool = True,
    url: str = D2L_URL,
    sha1: str = D2L_SHA1,
    opener: Callable[..., Any] | None = None,
    timeout: float = 10.0,
) -> Corpus:
    """Load The Time Machine (or an explicit file), never crashing for want of a network.

    Order: ``path`` (else ``$GRU_LAB_CORPUS``), the cache ``cache_dir/timemachine.txt`` if its
    SHA-1 is ``sha1``, a download from ``url`` (through ``opener(url, timeout=timeout)``,
    default ``urllib.request.urlopen``) cached atomically, and finally the offline fallback.

    Raises ``ValueError`` for an explicit path that cannot be read, and for a download whose
    SHA-1 does not match (the bytes are never used). Network errors fall through to the
    fallback, whose ``reason`` says what failed.
    """
    if path is None:
        path = os.environ.get(CORPUS_ENV) or None
    if path is not None:
        return _from_path(path, sha1)

    directory = cache_dir if cache_dir is not None else default_cache_dir()
    cached = directory / CACHE_FILE
    notes: list[str] = []
    if cached.exists():
        try:
            data = cached.read_bytes()
        except OSError as err:
            notes.append(f"could not read the cached file '{cached}' ({err}), ignored it")
        else:
            if _sha1(data) == sha1:
                reason = f"read from the cache '{cached}' (SHA-1 verified)"
                # The SHA-1 pins the bytes; d2l's file is ASCII, so "replace" never fires for it.
                text = data.decode("utf-8", errors="replace")
                return _build(text, TIME_MACHINE, "cache", reason, f"{TIME_MACHINE} (cached)")
            notes.append(f"the cached file '{cached}' has the wrong SHA-1, ignored it")

    if not allow_download:
        failure = "downloading was disabled"
    else:
        open_url = opener if opener is not None else urllib.request.urlopen
        try:
            response = open_url(url, timeout=timeout)
            try:
                data = response.read()
            finally:
                getattr(response, "close", lambda: None)()
        except _NETWORK_ERRORS as err:
            why = err.reason if type(err) is urllib.error.URLError else err
            failure = f"download failed: {why}"
        else:
            got = _sha1(data)
            if got != sha1:
                raise ValueError(
                    f"downloaded file's SHA-1 {got} does not match the expected {sha1} "
                    f"(from {url}); refusing to use it"
                )
            try:
                _write_atomic(directory, data)
                notes.append(f"downloaded from {url} (SHA-1 verified), cached in '{directory}'")
            except OSError as err:
                notes.append(
                    f"downloaded from {url} (SHA-1 verified) but could not cache it in "
                    f"'{directory}' ({err}); using it for this session only"
                )
            text = data.decode("utf-8", errors="replace")
            label = f"{TIME_MACHINE} (downloaded)"
            return _build(text, TIME_MACHINE, "download", "; ".join(notes), label)

    reason = "; ".join([*notes, f"{failure}; {FALLBACK_WHAT}"])
    return _build(_fallback_text(), FALLBACK_NAME, "fallback", reason, FALLBACK_LABEL)


def corpus_from_text(text: str, name: str) -> Corpus:
    """A learner's text as a corpus (source 'upload'); ``ValueError`` if no letters remain."""
    reason = f"text '{name}' ({len(text):,} characters)"
    return _build(text, name, "upload", reason, f"{name} (uploaded)")


def safe_name(filename: str) -> str:
    """A display-only file name: no directories, path or control characters, at most 80 chars."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C" and ch not in ':*?"<>|')
    base = re.sub(r"\.{2,}", ".", base).strip().lstrip(".").strip()
    if len(base) > 80:
        stem, dot, ext = base.rpartition(".")
        base = f"{stem[: 79 - len(ext)]}.{ext}" if dot and stem and len(ext) <= 10 else base[:80]
    return base or "upload.txt"


def _decode(data: bytes, name: str) -> tuple[str, str]:
    """Bytes -> (text, encoding label); UTF-8 (BOM optional) or UTF-16 with a BOM, else error."""
    head = data[:_SNIFF_BYTES]
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise ValueError(f"'{name}' looks like {kind}, not text; upload a plain .txt file")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "UTF-16 with a BOM"
        except UnicodeDecodeError as err:
            raise ValueError(
                f"'{name}' starts with a UTF-16 byte-order mark but is not valid UTF-16"
            ) from err
    if b"\x00" in head:
        raise ValueError(
            f"'{name}' looks like a binary file (it contains NUL bytes), not text; "
            "upload a plain .txt file"
        )
    try:
        if data.startswith(b"\xef\xbb\xbf"):
            return data.decode("utf-8-sig"), "UTF-8 with a BOM"
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as err:
        raise ValueError(
            f"'{name}' is not UTF-8 text (tried UTF-8 and UTF-16 with a BOM): byte "
            f"0x{data[err.start]:02X} at position {err.start} is invalid. "
            "Save the file as UTF-8 and upload it again."
        ) from err


def corpus_from_upload(data: bytes, filename: str, max_bytes: int = MAX_UPLOAD_BYTES) -> Corpus:
    """An uploaded file's bytes as a corpus, in memory only (never opens ``filename``).

    Raises ``ValueError`` with a learner-readable message for an empty, oversized, binary or
    non-UTF-8 file, or one with no letters A-Z after preprocessing.
    """
    name = safe_name(filename)
    if not data:
        raise ValueError(f"the uploaded file '{name}' is empty")
    if len(data) > max_bytes:
        raise ValueError(
            f"the uploaded file '{name}' is {_size(len(data))}; the limit is {_size(max_bytes)}"
        )
    text, encoding = _decode(data, name)
    corpus = corpus_from_text(text, name)
    return replace(corpus, reason=f"uploaded file '{name}' ({_size(len(data))}, {encoding})")


def split_train_val(
    tokens: torch.Tensor, max_tokens: int, val_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train on ``tokens[:max_tokens]`` (d2l's slice); validate on the ``val_tokens`` after it.

    If nothing is left after ``max_tokens`` and ``val_tokens > 0``, the last
    ``min(val_tokens, len // 10)`` tokens become validation instead, so a short upload still
    gets a validation curve. Validation may be empty.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if val_tokens < 0:
        raise ValueError(f"val_tokens must be >= 0, got {val_tokens}")
    n = len(tokens)
    if n > max_tokens or val_tokens == 0:
        return tokens[:max_tokens], tokens[max_tokens : max_tokens + val_tokens]
    k = min(val_tokens, n // 10)
    return tokens[: n - k], tokens[n - k :]


def min_tokens(batch_size: int, num_steps: int) -> int:
    """Tokens needed for one minibatch: ``B*T`` inputs plus one for the last target."""
    return batch_size * num_steps + 1


def check_trainable(num_tokens: int, batch_size: int, num_steps: int) -> None:
    """``ValueError`` if ``num_tokens`` cannot fill one ``(batch_size, num_steps)`` minibatch."""
    need = min_tokens(batch_size, num_steps)
    if num_tokens < need:
        raise ValueError(
            f"the training text has {num_tokens} tokens after preprocessing; one minibatch of "
            f"batch_size {batch_size} x num_steps {num_steps} needs at least {need} "
            f"({batch_size}*{num_steps}+1). Use a longer text or a smaller batch/sequence length."
        )


def _check_shape(batch_size: int, num_steps: int) -> None:
    if batch_size < 1 or num_steps < 1:
        raise ValueError(f"batch_size and num_steps must be >= 1, got {batch_size}, {num_steps}")


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
    raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")


def batch_iterator(
    corpus: torch.Tensor, batch_size: int, num_steps: int, sampling: str, rng: random.Random
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Dispatch to the sequential or random iterator by name."""
    if sampling == "sequential":
        return seq_data_iter_sequential(corpus, batch_size, num_steps, rng)
    if sampling == "random":
        return seq_data_iter_random(corpus, batch_size, num_steps, rng)
    raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
