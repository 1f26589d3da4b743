"""One message catalogue: every word the dashboard and the command lines show, in English and
简体中文, through Python's ``gettext``.

The catalogue is gettext ``.po`` text, one domain (``gru_lab``), kept under
``gru_core/locale/<language>/LC_MESSAGES/``. A language's catalogue may be split into several
``.po`` files by area (``lab.po``, ``map.po``, ``cli.po``, ...) so that edits to different
areas never collide; :func:`catalogue` reads all of a language's files into one Babel
``Catalog`` and compiles it in memory (no ``.mo`` file is committed). The message ids are the
English text, so English falls back to the id when a file leaves ``msgstr`` empty.

Marking, in code::

    from gru_core.i18n import N_, _, ngettext

    st.button(_("Start"))                     # translated now, in the reader's language
    TITLE = N_("Gradient norm")               # marked only; translate where shown: _(TITLE)
    ngettext("{n} run", "{n} runs", n).format(n=n)

The language in force is a context variable: the dashboard sets it at the top of every script
run and every fragment run (:func:`use_language`), a command line once from ``--lang`` or the
environment. Worker threads never translate: they record facts, the page words them.

Numbers are written as the language in force groups them (:func:`format_int`,
:func:`format_number`: Babel's CLDR data; ``3,640`` in English and in Chinese alike).

Babel is needed to read the ``.po`` files; where it is missing (a bare GPU box that only trains)
every message is its English id.
"""

from __future__ import annotations

import gettext
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

DOMAIN = "gru_lab"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT = "en"
# Language code -> its own name (what the language switch lists).
LANGUAGES: dict[str, str] = {"en": "English", "zh_CN": "简体中文"}

_current: ContextVar[str] = ContextVar("gru_lab_language", default=DEFAULT)


def normalise(tag: str | None) -> str | None:
    """A language tag as a browser, a URL or an environment writes it -> one of ``LANGUAGES``.

    ``zh``, ``zh-CN``, ``zh_Hans``, ``zh-Hans-CN``, ``zh_CN.UTF-8`` -> ``zh_CN``; ``en``,
    ``en-GB``, ``C.UTF-8`` -> ``en``; anything else (including traditional Chinese, which
    the catalogue does not have) -> None.
    """
    if not tag:
        return None
    t = tag.strip().split(".")[0].replace("-", "_").lower()
    if t in ("c", "posix"):
        return "en"
    parts = t.split("_")
    if parts[0] == "en":
        return "en"
    if parts[0] == "zh":
        rest = set(parts[1:])
        if rest & {"tw", "hk", "mo", "hant"}:
            return None
        return "zh_CN"
    return None


def from_accept_language(header: str | None) -> str:
    """The best of ``LANGUAGES`` for an HTTP ``Accept-Language`` header (by q, then order)."""
    best: tuple[float, int, str] | None = None
    for i, item in enumerate((header or "").split(",")):
        tag, _sep, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = normalise(tag)
        if lang is not None and q > 0 and (best is None or (-q, i) < (-best[0], best[1])):
            best = (q, i, lang)
    return best[2] if best else DEFAULT


