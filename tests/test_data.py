"""Tests for gru_core.data against d2l's known counts for The Time Machine. No network."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import random
import socket
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from gru_core import sources
from gru_core.data import (
    Vocab,
    batch_iterator,
    check_trainable,
    corpus_from_text,
    min_tokens,
    num_batches,
    preprocess,
    seq_data_iter_random,
    seq_data_iter_sequential,
    split_train_val,
)
from gru_core.i18n import language_scope
from gru_core.sources import CORPUS_ENV, corpus_from_upload, load_corpus, network_reason, safe_name

TIME_MACHINE = Path(__file__).resolve().parents[2] / "shared" / "data" / "timemachine.txt"
needs_time_machine = pytest.mark.skipif(
    not TIME_MACHINE.is_file(), reason=f"reference text not found at {TIME_MACHINE}"
)
SMALL = b"The quick brown fox,\njumps over 12 lazy dogs!\r\nAgain.\n"
SMALL_SHA1 = hashlib.sha1(SMALL).hexdigest()


class FixedRng:
    """Stands in for random.Random: randint returns a fixed offset (checked against the bounds)."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def randint(self, a: int, b: int) -> int:
        assert a <= self.offset <= b, (a, self.offset, b)
        return self.offset

    def shuffle(self, x: list[int]) -> None:
        x.reverse()


class MaxRng(FixedRng):
    """randint returns its upper bound: the worst case for short texts."""

    def __init__(self) -> None:
        super().__init__(0)

    def randint(self, a: int, b: int) -> int:
        return b


