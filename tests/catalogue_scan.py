"""What the catalogue tests read: message ids extracted from the code by Babel, the ``.po``
files entry by entry, and an AST scan for user-visible string literals left outside ``_()``.

The scan looks where a reader sees text:

- in the dashboard's Streamlit layer (app.py, screens/, sidebar/, views/): the string
  arguments of ``st.*`` text and widget calls (``TEXT_CALLS``: markdown, caption, write,
  info/warning/error/success/toast, headers, buttons, inputs, tabs, metrics, ...), whatever the
  receiver (``st``, ``st.sidebar``, a column, a container), and their ``LABEL_KEYWORDS``;
- in the dashboard's figures (charts/, views/): the ``TITLE_KEYWORDS`` of any call (plotly
  titles, axis titles, annotations' text), the figure helpers' title and axis arguments
  (``FIGURE_POSITIONAL``) and a trace's legend ``name``;
- the messages of ``raise`` in ``CLI_MODULES`` and in the dashboard outside ``QUIET_RAISES``
  (charts/, runs/, the worksheet's model: their raises are a caller's mistake or a storage
  detail, not a message for the page); in
  the two command lines also ``help=``, ``description=``, ``epilog=`` and ``print``;
- in ``WORDED_MODULES`` (the command line, the corpus, the sweep) what a function returns or
  assigns: a cell's text, a corpus's reason, a note reach a reader through another's hands;
- in ``WORKER_MODULES`` (what a sweep's worker thread runs) any ``_()``: a worker keeps facts,
  and words made there would be in the worker's language, not the reader's.

A literal is fine inside ``_()``, ``N_()``, ``ngettext()`` or ``pgettext()``, or as an argument
of ``.format()`` (a field's value), or when it holds no word (``ALLOWED_WORDS``: names and
symbols, never translated). An f-string is read by its literal parts.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from gru_core.i18n import DEFAULT

REPO = Path(__file__).resolve().parents[1]
LOCALE = REPO / "gru_core" / "locale"
KEYWORDS = {"_": None, "N_": None, "Nn_": (1, 2), "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
# Where message ids live: the code, and the loader's own test (its fixtures: "Language").
SOURCES = (REPO / "gru_core", REPO / "dashboard", REPO / "tests" / "test_i18n_core.py")
TRANSLATORS = frozenset(KEYWORDS)

TEXT_CALLS = frozenset(
    "markdown caption write info warning error success toast exception header subheader "
    "title text button checkbox toggle selectbox radio slider select_slider number_input "
    "text_input text_area file_uploader multiselect expander popover tabs metric "
    "download_button form_submit_button segmented_control pills link_button page_link "
    "date_input time_input color_picker chat_input status spinner feedback Page".split()
)
LABEL_KEYWORDS = frozenset(
    "label help caption placeholder title body text value_label tooltip".split()
)
TITLE_KEYWORDS = frozenset(
    "title x_title y_title title_text xaxis_title yaxis_title subtitle text".split()
)
# The figure helpers' positional texts (charts/base.py): apply_layout(fig, title, x_title,
# y_title, ...), empty_figure(title, message), with_subtitle(fig, text).
FIGURE_POSITIONAL = {"apply_layout": (1, 4), "empty_figure": (0, 2), "with_subtitle": (1, 2)}
CLI_KEYWORDS = frozenset("help description epilog".split())
STREAMLIT_LAYER = (
    "dashboard/app.py",
    "dashboard/screens/",
    "dashboard/sidebar/",
    "dashboard/views/",
)
FIGURE_LAYER = ("dashboard/charts/", "dashboard/views/")
CLIS = ("gru_core/cli.py", "gru_core/sweep/cli.py")
QUIET_RAISES = ("dashboard/charts/", "dashboard/runs/", "dashboard/worksheet/model.py")
# The engine modules whose messages reach a user (the command lines print them, the page
# shows them with st.error): their ``raise`` messages are scanned.
CLI_MODULES = (
    *CLIS,
    "gru_core/config.py",
    "gru_core/data.py",
    "gru_core/sources.py",
    "gru_core/limits.py",
    "gru_core/exports.py",
    "gru_core/interrupt.py",
    "gru_core/sweep/spec.py",
    "gru_core/sweep/ray_backend.py",
)
WORDED_MODULES = (
    "gru_core/cli.py", "gru_core/data.py", "gru_core/sources.py", "gru_core/sweep/",
    *(RUN_WORKERS := ("gru_core/run/trainer.py", "gru_core/run/job.py")),
)  # fmt: skip
# Run in worker threads (a sweep's, a training job's): facts only, worded where shown.
WORKER_MODULES = ("gru_core/sweep/job.py", "gru_core/sweep/chunk.py", *RUN_WORKERS)
# Never translated: names and symbols (the project's and the book's), units, file formats.
ALLOWED_WORDS = frozenset(
    "GRU RNN LSTM d2l Z R H T θ λ CSV JSON URL CPU GPU CUDA MPS SHA px ms MB GB KB "
    "cuDNN PyTorch torch Ray Streamlit plotly".split()
)
# d2l's own printout, kept word for word as the book prints it (README, "Train from the
# command line"): the epoch lines (with the validation perplexity beside) and the closing line.
D2L_LINES = frozenset(  # an f-string's fields read {}
    {"perplexity {}, {} tokens/sec on {}", "epoch {}, perplexity {}", ", validation perplexity {}"}
)
_COMMAND = re.compile(r"(python|pip|ray) ")  # a command to type, never translated
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]")
_MARKUP = re.compile(r"<[^>]*>|&\w+;|\{[^{}]*\}|\$[^$]*\$|:material/\w+:|`[^`]*`")


# -- the catalogue ----------------------------------------------------------------------------
def key_of(msgid: object, context: str | None) -> tuple[str | None, str]:
    """A message's identity: its context and its (singular) id."""
    return context, msgid[0] if isinstance(msgid, tuple | list) else str(msgid)