def from_environment() -> str:
    """The command lines' default: ``GRU_LAB_LANG``, then ``LANGUAGE``/``LC_ALL``/``LANG``."""
    for var in ("GRU_LAB_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        for tag in os.environ.get(var, "").split(":"):
            lang = normalise(tag)
            if lang is not None:
                return lang
    return DEFAULT


def po_files(lang: str) -> list[Path]:
    """A language's catalogue files, in a stable order."""
    return sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po"))


@cache
def catalogue(lang: str) -> Any:
    """All of ``lang``'s ``.po`` files as one Babel ``Catalog`` (cached; None without Babel)."""
    try:
        from babel.messages.catalog import Catalog
        from babel.messages.pofile import read_po
    except ImportError:  # a bare training box: English ids only
        return None
    merged = Catalog(locale=lang, domain=DOMAIN)
    for path in po_files(lang):
        with path.open("rb") as fh:
            part = read_po(fh, locale=lang, domain=DOMAIN)
        for message in part:
            if message.id:
                merged[message.id] = message
    return merged


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """``lang``'s compiled catalogue as a gettext object (English ids where it is silent)."""
    merged = catalogue(lang)
    if merged is None or not len(merged):
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo

    buffer = io.BytesIO()
    write_mo(buffer, merged)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def use_language(lang: str | None) -> str:
    """Make ``lang`` (any tag :func:`normalise` reads; None: the default) the one in force."""
    chosen = normalise(lang) or DEFAULT
    _current.set(chosen)
    return chosen


def language() -> str:
    """The language in force in this thread's context."""
    return _current.get()


@contextmanager
def language_scope(lang: str) -> Iterator[str]:
    """``with language_scope("zh_CN"): ...`` (tests, and a page that words one block in another)."""
    token = _current.set(normalise(lang) or DEFAULT)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _(msgid: str) -> str:  # noqa: N802 (gettext's own name)
    """``msgid`` in the language in force."""
    return translations(language()).gettext(msgid)


def N_(msgid: str) -> str:  # noqa: N802
    """Mark ``msgid`` for the catalogue without translating it (module-level tables)."""
    return msgid


def Nn_(singular: str, plural: str) -> tuple[str, str]:  # noqa: N802
    """Mark a plural pair for the catalogue without translating it (a ``Note``'s id)."""
    return singular, plural


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the language in force (Chinese has one form)."""
    return translations(language()).ngettext(singular, plural, n)


def pgettext(context: str, msgid: str) -> str:
    """``msgid`` in ``context`` (one English word, two meanings: "Step" the button, the count)."""
    return translations(language()).pgettext(context, msgid)


def format_int(n: int) -> str:
    """A count as the language in force writes it: ``3640`` -> ``3,640`` (en and zh_CN both
    group thousands with ","; Babel's CLDR data decides, so a new language gets its own)."""
    try:
        from babel.numbers import format_decimal
    except ImportError:
        return f"{int(n):,}"
    return format_decimal(int(n), format="#,##0", locale=language())


def format_number(x: float, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, grouped as the language in force writes numbers:
    ``format_number(23456.78, 1)`` -> ``23,456.8``. Not finite: ``nan``, ``inf``, ``-inf``."""
    if x != x or x in (float("inf"), float("-inf")):
        return str(float(x))
    try:
        from babel.numbers import format_decimal
    except ImportError:
        return f"{x:,.{digits}f}"
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(x, format=pattern, locale=language(), decimal_quantization=True)


class Note(str):
    """A message kept as its facts (catalogue ids and fields) and worded where it is shown.

    What is made once and read by many (a cached corpus, a run store, a worker thread's
    result) keeps a ``Note``, never the words of whoever made it. The ``str`` itself is the
    English text (logs, tests, ``in``); ``worded()`` gives it in the language in force where
    it is shown. It is one or more sentences, each a catalogue id (marked with ``N_`` where
    made, or ``Nn_`` for a plural pair, whose form the field ``n`` picks) and its fields; a
    field may be a ``Note`` too; an ``int`` field is written as :func:`format_int` writes it.
    """

    parts: tuple[tuple[str | tuple[str, str], dict[str, Any]], ...]

    def __new__(cls, msgid: str | tuple[str, str], **fields: Any) -> Note:
        return cls._of(((msgid, fields),))

    @classmethod
    def _of(cls, parts: tuple[tuple[str | tuple[str, str], dict[str, Any]], ...]) -> Note:
        note = str.__new__(cls, " ".join(_say(m, f, english=True) for m, f in parts))
        note.parts = parts
        return note

    def then(self, other: Note) -> Note:
        """This message followed by ``other``."""
        return Note._of(self.parts + other.parts)

    def worded(self) -> str:
        return " ".join(_say(m, f, english=False) for m, f in self.parts)


def worded(message: str | None) -> str | None:
    """A kept message in the language in force: a ``Note`` worded, a plain ``str`` (an
    exception's or a library's own text) shown as it is."""
    return message.worded() if isinstance(message, Note) else message


def _say(msgid: str | tuple[str, str], fields: dict[str, Any], *, english: bool) -> str:
    """One sentence of a Note: in English (the id) or in the language in force."""
    n = fields.get("n", 1)
    if isinstance(msgid, tuple):
        text = (msgid[0] if n == 1 else msgid[1]) if english else ngettext(*msgid, n)
    else:
        text = msgid if english else _(msgid)
    values = {k: _field(v, english) for k, v in fields.items()}
    return text.format(**values)


def _field(value: object, english: bool) -> object:
    if isinstance(value, Note):
        return str(value) if english else value.worded()
    if isinstance(value, int) and not isinstance(value, bool):
        return format_int(value)
    return value
