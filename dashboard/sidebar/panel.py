"""The sidebar: lesson picker, the control table's widgets, and the corpus picker.

Every widget is drawn from a row of ``controls.CONTROLS`` (label, help, bounds, options, which
ones are live), so the sidebar restates nothing. Widget values live in ``st.session_state``
under ``controls.widget_key(key, generation)``; each applied lesson starts a new generation.
Every word is shown in the reader's language (``gru_core.i18n``): the table's labels, help,
sections and option names are translated here, where they are drawn; widget keys and values stay
the table's identifiers. Runs in the script thread only.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard.session.lab import Lab
from dashboard.sidebar import controls as ctl
from dashboard.sidebar import lessons
from dashboard.sidebar.controls import Control
from dashboard.sidebar.room import hidden_controls, locked_controls, read_room_params
from dashboard.views.display import PROJECTOR_KEY
from gru_core.config import LIVE_KNOBS, available_devices
from gru_core.data import Corpus, max_num_steps, split_sizes
from gru_core.i18n import N_, _
from gru_core.sources import MAX_UPLOAD_BYTES

WIDGET_GENERATION = "_widget_generation"  # bumped by each applied lesson
LOCK_NOTE = "_lock_note"  # the locked controls the last preset left as they were
LOCKED_HELP = N_("locked by this link")  # added to a locked control's help


def wkey(key: str) -> str:
    """The session_state key of control ``key``'s widget in the current generation."""
    return ctl.widget_key(key, st.session_state.get(WIDGET_GENERATION, 0))


def init_widget_state() -> None:
    """First run of a session: d2l's defaults, overridden by valid URL query parameters."""
    if st.session_state.get("_initialised"):
        return
    values, warnings = ctl.from_query(st.query_params.to_dict())
    for key, value in {**ctl.defaults(), **values}.items():
        st.session_state[wkey(key)] = value
    st.session_state.url_warnings = warnings
    st.session_state.lesson = "d2l default" if not values else None
    st.session_state[PROJECTOR_KEY] = st.query_params.get(PROJECTOR_KEY) in ("1", "true", "on")
    st.session_state.url_warnings += read_room_params(st.query_params.to_dict())
    st.session_state._initialised = True


KNOWN = "_control_values"  # the last values the page showed, kept outside any widget's state


def widget_values() -> dict[str, Any]:
    """Every control's value: its widget's, else the last one shown, else the default."""
    known = st.session_state.get(KNOWN, {})
    return {
        c.key: st.session_state.get(wkey(c.key), known.get(c.key, c.default)) for c in ctl.CONTROLS
    }


def _restore_missing() -> None:
    """Put back any widget value Streamlit dropped between runs (it cleans up the state of
    widgets a run did not draw; with reruns interleaved, as when a browser's stale values
    race a lesson, a control could come back at its slider's minimum), from the copy this
    module keeps of the values last shown."""
    known = st.session_state.get(KNOWN)
    if not known:
        return
    for c in ctl.CONTROLS:
        key = wkey(c.key)
        if key not in st.session_state and c.key in known:
            st.session_state[key] = known[c.key]


def set_values(values: dict[str, Any]) -> tuple[str, ...]:
    """Show ``values`` (control key -> value) in a new generation of widgets (see
    ``controls.widget_key``: the browser's stale values of the old ones cannot undo it).
    Controls a teacher's link locks keep their values (``lessons.respect_locks``); those a
    preset would have changed are returned, and said in the sidebar (``LOCK_NOTE``)."""
    generation = st.session_state.get(WIDGET_GENERATION, 0) + 1
    current = widget_values()
    values, kept = lessons.respect_locks(values, current, locked_controls())
    st.session_state[LOCK_NOTE] = kept
    merged = {**current, **values}
    for key, value in merged.items():
        st.session_state[ctl.widget_key(key, generation)] = value
    st.session_state[WIDGET_GENERATION] = generation
    st.session_state[KNOWN] = merged
    push_live_knobs()
    return kept


def _apply_lesson() -> None:
    name = st.session_state.get("lesson")
    if name:
        set_values(lessons.lesson_values(name))


def push_live_knobs() -> None:
    """Clip threshold, lr and speed reach a running job at its next step."""
    lab: Lab | None = st.session_state.get("lab")
    if lab is None or not lab.active or lab.job is None:
        return
    values = widget_values()
    try:
        config = ctl.config_from_values(values)
    except ValueError:
        return  # the page shows the invalid setting; the job keeps its knobs
    for name in LIVE_KNOBS:
        lab.job.set_knob(name, getattr(config, name))
    lab.job.set_speed(ctl.speed_value(values["speed"]))