class CountingOpener:
    """A stub for urllib.request.urlopen that serves fixed bytes and counts calls."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.calls = 0

    def __call__(self, url: str, timeout: float) -> io.BytesIO:
        self.calls += 1
        return io.BytesIO(self.payload)


def failing_opener(url: str, timeout: float) -> io.BytesIO:
    raise urllib.error.URLError("no route to host (test)")


# --- preprocessing and vocabulary -----------------------------------------------------------


def test_preprocess_matches_d2l_rule() -> None:
    assert preprocess("Hello, World!\n  It's 1895.\r\nEnd") == "hello worldit send"
    assert preprocess("") == ""


def test_vocab_orders_by_frequency_with_first_occurrence_ties() -> None:
    vocab = Vocab("abcbcc")
    assert vocab.idx_to_token == ["<unk>", "c", "b", "a"]
    vocab = Vocab("xyyx z")  # x, y tie at 2 (x first); ' ', z tie at 1 (' ' first)
    assert vocab.idx_to_token == ["<unk>", "x", "y", " ", "z"]
    assert vocab.encode("xq") == [1, 0]
    assert vocab.decode([1, 2, 3, 4]) == "xy z"
    assert vocab.decode(torch.tensor([4, 1])) == "zx"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([99])


@needs_time_machine
def test_time_machine_counts() -> None:
    corpus = load_corpus(path=TIME_MACHINE)
    assert corpus.source == "path"
    assert corpus.name == "The Time Machine"
    assert len(corpus.vocab) == 28
    assert corpus.vocab.idx_to_token[0] == "<unk>"
    assert corpus.vocab.idx_to_token[1] == " "
    assert len(corpus.tokens) == 170_580
    assert corpus.tokens.dtype == torch.int64
    assert corpus.num_chars == len(TIME_MACHINE.read_text())
    text = corpus.vocab.decode(corpus.tokens[:30])
    assert text == preprocess(TIME_MACHINE.read_text())[:30]
    train, _ = split_train_val(corpus.tokens, 10_000, 5_000)
    batches = list(seq_data_iter_sequential(train, 32, 35, random.Random(0)))
    assert len(batches) == 8


# --- minibatch iterators --------------------------------------------------------------------


@pytest.mark.parametrize("offset", range(36))
def test_sequential_d2l_counts_and_streams(offset: int) -> None:
    tokens = torch.arange(10_000)  # token value == position, so streams are easy to check
    batches = list(seq_data_iter_sequential(tokens, 32, 35, FixedRng(offset)))
    assert len(batches) == 8 == num_batches(10_000, 32, 35, "sequential")
    for X, Y in batches:
        assert X.shape == Y.shape == (32, 35)
        assert X.dtype == Y.dtype == torch.int64
        assert torch.equal(Y, X + 1)  # Y is X shifted one token ahead
        assert torch.equal(X[:, 1:], X[:, :-1] + 1)  # each row is contiguous within a batch
    assert batches[0][0][0, 0] == offset
    for (X0, _), (X1, _) in zip(batches, batches[1:], strict=False):
        assert torch.equal(X1[:, 0], X0[:, -1] + 1)  # row i continues where it ended


def test_random_iterator_shapes_counts_and_determinism() -> None:
    tokens = torch.arange(10_000)
    batches = list(seq_data_iter_random(tokens, 32, 35, random.Random(7)))
    assert len(batches) == num_batches(10_000, 32, 35, "random") == 8
    starts = []
    for X, Y in batches:
        assert X.shape == Y.shape == (32, 35)
        assert X.dtype == torch.int64
        assert torch.equal(Y, X + 1)
        assert torch.equal(X[:, 1:], X[:, :-1] + 1)
        starts += X[:, 0].tolist()
    assert len(set(starts)) == len(starts)  # non-overlapping subsequences
    offset = min(starts) % 35
    assert all((s - offset) % 35 == 0 for s in starts)
    again = list(seq_data_iter_random(tokens, 32, 35, random.Random(7)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))
    other = list(seq_data_iter_random(tokens, 32, 35, random.Random(8)))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(batches, other, strict=True))


def test_random_iterator_matches_d2l_call_order() -> None:
    """Same rng draws as d2l: randint(0, T-1) for the offset, then shuffle the starts."""
    tokens = torch.arange(1_000)
    rng = random.Random(3)
    ref = random.Random(3)
    offset = ref.randint(0, 9)
    starts = list(range(0, ((1_000 - offset - 1) // 10) * 10, 10))
    ref.shuffle(starts)
    X, _ = next(seq_data_iter_random(tokens, 4, 10, rng))
    assert X[:, 0].tolist() == [offset + s for s in starts[:4]]


@pytest.mark.parametrize("sampling", ["sequential", "random"])
@pytest.mark.parametrize("rng", [MaxRng(), random.Random(0), random.Random(1), random.Random(2)])
def test_tiny_text_of_exactly_one_batch(sampling: str, rng: random.Random) -> None:
    B, T = 4, 5
    tokens = torch.arange(min_tokens(B, T))
    check_trainable(len(tokens), B, T)
    batches = list(batch_iterator(tokens, B, T, sampling, rng))
    assert len(batches) == 1
    X, Y = batches[0]
    assert X.shape == (B, T) and torch.equal(Y, X + 1)
    assert num_batches(len(tokens), B, T, sampling) == 1


def test_too_short_text_is_rejected_with_the_minimum() -> None:
    assert min_tokens(32, 35) == 1121
    with pytest.raises(ValueError, match="1121") as err:
        check_trainable(1120, 32, 35)
    assert "1120 tokens" in str(err.value)
    assert list(seq_data_iter_sequential(torch.arange(1120), 32, 35, random.Random(0))) == []
    assert list(seq_data_iter_random(torch.arange(1120), 32, 35, random.Random(0))) == []
    assert num_batches(0, 32, 35, "sequential") == 0


def test_bad_sampling_and_shape() -> None:
    with pytest.raises(ValueError, match="sampling"):
        batch_iterator(torch.arange(100), 2, 3, "shuffled", random.Random(0))
    with pytest.raises(ValueError, match="sampling"):
        num_batches(100, 2, 3, "shuffled")
    with pytest.raises(ValueError, match="batch_size"):
        seq_data_iter_sequential(torch.arange(100), 0, 3, random.Random(0))


def test_split_train_val_long_and_short() -> None:
    tokens = torch.arange(20_000)
    train, val = split_train_val(tokens, 10_000, 2_000)
    assert torch.equal(train, torch.arange(10_000))
    assert torch.equal(val, torch.arange(10_000, 12_000))
    train, val = split_train_val(tokens, 19_000, 5_000)  # only 1,000 left: take those
    assert len(train) == 19_000 and torch.equal(val, torch.arange(19_000, 20_000))
    short = torch.arange(3_000)
    train, val = split_train_val(short, 10_000, 2_000)  # carve the last len // 10
    assert torch.equal(train, torch.arange(2_700)) and torch.equal(val, torch.arange(2_700, 3_000))
    train, val = split_train_val(short, 10_000, 100)
    assert len(train) == 2_900 and len(val) == 100
    train, val = split_train_val(short, 10_000, 0)
    assert len(train) == 3_000 and len(val) == 0
    train, val = split_train_val(torch.arange(9), 10_000, 100)  # too short for any
    assert len(train) == 9 and len(val) == 0


# --- loading: path, cache, download, fallback -----------------------------------------------


def test_env_var_path_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "mine.txt"
    f.write_bytes(SMALL)
    monkeypatch.setenv(CORPUS_ENV, str(f))
    corpus = load_corpus(cache_dir=tmp_path / "cache", opener=failing_opener)
    assert corpus.source == "path" and corpus.name == "mine.txt"
    assert corpus.vocab.decode(corpus.tokens) == preprocess(SMALL.decode())


def test_missing_path_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ValueError, match="nope.txt"):
        load_corpus(path=missing, cache_dir=tmp_path)
    monkeypatch.setenv(CORPUS_ENV, str(missing))
    with pytest.raises(ValueError, match="nope.txt"):
        load_corpus(cache_dir=tmp_path)


@pytest.mark.parametrize("kind", ["directory", "fifo", "device"])
def test_a_corpus_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    """A FIFO would block on open until a writer came; /dev/zero would read until memory ran
    out; a directory has no text. Each is refused before it is opened, saying what it is."""
    if kind == "directory":
        path, words = tmp_path, "a directory"
    elif kind == "fifo":
        path, words = tmp_path / "pipe.txt", "a named pipe"
        os.mkfifo(path)
    else:
        path, words = Path("/dev/zero"), "a device"
        if not path.exists():
            pytest.skip("no /dev/zero here")
    with pytest.raises(ValueError, match=words) as info:
        load_corpus(path=path, cache_dir=tmp_path / "cache", opener=failing_opener)
    assert str(path) in str(info.value)


def test_download_caches_atomically_then_cache_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replaced: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(sources.os, "replace", spy)
    cache = tmp_path / "cache"
    opener = CountingOpener(SMALL)
    corpus = load_corpus(cache_dir=cache, opener=opener, sha1=SMALL_SHA1)
    assert corpus.source == "download" and opener.calls == 1
    assert (cache / "timemachine.txt").read_bytes() == SMALL
    assert replaced == [(replaced[0][0], cache / "timemachine.txt")]
    assert replaced[0][0].parent == cache  # temp file in the same directory
    assert sorted(p.name for p in cache.iterdir()) == ["timemachine.txt"]  # no temp left

    again = load_corpus(cache_dir=cache, opener=opener, sha1=SMALL_SHA1)
    assert again.source == "cache" and opener.calls == 1
    assert again.label.endswith("(cached)")
    assert torch.equal(again.tokens, corpus.tokens)


def test_corrupted_cache_is_ignored_and_refetched(tmp_path: Path) -> None:
    (tmp_path / "timemachine.txt").write_bytes(b"tampered")
    opener = CountingOpener(SMALL)
    corpus = load_corpus(cache_dir=tmp_path, opener=opener, sha1=SMALL_SHA1)
    assert corpus.source == "download" and opener.calls == 1
    assert "wrong SHA-1" in corpus.reason
    assert (tmp_path / "timemachine.txt").read_bytes() == SMALL


def test_download_with_wrong_bytes_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SHA-1"):
        load_corpus(cache_dir=tmp_path, opener=CountingOpener(b"evil"), sha1=SMALL_SHA1)
    assert not (tmp_path / "timemachine.txt").exists()


def test_unwritable_cache_still_uses_the_download(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    corpus = load_corpus(cache_dir=blocker / "cache", opener=CountingOpener(SMALL), sha1=SMALL_SHA1)
    assert corpus.source == "download"
    assert "could not cache" in corpus.reason


@pytest.mark.parametrize(
    "error, words",
    [
        (urllib.error.URLError(socket.gaierror(-3, "Temporary failure")), "no network connection"),
        (urllib.error.URLError(TimeoutError("timed out")), "no answer within 10 s"),
        (urllib.error.URLError(ConnectionRefusedError(111, "refused")), "refused"),
        (urllib.error.HTTPError("u", 503, "Service Unavailable", {}, None), "answered 503"),
    ],
)
def test_a_failed_download_is_said_in_plain_words(error: Exception, words: str) -> None:
    reason = network_reason(error, 10.0)
    assert words in reason and "Errno" not in reason


def test_a_cached_corpus_says_its_reason_in_each_readers_language(tmp_path: Path) -> None:
    """A corpus is loaded once and shared (the dashboard caches it for every visitor): it
    keeps what happened as facts and words them when read, in the reader's language, not
    in the language of whoever loaded it first."""
    with language_scope("zh_CN"):  # the first visitor reads Chinese
        corpus = load_corpus(cache_dir=tmp_path, allow_download=False)
        upload = corpus_from_upload(b"Hello there, GRU!", "notes.txt")
        zh, zh_upload = corpus.reason, upload.reason
    assert zh == "下载已被禁用；使用离线备用文本（Python 自带的参考文档文本）"
    assert zh_upload == "上传的文件“notes.txt”（17 字节，UTF-8）"
    with language_scope("zh_CN"):
        assert upload.label == "notes.txt（已上传）" and corpus.label.startswith("离线")
    with language_scope("en"):  # the next one English, from the same objects
        assert corpus.reason == (
            "downloading was disabled; using the offline fallback (the Python reference "
            "text that ships with Python)"
        )
        assert upload.reason == "uploaded file 'notes.txt' (17 bytes, UTF-8)"
        assert upload.label == "notes.txt (uploaded)"
    with language_scope("zh_CN"):
        assert corpus.reason == zh and "disabled" not in zh


def test_offline_falls_back_to_python_reference(tmp_path: Path) -> None:
    corpus = load_corpus(cache_dir=tmp_path, opener=failing_opener)
    assert corpus.source == "fallback"
    assert "no route to host (test)" in corpus.reason
    assert "could not download The Time Machine" in corpus.reason
    assert "offline fallback" in corpus.reason
    assert corpus.label.startswith("offline")
    assert len(corpus.tokens) > 100_000
    assert 20 <= len(corpus.vocab) <= 28
    assert set("".join(corpus.vocab.idx_to_token[1:])) <= set(" abcdefghijklmnopqrstuvwxyz")


def test_download_disabled(tmp_path: Path) -> None:
    opener = CountingOpener(SMALL)
    corpus = load_corpus(cache_dir=tmp_path, allow_download=False, opener=opener)
    assert corpus.source == "fallback" and "disabled" in corpus.reason and opener.calls == 0


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[str]:
    """Serve tmp_path/www over HTTP on 127.0.0.1; yields the base URL."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "small.txt").write_bytes(SMALL)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_real_urllib_against_local_server(
    local_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "*")
    cache = tmp_path / "cache"
    corpus = load_corpus(cache_dir=cache, url=f"{local_server}/small.txt", sha1=SMALL_SHA1)
    assert corpus.source == "download"
    assert (cache / "timemachine.txt").read_bytes() == SMALL
    missing = load_corpus(cache_dir=tmp_path / "c2", url=f"{local_server}/gone.txt")
    assert missing.source == "fallback" and "404" in missing.reason


