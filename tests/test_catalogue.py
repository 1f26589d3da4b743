"""The message catalogue is complete (issue 22): every id the code marks is in every language,
the ``.po`` files agree with each other and with the code, and no user-visible string is left
outside ``_()`` (``catalogue_scan``'s rules). A failure lists ``file:line`` for each miss.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from catalogue_scan import (
    REPO,
    Entry,
    Ids,
    clashes,
    extracted,
    fields,
    has_words,
    missing,
    po_entries,
    scanned_files,
    stale,
    untranslated,
    untranslated_source,
    wrong_fields,
)

from gru_core.i18n import LANGUAGES

# Files allowed to hold strings outside the catalogue while they are being wrapped: none now.
# Strict: a file on it that comes clean fails, so the list can only shrink.
# ``python tests/catalogue_scan.py`` prints every string still to wrap, file:line.
PENDING: frozenset[str] = frozenset()


@pytest.fixture(scope="module")
def code_ids() -> dict[tuple[str | None, str], list[str]]:
    return extracted()


@pytest.fixture(scope="module")
def entries() -> dict[str, list[Entry]]:
    return po_entries()


def test_every_language_has_a_catalogue(entries: dict[str, list[Entry]]) -> None:
    assert set(LANGUAGES) <= set(entries), f"no .po files for {set(LANGUAGES) - set(entries)}"


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_every_id_in_the_code_is_translated(
    lang: str, code_ids: Ids, entries: dict[str, list[Entry]]
) -> None:
    """English may leave msgstr empty (the id is the English text); other languages may not."""
    found = missing(lang, code_ids, entries.get(lang, []))
    assert not found, f"{len(found)} ids have no {lang} text:\n" + "\n".join(found)


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_no_catalogue_keeps_an_id_the_code_does_not_use(
    lang: str, code_ids: Ids, entries: dict[str, list[Entry]]
) -> None:
    found = stale(code_ids, entries.get(lang, []))
    assert not found, f"{len(found)} stale ids (no code uses them):\n" + "\n".join(found)


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_two_files_never_translate_one_id_differently(
    lang: str, entries: dict[str, list[Entry]]
) -> None:
    found = clashes(entries.get(lang, []))
    assert not found, "one id, two translations:\n" + "\n".join(found)


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_translations_keep_the_ids_format_fields(
    lang: str, entries: dict[str, list[Entry]]
) -> None:
    """'{n} runs' -> '{n} 次运行': a translation naming another field fails at .format()."""
    found = wrong_fields(entries.get(lang, []))
    assert not found, "translations whose {fields} differ from the id's:\n" + "\n".join(found)


def test_the_checks_find_what_they_look_for() -> None:
    """The checks above on a made-up catalogue: a miss, an empty Chinese text, a stale id,
    a clash between two files, a renamed field."""
    code: Ids = {(None, "Start"): ["a.py:1"], (None, "{n} runs"): ["a.py:2"],
                 ("button", "Step"): ["a.py:3"]}  # fmt: skip
    zh = [
        Entry("zh/a.po:1", (None, "Start"), ("开始",)),
        Entry("zh/a.po:2", (None, "{n} runs"), ("{count} 次运行",)),
        Entry("zh/b.po:1", (None, "Start"), ("启动",)),
        Entry("zh/b.po:2", ("button", "Step"), ("",)),
        Entry("zh/b.po:3", (None, "Gone"), ("走了",)),
    ]
    assert missing("zh_CN", code, zh) == ["a.py:3: button|'Step'"]
    assert missing("en", code, [Entry("en/a.po:1", k, ("",)) for k in code]) == []
    assert stale(code, zh) == ["zh/b.po:3: 'Gone'"]
    assert clashes(zh) == ["zh/a.po:1 and zh/b.po:1: 'Start'"]
    assert wrong_fields(zh) == ["zh/a.po:2: '{n} runs' -> '{count} 次运行'"]
    assert fields("{n:,} of {total}") == {"n", "total"}


def test_the_scanner_finds_strings_outside_the_catalogue() -> None:
    """The rules of catalogue_scan on a made-up view: what it must flag and what it must not."""
    source = (
        "st.button('Start', help='train now')\n"  # 1: both flagged
        "st.button(_('Start'), help=_('train now'), key='run-start')\n"  # 2: fine
        "sb.caption(f'{n} runs kept')\n"  # 3: an f-string with words
        "st.metric('θ', value)\n"  # 4: a symbol
        "st.markdown(_('{n} of {total}').format(n=n, total='all'))\n"  # 5: a field's value
        "st.tabs(['Overview', _('Gates')])\n"  # 6: 'Overview'
        "raise ValueError('bad thing')\n"  # 7: a message
        "apply_layout(fig, 'Perplexity', _('step'), 'GRU')\n"  # 8: 'Perplexity'
    )
    found = [line.split(":")[1] for line in untranslated_source(source, "dashboard/views/x.py")]
    assert sorted(found, key=int) == ["1", "1", "3", "6", "7", "8"]
    assert not has_words("{n}") and not has_words("run-start") and not has_words("GRU θ")
    assert has_words("Start") and has_words("time step t")


def test_a_training_jobs_endings_are_facts_worded_where_shown() -> None:
    """A job's thread wrote how a run ended in English (a Chinese page and ``--lang zh``
    showed it so): the scanner flags such words in the run's worker modules, and a ``Note``
    (kept facts) passes."""
    source = (
        "def stop(step):\n"
        "    message = f'stopped at step {step}'\n"  # 2: English made in the worker
        "    kept = Note(N_('stopped at step {step}'), step=step)\n"  # 3: facts
        "    return _('stopped')\n"  # 4: worded in the worker thread
    )
    found = untranslated_source(source, "gru_core/run/job.py")
    assert [line.split(":")[1] for line in found] == ["2", "4"], found


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            marks=pytest.mark.xfail(strict=True, reason="not wrapped yet (issue 22 branches)")
            if str(p.relative_to(REPO)) in PENDING
            else (),
        )
        for p in scanned_files()
    ],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_no_user_visible_string_outside_the_catalogue(path: Path) -> None:
    found = untranslated(path)
    assert not found, f"{len(found)} strings to wrap in _():\n" + "\n".join(found)


def test_pending_lists_only_files_that_exist() -> None:
    names = {str(p.relative_to(REPO)) for p in scanned_files()}
    assert PENDING <= names, sorted(PENDING - names)


def test_every_fragment_sets_the_page_language() -> None:
    """A fragment's rerun skips app.py: ``language_fragment`` (sidebar/language.py) is the
    one way to declare one, so the language in force is set at its start."""
    allowed = REPO / "dashboard" / "sidebar" / "language.py"
    offenders = []
    for path in sorted((REPO / "dashboard").rglob("*.py")):
        if path == allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "fragment":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, "use language_fragment, not st.fragment:\n" + "\n".join(offenders)