def extracted() -> dict[tuple[str | None, str], list[str]]:
    """Every message id in the code -> where it is used (``path:line``)."""
    found: dict[tuple[str | None, str], list[str]] = {}
    for source in SOURCES:
        if source.is_file():
            pairs = _extract_file(source)
        else:
            pairs = (
                (source / name, line, msgid, ctx)
                for name, line, msgid, _c, ctx in extract_from_dir(
                    str(source), method_map=[("**.py", "python")], keywords=KEYWORDS
                )
            )
        for path, line, msgid, ctx in pairs:
            where = f"{Path(path).relative_to(REPO)}:{line}"
            found.setdefault(key_of(msgid, ctx), []).append(where)
    for path, line, key in _in_fstrings():
        found.setdefault(key, []).append(f"{path.relative_to(REPO)}:{line}")
    return found


def _in_fstrings() -> Iterator[tuple[Path, int, tuple[str | None, str]]]:
    """Ids marked inside an f-string's fields (``f"### {_('Your answer')}"``), which Babel's
    extractor does not read on Python < 3.12 (an f-string is one token there): read from the
    AST instead. ``pybabel extract`` misses these ids; the catalogue still needs them."""
    paths = [s for s in SOURCES if s.is_file()] + [
        p for s in SOURCES if s.is_dir() for p in sorted(s.rglob("*.py"))
    ]
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fstring in (n for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)):
            for call in (n for n in ast.walk(fstring) if isinstance(n, ast.Call)):
                name = call.func.id if isinstance(call.func, ast.Name) else None
                texts = [a.value for a in call.args if isinstance(a, ast.Constant)]
                if name not in TRANSLATORS or not texts or not isinstance(texts[0], str):
                    continue
                if name == "pgettext" and len(texts) > 1:
                    yield path, call.lineno, (texts[0], texts[1])
                else:
                    yield path, call.lineno, (None, texts[0])


def _extract_file(path: Path) -> Iterator[tuple[Path, int, object, str | None]]:
    from babel.messages.extract import extract

    with path.open("rb") as fh:
        for line, msgid, _c, ctx in extract("python", fh, keywords=KEYWORDS):
            yield path, line, msgid, ctx


@dataclass(frozen=True)
class Entry:
    """One message of one ``.po`` file."""

    path: str  # relative to the repository, with the entry's line
    key: tuple[str | None, str]
    translation: tuple[str, ...]  # msgstr, or the plural forms

    @property
    def empty(self) -> bool:
        return not any(self.translation)


