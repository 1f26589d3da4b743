"""Where the text comes from: The Time Machine, an upload, or an offline fallback.

In order (``load_corpus``): an explicit path (argument or the ``GRU_LAB_CORPUS`` environment
variable), the SHA-1-checked cache, a SHA-1-checked download of d2l's file written atomically
into the cache, and finally an offline fallback: the Python reference text that ships with
Python (``pydoc_data.topics``), so the dashboard still runs without a network. Every result
says which source it used and why (``Corpus.reason``, ``Corpus.label``). A learner's own text
comes through ``corpus_from_upload``, which works in memory and never opens a path.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import stat
import tempfile
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from gru_core.data import Corpus, build_corpus, corpus_from_text
from gru_core.i18n import N_, Nn_, Note, _, format_number

D2L_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
D2L_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
CORPUS_ENV = "GRU_LAB_CORPUS"  # env var holding an explicit corpus path
CACHE_ENV = "GRU_LAB_CACHE"  # env var overriding the cache dir (default ~/.cache/gru_lab)
MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # default size cap for uploads, in bytes
CACHE_FILE = "timemachine.txt"
TIME_MACHINE = N_("The Time Machine")  # a name: _(TIME_MACHINE) where shown
D2L_PREFIX = "time traveller"  # d2l's predict_ch8 prefix
D2L_PROBE = "time traveller for so it will be convenient to speak of him"  # its first sentence
FALLBACK_NAME = N_("the Python reference text")
FALLBACK_LABEL = N_("offline: using the Python reference text; upload a .txt to use your own")
FALLBACK_WHAT = N_("using the offline fallback (the Python reference text that ships with Python)")
_NETWORK_ERRORS = (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException)
_SNIFF_BYTES = 8192
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", N_("a PNG image")),
    (b"\xff\xd8\xff", N_("a JPEG image")),
    (b"GIF87a", N_("a GIF image")),
    (b"GIF89a", N_("a GIF image")),
    (b"%PDF-", N_("a PDF document")),
    (b"PK\x03\x04", N_("a ZIP archive (or a .docx/.xlsx, which are ZIP files)")),
    (b"PK\x05\x06", N_("a ZIP archive")),
    (b"\x1f\x8b", N_("a gzip archive")),
)


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _size(num_bytes: int) -> str:
    """Human size: '512 bytes', '12.3 KB' below one MB, else '5.0 MB' (1 KB = 1024 bytes)."""
    size = _size_note(num_bytes)
    return size.worded() if isinstance(size, Note) else size


def _size_note(num_bytes: int) -> Note | str:
    """``_size`` as a fact: worded when read (a size in KB or MB holds no word)."""
    if num_bytes < 1024:
        return Note(Nn_("{n} byte", "{n} bytes"), n=num_bytes)
    if num_bytes < 1024 * 1024:
        return f"{format_number(num_bytes / 1024, 1)} KB"
    return f"{format_number(num_bytes / (1024 * 1024), 1)} MB"


def default_cache_dir() -> Path:
    """``$GRU_LAB_CACHE`` if set, else ``~/.cache/gru_lab``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "gru_lab"


def _from_path(path: str | os.PathLike[str], sha1: str) -> Corpus:
    p = Path(path).expanduser()
    _check_regular(p)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise ValueError(_cannot_read(p, err)) from err
    try:
        text, encoding = _decode(data, str(p))
    except ValueError as err:
        raise ValueError(_("corpus file '{path}': {why}").format(path=p, why=err)) from err
    reason = Note(
        N_("read from '{path}' ({size}, {encoding})"),
        path=str(p), size=_size_note(len(data)), encoding=Note(encoding),
    )  # fmt: skip
    if _sha1(data) == sha1:
        return _time_machine(text, "path", reason, N_("The Time Machine (from a file)"))
    label = Note(N_("{name} (from a file)"), name=p.name)
    return build_corpus(text, p.name, "path", (reason,), label)


def _cannot_read(p: Path, err: OSError) -> str:
    return _("cannot read the corpus file '{path}': {why}").format(path=p, why=err.strerror or err)


def _check_regular(p: Path) -> None:
    """Refuse, before opening it, a path that is not a regular file: reading a FIFO blocks
    until a writer comes, a device such as /dev/zero never ends, a directory has no text."""
    try:
        mode = p.stat().st_mode
    except OSError as err:
        raise ValueError(_cannot_read(p, err)) from err
    if stat.S_ISREG(mode):
        return
    kind = (
        _("a directory") if stat.S_ISDIR(mode)
        else _("a named pipe (FIFO)") if stat.S_ISFIFO(mode)
        else _("a device") if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else _("a socket") if stat.S_ISSOCK(mode)
        else _("not a regular file")
    )  # fmt: skip
    raise ValueError(
        _("the corpus '{path}' is {kind}, not a regular text file").format(path=p, kind=kind)
    )