def _steps_fit(c: Control, values: dict[str, Any], corpus: Corpus, sb: DeltaGenerator) -> int:
    """The sequence-length slider's top: the longest T whose (B, T) minibatch fits in the
    training slice. A value over it is lowered, and the sidebar says why and what to do."""
    try:
        config = ctl.config_from_values(values)
    except ValueError:
        return int(c.high or 0)
    train, _val, _end = split_sizes(len(corpus.tokens), config.max_tokens, config.val_tokens)
    fit = max_num_steps(train, config.batch_size)
    assert c.low is not None and c.high is not None
    if fit < c.low:
        sb.warning(
            _(
                "The training text ({chars} characters) cannot fill one minibatch of "
                "{batch} sequences × {steps} steps: lower the batch size."
            ).format(chars=f"{train:,}", batch=config.batch_size, steps=int(c.low))
        )
        return int(c.high)
    top = min(int(c.high), fit)
    if values["steps"] > top:
        st.session_state[wkey("steps")] = top
        values["steps"] = top
        if values["slice"] != "all":
            advice = _(
                "Lower the batch size or train on more text (Training text) for longer sequences."
            )
        else:
            advice = _("Lower the batch size for longer sequences.")
        said = _(
            "Sequence length lowered to {top}: {batch} sequences × {top} steps fill the "
            "{chars} training characters."
        ).format(top=top, batch=config.batch_size, chars=f"{train:,}")
        sb.warning(said + " " + advice)
    return top


def _widget(
    c: Control, values: dict[str, Any], corpus: Corpus, sb: DeltaGenerator, locked: bool
) -> None:
    common: dict[str, Any] = dict(
        key=wkey(c.key),
        help=" · ".join(_(text) for text in (c.help, LOCKED_HELP if locked else "") if text)
        or None,
        disabled=locked or not c.enabled(values),
        on_change=push_live_knobs if c.live else None,
    )
    label = _(c.label)
    if c.widget == "slider":
        assert c.low is not None and c.high is not None
        high = _steps_fit(c, values, corpus, sb) if c.key == "steps" else int(c.high)
        sb.slider(label, int(c.low), high, _shown(c, values), step=c.step, **common)
    elif c.widget == "number":
        assert c.low is not None and c.high is not None
        sb.number_input(label, int(c.low), int(c.high), _shown(c, values), step=c.step, **common)
    elif c.widget == "ladder":
        sb.select_slider(label, c.options, _shown(c, values), format_func=_names(c), **common)
    elif c.widget == "toggle":
        sb.toggle(label, bool(_shown(c, values)), **common)
    elif c.widget == "radio":
        sb.radio(
            label,
            c.options,
            _index(c.options, _shown(c, values)),
            horizontal=True,
            format_func=_names(c),
            **common,
        )
    elif c.widget == "select":
        options = _options(c)
        sb.selectbox(
            label, options, _index(options, _shown(c, values)), format_func=_names(c), **common
        )
    else:  # a row the table validates cannot get here
        said = _("control {key}: unknown widget {widget}")
        raise ValueError(said.format(key=repr(c.key), widget=repr(c.widget)))


def _names(c: Control) -> Any:
    """The widget's ``format_func``: each option as this run shows it, in this run's language
    (a lookup, not a call to ``_``: whoever reads a value back through it later, in another
    language or thread, as AppTest does, finds the names the page showed)."""
    return {option: c.show(option) for option in c.options}.__getitem__


def _shown(c: Control, values: dict[str, Any]) -> Any:
    """The value control ``c``'s widget is drawn with, also as its default.

    The widget's state holds the value in force; it is passed as the default too because a
    browser that mounts the widget from a later run than the one that set its value (a
    lesson's new widgets, with two runs' messages arriving at once) shows the default, and
    a widget's default is otherwise its minimum: the page said 'Hidden size 8' while 128
    was in force. (A keyed widget's identity does not include its default.)"""
    return st.session_state.get(wkey(c.key), values[c.key])


def _index(options: tuple[Any, ...], value: Any) -> int:
    return options.index(value) if value in options else 0