def po_entries() -> dict[str, list[Entry]]:
    """Language -> every entry of its ``.po`` files."""
    out: dict[str, list[Entry]] = {}
    for lang_dir in sorted(p for p in LOCALE.iterdir() if p.is_dir()):
        entries = out.setdefault(lang_dir.name, [])
        for po in sorted((lang_dir / "LC_MESSAGES").glob("*.po")):
            with po.open("rb") as fh:
                catalog = read_po(fh, locale=lang_dir.name)
            for message in catalog:
                if not message.id:
                    continue
                text = message.string
                forms = tuple(text) if isinstance(text, tuple | list) else (text or "",)
                line = message.lineno or 0
                where = f"{po.relative_to(REPO)}:{line}"
                entries.append(Entry(where, key_of(message.id, message.context), forms))
    return out


def fields(text: str) -> set[str]:
    """The ``str.format`` fields a text names: '{n} of {total:,}' -> {'n', 'total'}."""
    try:
        return {name.split(".")[0].split("[")[0] for _t, name, _s, _c in
                string.Formatter().parse(text) if name is not None}  # fmt: skip
    except ValueError:
        return {"<malformed>"}


Ids = dict[tuple[str | None, str], list[str]]  # an id -> where the code uses it


def show(key: tuple[str | None, str]) -> str:
    context, msgid = key
    return f"{context}|{msgid[:60]!r}" if context else repr(msgid[:60])


def missing(lang: str, code_ids: Ids, entries: list[Entry]) -> list[str]:
    """``path:line: id`` for each id the code uses that ``lang``'s entries lack (an empty
    translation counts as missing, except in English, whose ids are the English text)."""
    have = {e.key for e in entries if lang == DEFAULT or not e.empty}
    ordered = sorted(code_ids.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))
    return [f"{where[0]}: {show(key)}" for key, where in ordered if key not in have]


def stale(code_ids: Ids, entries: list[Entry]) -> list[str]:
    """Entries whose id no code uses."""
    return [f"{e.path}: {show(e.key)}" for e in entries if e.key not in code_ids]


def clashes(entries: list[Entry]) -> list[str]:
    """Ids that two entries (of one language) translate differently."""
    first: dict[tuple[str | None, str], Entry] = {}
    found = []
    for entry in entries:
        seen = first.setdefault(entry.key, entry)
        if seen is not entry and seen.translation != entry.translation:
            found.append(f"{seen.path} and {entry.path}: {show(entry.key)}")
    return found


def wrong_fields(entries: list[Entry]) -> list[str]:
    """Translations that name other ``{fields}`` than their id (``.format`` would fail)."""
    return [
        f"{e.path}: {show(e.key)} -> {form[:60]!r}"
        for e in entries
        for form in e.translation
        if form and fields(form) != fields(e.key[1])
    ]


# -- the scan for strings left outside the catalogue -----------------------------------------
def has_words(text: str) -> bool:
    """Whether ``text`` holds a word a reader would need translated (ALLOWED_WORDS aside)."""
    bare = _MARKUP.sub(" ", text)
    if re.fullmatch(r"[\w.\-/:]*", bare.strip()) and " " not in bare.strip():
        # one token: a key, a CSS class, a format spec; a capitalised one is a word
        token = bare.strip()
        return bool(re.fullmatch(r"[A-Z][a-z]{2,}", token)) and token not in ALLOWED_WORDS
    return any(w not in ALLOWED_WORDS for w in _WORD.findall(bare))


