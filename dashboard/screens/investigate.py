"""The investigations page, and the step banner the lab and the map show while one is open.

Reads top to bottom: which investigations are done -> the chosen one's steps (apply in one
click, what to look at, its check on the student's own runs and maps) -> the answer in their
own words -> what their data says. A lab step goes to the lab as a lesson does
(``panel.set_values``, so a teacher's lock holds); a map step fills the map page's settings.
The lab records the views opened on a run, the map each finished map (``record_view``,
``record_map``); the bench's ``ProgressBook`` saves all of it with the runs.
While a run of the bench or this session's map is in flight (``in_flight``), the progress is
a fragment that reruns every ``POLL_S``: it re-reads the saved runs (and records a map that
finished here in the background), so a step turns done without a click; it stops polling
when nothing is in flight. Script thread only.
"""

from __future__ import annotations

import streamlit as st

from dashboard.investigate.catalogue import LAB, Investigation, Scale, Step, investigations
from dashboard.investigate.catalogue import progress_of as count
from dashboard.investigate.checks import Check
from dashboard.investigate.evidence import Evidence, ViewMark, map_fact
from dashboard.investigate.findings import finding
from dashboard.investigate.progress import ProgressBook
from dashboard.investigate.sheet import worksheet_from_progress
from dashboard.runs.saved import SavedRun, SavedRuns
from dashboard.screens.resources import TOKEN_PARAM, bench_work, browser_token, run_store
from dashboard.sidebar import controls as ctl
from dashboard.sidebar.language import language_fragment
from dashboard.sidebar.panel import init_widget_state
from dashboard.views.display import page_style
from dashboard.worksheet import Worksheet, file_name, worksheet_html, worksheet_markdown
from gru_core.i18n import _, language, language_scope, worded
from gru_core.sweep.job import ENDED, SweepJob, SweepSnapshot

BOOK = "_progress_book"
# Marks from Streamlit's own icon font (an emoji font may be missing in the browser).
DONE, PART, TODO = ":material/check_circle:", ":material/timelapse:", ":material/circle:"
PICK = "investigation"
POLL_S = 1.5  # seconds between redraws of the progress while a run or a map is in flight


def progress_book() -> ProgressBook:
    """This bench's progress, loaded from the store once a session."""
    book: ProgressBook | None = st.session_state.get(BOOK)
    if book is None:
        book = ProgressBook(run_store(), browser_token())
        book.load()
        st.session_state[BOOK] = book
    return book


def student_runs() -> list[SavedRun]:
    """This bench's saved runs: the lab's, with those another session of the bench saved to
    the store since this one loaded (a second tab; a page left while its run was ending is
    saved when its session closes, after the next page has loaded), else the store's."""
    saved = bench_runs()
    saved.refresh()
    return list(saved)


def bench_runs() -> SavedRuns:
    """The lab's saved runs, else the store's (the lab not opened yet): thread-safe, so a
    download may read them when it is clicked."""
    lab = st.session_state.get("lab")
    if lab is not None:
        return lab.runs
    saved = SavedRuns(store=run_store(), token=browser_token())
    saved.load()
    return saved


def in_flight() -> bool:
    """A run of this bench still training or being saved, in this session's lab or another
    session's (``BenchWork``), or this session's map still running: the progress may change
    without a click."""
    lab = st.session_state.get("lab")
    if lab is not None and lab.active:
        return True
    sweep: SweepJob | None = st.session_state.get("sweep")
    if sweep is not None and sweep.snapshot().state not in ENDED:
        return True
    return bench_work().busy(browser_token())


def record_finished_map() -> None:
    """This session's map, once it has ended (it may end while the student is elsewhere)."""
    sweep: SweepJob | None = st.session_state.get("sweep")
    if sweep is not None:
        snap = sweep.snapshot()
        if snap.state in ENDED:
            record_map(sweep, snap)


def evidence(book: ProgressBook) -> Evidence:
    """The student's saved runs (this bench's) with the maps and views in their progress."""
    return Evidence.gather(student_runs(), book.progress.maps, book.progress.views)


def checked(inv: Investigation, ev: Evidence, book: ProgressBook) -> list[Check]:
    """Each step's check; a step done now is kept done (with its result) in the progress and
    shown as ``Check.or_kept`` says."""
    out = []
    for step in inv.steps:
        result = step.check(ev)
        if result.done:
            book.mark_done(step.id, result.message)
        out.append(result.or_kept(book.progress.done.get(step.id)))
    return out