def _time_machine(text: str, source: str, reason: Note | tuple[Note, ...], label: str) -> Corpus:
    """The Time Machine, with d2l's prediction prefix and the dashboard's probe sentence."""
    notes = reason if isinstance(reason, tuple) else (reason,)
    return build_corpus(text, TIME_MACHINE, source, notes, label, D2L_PREFIX, D2L_PROBE)


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
            _(
                "no corpus is available: the download failed and this Python has no pydoc_data "
                "for the offline fallback; pass a corpus path or upload a .txt file"
            )
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
    notes: list[Note] = []
    if cached.exists():
        try:
            data = cached.read_bytes()
        except OSError as err:
            what = N_("could not read the cached file '{path}' ({why}), ignored it")
            notes.append(Note(what, path=str(cached), why=str(err)))
        else:
            if _sha1(data) == sha1:
                reason = Note(N_("read from the cache '{path}' (SHA-1 verified)"), path=str(cached))
                # The SHA-1 pins the bytes; d2l's file is ASCII, so "replace" never fires for it.
                text = data.decode("utf-8", errors="replace")
                return _time_machine(text, "cache", reason, N_("The Time Machine (cached)"))
            what = N_("the cached file '{path}' has the wrong SHA-1, ignored it")
            notes.append(Note(what, path=str(cached)))

    if not allow_download:
        failure = Note(N_("downloading was disabled"))
    else:
        open_url = opener if opener is not None else urllib.request.urlopen
        try:
            response = open_url(url, timeout=timeout)
            try:
                data = response.read()
            finally:
                getattr(response, "close", lambda: None)()
        except _NETWORK_ERRORS as err:
            failure = Note(
                N_("could not download The Time Machine: {why}"), why=network_note(err, timeout)
            )
        else:
            got = _sha1(data)
            if got != sha1:
                raise ValueError(
                    _(
                        "downloaded file's SHA-1 {got} does not match the expected {sha1} "
                        "(from {url}); refusing to use it"
                    ).format(got=got, sha1=sha1, url=url)
                )
            try:
                _write_atomic(directory, data)
                what = N_("downloaded from {url} (SHA-1 verified), cached in '{path}'")
                notes.append(Note(what, url=url, path=str(directory)))
            except OSError as err:
                what = N_(
                    "downloaded from {url} (SHA-1 verified) but could not cache it in "
                    "'{path}' ({why}); using it for this session only"
                )
                notes.append(Note(what, url=url, path=str(directory), why=str(err)))
            text = data.decode("utf-8", errors="replace")
            label = N_("The Time Machine (downloaded)")
            return _time_machine(text, "download", tuple(notes), label)

    reason = (*notes, failure, Note(FALLBACK_WHAT))
    return build_corpus(_fallback_text(), FALLBACK_NAME, "fallback", reason, FALLBACK_LABEL)


def network_reason(err: BaseException, timeout: float) -> str:
    """A failed download in words a learner can act on, not a bare errno."""
    why = network_note(err, timeout)
    return why.worded() if isinstance(why, Note) else why


def network_note(err: BaseException, timeout: float) -> Note | str:
    """``network_reason`` as a fact, worded when read (the exception's own text is kept)."""
    inner = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(err, urllib.error.HTTPError):
        what = N_("the server answered {code} {reason}")
        return Note(what, code=str(err.code), reason=str(err.reason))
    if isinstance(inner, socket.gaierror):
        return Note(N_("no network connection (the server's name could not be looked up)"))
    if isinstance(inner, TimeoutError | socket.timeout):
        return Note(N_("no answer within {timeout:g} s"), timeout=float(timeout))
    if isinstance(inner, ConnectionRefusedError):
        return Note(N_("the connection was refused"))
    if isinstance(inner, ConnectionError | OSError):
        text = getattr(inner, "strerror", None) or str(inner)
        return Note(N_("a network error ({text})"), text=str(text))
    return str(inner) or type(inner).__name__


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
            raise ValueError(
                _("'{name}' looks like {kind}, not text; upload a plain .txt file").format(
                    name=name, kind=_(kind)
                )
            )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), N_("UTF-16 with a BOM")
        except UnicodeDecodeError as err:
            raise ValueError(
                _("'{name}' starts with a UTF-16 byte-order mark but is not valid UTF-16").format(
                    name=name
                )
            ) from err
    if b"\x00" in head:
        raise ValueError(
            _(
                "'{name}' looks like a binary file (it contains NUL bytes), not text; "
                "upload a plain .txt file"
            ).format(name=name)
        )
    try:
        if data.startswith(b"\xef\xbb\xbf"):
            return data.decode("utf-8-sig"), N_("UTF-8 with a BOM")
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as err:
        raise ValueError(
            _(
                "'{name}' is not UTF-8 text (tried UTF-8 and UTF-16 with a BOM): byte "
                "0x{byte:02X} at position {position} is invalid. "
                "Save the file as UTF-8 and upload it again."
            ).format(name=name, byte=data[err.start], position=err.start)
        ) from err


def corpus_from_upload(data: bytes, filename: str, max_bytes: int = MAX_UPLOAD_BYTES) -> Corpus:
    """An uploaded file's bytes as a corpus, in memory only (never opens ``filename``).

    Raises ``ValueError`` with a learner-readable message for an empty, oversized, binary or
    non-UTF-8 file, or one with no letters A-Z after preprocessing.
    """
    name = safe_name(filename)
    if not data:
        raise ValueError(_("the uploaded file '{name}' is empty").format(name=name))
    if len(data) > max_bytes:
        raise ValueError(
            _("the uploaded file '{name}' is {size}; the limit is {limit}").format(
                name=name, size=_size(len(data)), limit=_size(max_bytes)
            )
        )
    text, encoding = _decode(data, name)
    corpus = corpus_from_text(text, name)
    reason = Note(
        N_("uploaded file '{name}' ({size}, {encoding})"),
        name=name, size=_size_note(len(data)), encoding=Note(encoding),
    )  # fmt: skip
    return replace(corpus, notes=(reason,))