def _options(c: Control) -> tuple[Any, ...]:
    """A select's options; the device list is what this machine has."""
    if c.key != "device":
        return c.options
    found = available_devices()
    if st.session_state.get(wkey("device")) not in found:
        device = st.session_state.get(wkey("device"))
        st.session_state.url_warnings.append(
            _("device {device} is not available here; using auto").format(device=repr(device))
        )
        st.session_state[wkey("device")] = "auto"
    return tuple(o for o in c.options if o in found)


def lock_note(box: Any) -> None:
    """Which locked controls the last preset left as the teacher's link set them."""
    kept = st.session_state.get(LOCK_NOTE, ())
    if kept:
        shown = ", ".join(
            _("{label} stays at {value}").format(
                label=_(ctl.BY_KEY[k].label), value=ctl.BY_KEY[k].show(widget_values()[k])
            )
            for k in kept
        )
        box.warning(
            _("Locked by your teacher's link: {controls}.").format(controls=shown), icon="🔒"
        )


def _left_lesson() -> str | None:
    """The lesson the settings have moved away from, if any; it is then deselected, so its
    text no longer describes settings that are not the lesson's."""
    name = st.session_state.get("lesson")
    if not name or name not in lessons.BY_NAME:
        return None
    current = widget_values()
    if current == lessons.respect_locks(lessons.lesson_values(name), current, locked_controls())[0]:
        return None
    st.session_state.lesson = None
    st.session_state[LOCK_NOTE] = ()
    return name


def sidebar(corpus: Corpus, sb: DeltaGenerator) -> None:
    """The lesson picker and every control, into ``sb`` (a sidebar container)."""
    _restore_missing()
    sb.header(_("Lesson"))
    left = _left_lesson()
    sb.selectbox(
        _("Lesson preset"),
        [lesson.name for lesson in lessons.LESSONS],
        key="lesson",
        index=None,
        format_func={lesson.name: lesson.title for lesson in lessons.LESSONS}.__getitem__,
        placeholder=_("choose a lesson…"),
        on_change=_apply_lesson,
    )
    lesson = lessons.BY_NAME.get(st.session_state.get("lesson") or "")
    if lesson:
        sb.info(lesson.words)
    lock_note(sb)
    if not lesson and left:
        sb.caption(
            _("Settings changed since the lesson “{lesson}”; choose it again to go back.").format(
                lesson=_(left)
            )
        )
    values = widget_values()
    hidden, locked = hidden_controls(), locked_controls()
    section = None
    for c in ctl.CONTROLS:
        if c.key in hidden:
            continue
        if c.section != section:
            section = c.section
            sb.header(_(section))
        _widget(c, values, corpus, sb, locked=c.key in locked)
    st.session_state[KNOWN] = widget_values()


UPLOAD_WIDGET_MB = 50  # what the browser may send; the app's own limit is MAX_UPLOAD_BYTES


def corpus_picker(lab: Lab, default: Corpus | None, sb: DeltaGenerator) -> None:
    """The text to train on: the default corpus (named as it is: The Time Machine, or the
    offline fallback) or an upload. An upload over the app's limit still reaches the server
    (the widget allows more), so its reason is said in the page, not only in a tooltip."""
    sb.header(_("Corpus"))
    if default is not None:
        name = _(default.name)  # the text's name: The Time Machine, or the offline fallback
        default_name = name[:1].upper() + name[1:]
        if default.source == "fallback":
            default_name = _("{name} (offline)").format(name=default_name)
    else:
        default_name = _("No default text")
    shown = {"default": default_name, "upload": _("Upload a .txt")}
    choice = sb.radio(_("Text"), tuple(shown), key="corpus_choice", format_func=shown.get)
    if choice != "upload":
        if default is not None:
            lab.use_corpus(default)
        return
    megabytes = MAX_UPLOAD_BYTES // 2**20
    upload = sb.file_uploader(
        _("Upload a UTF-8 .txt"),
        type=["txt"],
        key="upload",
        max_upload_size=UPLOAD_WIDGET_MB,
        help=_("plain UTF-8 text, up to {mb} MB").format(mb=megabytes),
    )
    sb.caption(_("Plain UTF-8 text, up to {mb} MB (about 2,500 pages).").format(mb=megabytes))
    if upload is None:
        return
    try:
        message = lab.accept_upload(upload.getvalue(), upload.name)
    except ValueError as exc:
        sb.error(_("{problem} The previous text is still in use.").format(problem=exc))
        return
    if message:
        sb.success(message)