# -- applying a step ---------------------------------------------------------------------
def apply_step(inv: Investigation, step: Step) -> None:
    """The step's settings in one click, on its page (a lab step as a lesson applies them)."""
    progress_book().set_active(inv.key)
    pages = st.session_state["_pages"]
    keep = {  # the teacher's link (hide, lock), the bench, the language: not the settings
        k: v for k, v in st.query_params.to_dict().items()
        if k not in ctl.BY_KEY and not k.startswith("map_")
    }  # fmt: skip
    if step.page == LAB:
        st.session_state._fork_values = {**ctl.defaults(), **step.values}
        st.session_state.lesson = None
        st.switch_page(pages["lab"], query_params=keep)
    for key, value in step.values.items():
        st.session_state[key] = list(value) if isinstance(value, list) else value
    for side in ("x", "y"):
        st.session_state[f"_map_{side}_axis"] = step.values[f"map_{side}"]
    st.session_state._map_initialised = True
    st.switch_page(pages["map"], query_params=keep)


# -- what the lab and the map record -----------------------------------------------------
def record_view(view: str, model: str | None, steps: int | None) -> None:
    if model is not None and steps is not None:
        progress_book().saw(ViewMark(view, model, int(steps)))


def record_map(job: SweepJob, snap: SweepSnapshot) -> None:
    if snap.finished:
        fact = map_fact(job.spec, snap.results, snap.edges, snap.elapsed)
        progress_book().add_map(fact)


def step_banner(page: str) -> None:
    """On the lab or the map: the open investigation's next step, and a way back."""
    book = progress_book()
    inv = next((i for i in investigations() if i.key == book.progress.active), None)
    if inv is None:
        return
    checks = checked(inv, evidence(book), book)
    todo = next((i for i, c in enumerate(checks) if not c.done), None)
    box = st.container(border=True, key="investigation_banner")
    done, total = count(inv, book.progress.done, book.progress.answers.get(inv.key, ""))
    box.markdown(
        _("**Investigation:** {title} · {done} of {total} done").format(
            title=_(inv.title), done=done, total=total
        )
    )
    if todo is None:
        box.success(_("Every step is done: write your answer on the Investigations page."))
    else:
        step = inv.steps[todo]
        here = step.page == page
        box.markdown(
            _("**Step {n}: {title}**").format(n=todo + 1, title=_(step.title))
            + (" · " + _("on this page") if here else "")
        )
        box.caption(checks[todo].message)
    box.page_link(st.session_state["_pages"]["investigate"], label=_("Back to the investigation"))


# -- the page ----------------------------------------------------------------------------
def investigate_page() -> None:
    page_style()
    init_widget_state()  # a teacher's link read here too: its locks hold on every page
    st.title(_("Investigations"))
    st.caption(
        _(
            "The study note's three questions and d2l's exercise 4, step by step. Each step "
            "sets things up in one click; it is done when your own runs and maps show it."
        )
    )
    book = progress_book()
    scale = Scale.from_env()
    busy = in_flight()

    @language_fragment(run_every=POLL_S if busy else None)
    def progress() -> None:
        record_finished_map()
        _progress(book, scale)
        if book.problem:  # a save of this fragment's answer may have failed
            st.warning(worded(book.problem), icon="💾")
        if busy and not in_flight():  # the last run saved, the map recorded: stop polling
            st.rerun()

    progress()
    _downloads(book, scale)
    _sync_url()


def _progress(book: ProgressBook, scale: Scale) -> None:
    """Which investigations are done, the chosen one's steps with their checks, the answer."""
    ev = evidence(book)
    invs = investigations(scale)
    status = {i.key: checked(i, ev, book) for i in invs}
    _summary(invs, book)
    keys = [i.key for i in invs]
    if st.session_state.get(PICK) not in keys:
        st.session_state[PICK] = book.progress.active if book.progress.active in keys else keys[0]
    titles = {i.key: _(i.title) for i in invs}
    key = st.radio(
        _("Choose an investigation"), keys, key=PICK, format_func=titles.get, horizontal=True
    )
    inv = next(i for i in invs if i.key == key)
    if book.progress.active != key:
        book.set_active(key)
    _investigation(inv, status[key], book, ev, scale)