# --- uploads ------------------------------------------------------------------------------


def test_upload_utf8_and_bom() -> None:
    corpus = corpus_from_upload(b"Hello there, GRU!", "notes.txt")
    assert corpus.source == "upload" and corpus.name == "notes.txt"
    assert corpus.vocab.decode(corpus.tokens) == "hello there gru"
    assert corpus.reason == "uploaded file 'notes.txt' (17 bytes, UTF-8)"
    bom = corpus_from_upload(b"\xef\xbb\xbfHello", "bom.txt")
    assert bom.vocab.decode(bom.tokens) == "hello" and "BOM" in bom.reason


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_upload_utf16_with_bom(encoding: str) -> None:
    raw = "Time travel, café".encode(encoding)
    if encoding == "utf-16-be":
        raw = b"\xfe\xff" + raw
    corpus = corpus_from_upload(raw, "wide.txt")
    assert corpus.vocab.decode(corpus.tokens) == "time travel caf"
    assert "UTF-16" in corpus.reason


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "looks like a PNG image, not text"),
        (b"%PDF-1.7\n...", "PDF"),
        (b"PK\x03\x04rest", "ZIP"),
        (b"abc\x00def", "binary"),
        (b"caf\xe9 au lait", "is not UTF-8 text"),
        (b"1234 5678 !!", "letters"),
        ("你好，世界".encode(), "letters"),
    ],
)
def test_upload_rejections(payload: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        corpus_from_upload(payload, "file.txt")


def test_upload_size_cap_states_sizes() -> None:
    with pytest.raises(ValueError, match=r"2\.0 KB.*1\.0 KB"):
        corpus_from_upload(b"a" * 2048, "big.txt", max_bytes=1024)
    with pytest.raises(ValueError, match=r"5\.0 MB"):
        corpus_from_upload(b"a" * (5 * 1024 * 1024 + 1), "huge.txt")


def test_upload_never_opens_the_name(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    corpus = corpus_from_upload(b"just this", str(secret))
    assert corpus.vocab.decode(corpus.tokens) == "just this"
    assert corpus.name == "secret.txt"


def test_corpus_from_text() -> None:
    corpus = corpus_from_text("Abc abc", "pasted")
    assert corpus.source == "upload" and corpus.num_chars == 7
    with pytest.raises(ValueError, match="letters A-Z"):
        corpus_from_text("42", "pasted")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\notes.txt", "notes.txt"),
        ("bad\x00na\x1bme.txt", "badname.txt"),
        ("..", "upload.txt"),
        ("", "upload.txt"),
        ("a..b.txt", "a.b.txt"),
    ],
)
def test_safe_name(raw: str, expected: str) -> None:
    name = safe_name(raw)
    assert name == expected
    assert "/" not in name and "\\" not in name and ".." not in name


def test_safe_name_caps_length_keeping_the_extension() -> None:
    name = safe_name("x" * 300 + ".txt")
    assert len(name) == 80 and name.endswith(".txt")