def _literal_texts(node: ast.AST) -> Iterator[tuple[int, str]]:
    """The string literals of an expression a reader would see, outside ``_()`` and
    outside ``.format()``'s arguments."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.lineno, node.value
    elif isinstance(node, ast.JoinedStr):
        parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
        yield node.lineno, "".join(str(p) for p in parts)
    elif isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in TRANSLATORS:
            return
        if isinstance(node.func, ast.Attribute):
            yield from _literal_texts(node.func.value)  # "...".format(...): the receiver
            if node.func.attr in ("format", "join", "get", "strip"):
                return
        # another function's arguments are its own business (a helper that words them)
    elif isinstance(node, ast.IfExp):
        yield from _literal_texts(node.body)
        yield from _literal_texts(node.orelse)
    elif isinstance(node, ast.BinOp):
        yield from _literal_texts(node.left)
        yield from _literal_texts(node.right)
    elif isinstance(node, ast.List | ast.Tuple):
        for element in node.elts:
            yield from _literal_texts(element)


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _shown_arguments(node: ast.Call, rel: str) -> Iterator[ast.AST]:
    """The arguments of ``node`` a reader sees, by where ``rel`` sits."""
    name = _callee(node)
    in_streamlit = rel.startswith(STREAMLIT_LAYER)
    in_cli = rel in CLIS
    if in_streamlit and name in TEXT_CALLS and isinstance(node.func, ast.Attribute):
        yield from node.args[:1] if name != "tabs" else node.args
        yield from (k.value for k in node.keywords if k.arg in LABEL_KEYWORDS)
    if rel.startswith(FIGURE_LAYER):
        yield from (k.value for k in node.keywords if k.arg in TITLE_KEYWORDS)
        if name in FIGURE_POSITIONAL:
            low, high = FIGURE_POSITIONAL[name]
            yield from node.args[low:high]
        if name and name[:1].isupper():  # a plotly trace (go.Scatter): its legend name
            yield from (k.value for k in node.keywords if k.arg == "name")
    if in_cli:
        yield from (k.value for k in node.keywords if k.arg in CLI_KEYWORDS)
        if name == "print":
            yield from node.args


_WORDING = TRANSLATORS - {"N_", "Nn_"}


def _kept(function: ast.FunctionDef) -> Iterator[ast.AST]:
    """What ``function`` returns or assigns (to a name or an attribute)."""
    for node in ast.walk(function):
        if isinstance(node, ast.Return | ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value:
            yield node.value


def untranslated(path: Path) -> list[str]:
    """``path:line: 'text'`` for each user-visible literal of ``path`` outside the catalogue."""
    return untranslated_source(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))


def untranslated_source(source: str, rel: str) -> list[str]:
    """``untranslated`` for ``source`` as if it were the module at ``rel`` (repository path)."""
    tree = ast.parse(source)
    found: list[str] = []
    for node in ast.walk(tree):
        shown: list[ast.AST] = []
        if isinstance(node, ast.Call):
            shown.extend(_shown_arguments(node, rel))
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            if rel in CLI_MODULES or (
                rel.startswith("dashboard/") and not rel.startswith(QUIET_RAISES)
            ):
                shown.extend(node.exc.args[:1])
        elif isinstance(node, ast.FunctionDef) and rel.startswith(WORDED_MODULES):
            shown.extend(_kept(node))
        elif isinstance(node, ast.Assign) and rel in CLIS:
            for target in node.targets:  # parser.description = "...", action.help = "..."
                if isinstance(target, ast.Attribute) and target.attr in CLI_KEYWORDS:
                    shown.append(node.value)
        if isinstance(node, ast.Call) and rel in WORKER_MODULES and _callee(node) in _WORDING:
            found.append(f"{rel}:{node.lineno}: {_callee(node)}() in a worker thread")
        for arg in shown:
            for line, text in _literal_texts(arg):
                if text not in D2L_LINES and not _COMMAND.match(text) and has_words(text):
                    found.append(f"{rel}:{line}: {text[:70]!r}")
    return sorted(set(found), key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


def scanned_files() -> list[Path]:
    """The dashboard's modules, the command lines' (CLI_MODULES) and the sweep's."""
    found = [*sorted((REPO / "dashboard").rglob("*.py")), *(REPO / m for m in CLI_MODULES)]
    found += [p for p in sorted((REPO / "gru_core" / "sweep").glob("*.py")) if p not in found]
    found += [REPO / m for m in RUN_WORKERS]
    return [p for p in found if "__pycache__" not in p.parts]


if __name__ == "__main__":  # python tests/catalogue_scan.py: every string still to wrap
    for module in scanned_files():
        for line in untranslated(module):
            print(line)