def _summary(invs: tuple[Investigation, ...], book: ProgressBook) -> None:
    lines = []
    for inv in invs:
        done, total = count(inv, book.progress.done, book.progress.answers.get(inv.key, ""))
        word = _("all done") if done == total else _("{done} of {total} steps").format(
            done=done, total=total)  # fmt: skip
        mark = DONE if done == total else (PART if done else TODO)
        lines.append(f"- {mark} **{_(inv.title)}**: {word}")
    st.markdown("\n".join(lines), help=None)


def _investigation(
    inv: Investigation, checks: list[Check], book: ProgressBook, ev: Evidence, scale: Scale
) -> None:
    answer = book.progress.answers.get(inv.key, "")
    done, total = count(inv, book.progress.done, answer)
    st.header(_(inv.question))  # h2 under the page's h1 (axe: heading-order)
    st.progress(done / total, _("{done} of {total} steps done").format(done=done, total=total))
    for n, (step, check) in enumerate(zip(inv.steps, checks, strict=True), start=1):
        with st.container(border=True, key=f"step_{step.id.replace('.', '_')}"):
            st.markdown(f"{DONE if check.done else TODO} **{n}. {_(step.title)}**")
            st.markdown(_(step.text).format(**scale.fields()))
            st.caption(
                _("Training takes about {s} on this 2-core CPU.").format(s=_seconds(step.seconds))
            )
            label = _("Set it up in the Lab") if step.page == LAB else _("Set it up on the map")
            if st.button(label, key=f"apply_{step.id}"):
                apply_step(inv, step)
            (st.success if check.done else st.info)(check.message)
    _answer(inv, book, ev, scale)
    if st.button(_("Start this investigation over"), key=f"reset_{inv.key}"):
        book.reset(inv.key, inv.step_ids)
        st.session_state.pop(f"answer_{inv.key}", None)
        st.rerun()


def _answer(inv: Investigation, book: ProgressBook, ev: Evidence, scale: Scale) -> None:
    st.markdown(f"**{len(inv.steps) + 1}. {_(inv.ask)}**")
    widget = f"answer_{inv.key}"
    st.session_state.setdefault(widget, book.progress.answers.get(inv.key, ""))

    def save() -> None:
        book.answer(inv.key, str(st.session_state.get(widget, "")))

    st.text_area(_("Your answer, in your own words"), key=widget, on_change=save)
    st.button(_("Save my answer"), key=f"save_{inv.key}", on_click=save)
    done, total = count(inv, book.progress.done, book.progress.answers.get(inv.key, ""))
    if book.progress.answers.get(inv.key, "").strip() and done == total:
        found = finding(inv.key, ev, scale)
        with st.container(border=True, key=f"finding_{inv.key}"):
            st.markdown(_("**What your data says**"))
            st.markdown("\n".join(f"- {line}" for line in found.data) or _("No data yet."))
            if found.theory:
                st.caption(found.theory)
    elif book.progress.answers.get(inv.key, "").strip():
        st.info(_("Finish the steps above (or write a little more) to see what your data says."))


def _downloads(book: ProgressBook, scale: Scale) -> None:
    """'Download my worksheet': HTML (figures inline, offline) and Markdown, built when
    clicked (on another thread: in this page's language, from the progress and runs then:
    an answer saved in the progress fragment since this part was drawn included)."""
    saved, lang, bench = bench_runs(), language(), book.token

    def sheet() -> Worksheet:
        saved.refresh()  # the runs the checks read, the lab opened or not
        with language_scope(lang):
            return worksheet_from_progress(book.progress, list(saved), scale, lang, bench=bench)

    def html() -> str:
        return worksheet_html(sheet())

    def markdown() -> str:
        return worksheet_markdown(sheet())

    named = Worksheet(())
    row = st.container(horizontal=True, key="worksheet_downloads")
    row.download_button(_("Download my worksheet (HTML)"), html, file_name(named, "html"),
                        "text/html", on_click="ignore")  # fmt: skip
    row.download_button(_("Download my worksheet (Markdown)"), markdown, file_name(named, "md"),
                        "text/markdown", on_click="ignore")  # fmt: skip


def _seconds(s: float) -> str:
    return _("{n} s").format(n=max(1, round(s))) if s < 90 else _("{n} min").format(n=round(s / 60))


def _sync_url() -> None:
    """Keep ``?bench=`` in the address, so a reload finds the same progress."""
    token = st.session_state.get(TOKEN_PARAM)
    if token and run_store() is not None and st.query_params.get(TOKEN_PARAM) != token:
        st.query_params[TOKEN_PARAM] = token
