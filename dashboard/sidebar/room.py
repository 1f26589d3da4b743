"""The sidebar's Room section: teacher links that hide or lock controls, and sharing a run.

- ``?hide=clip_on,clip`` leaves those controls out of a student's sidebar; ``?lock=lr`` shows
  them greyed out at the link's value (TensorFlow Playground's ``<control>_hide`` trick). The
  rest of the URL still sets the other controls. "Link for students" builds such a URL from the
  current settings; a lesson can suggest what to hide and lock.
- "Share this run" gives a read-only ``?watch=<token>`` link to this bench
  (``session/sharing.py``); what a watcher sees is ``screens/watch.py``. A bench that shared
  before (in another session, or before a restart) shares again under the same link.
- "Your runs" shows this bench's link (``?bench=<token>``) to bookmark, and has the browser
  remember the token in a cookie (``resources.TOKEN_COOKIE``), so the plain address finds
  the same saved runs; it also says when runs are not reaching the disk.
Every word in the reader's language (``gru_core.i18n``). Script thread only.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from dashboard.session.lab import Lab
from dashboard.session.language import PageLanguage, with_language
from dashboard.session.sharing import ShareRegistry
from dashboard.sidebar import controls as ctl
from dashboard.sidebar import lessons
from dashboard.sidebar.language import current_page_language, language_fragment
from dashboard.views.display import PROJECTOR_KEY, projector_on
from gru_core.i18n import _

HIDE, LOCK, WATCH = "hide", "lock", "watch"  # URL parameters
TOKEN_PARAM = "bench"  # the URL parameter holding this browser's saved-runs token
TOKEN_COOKIE = "gru_lab_bench"  # the same token, remembered by the browser for the plain address
WATCH_COUNT_S = 5.0  # how often the owner's sidebar recounts its watchers
ROOM_KEYS = (HIDE, LOCK, WATCH)
COOKIE_DAYS = 365  # how long the browser remembers its bench


def parse_keys(raw: str | None, what: str) -> tuple[frozenset[str], list[str]]:
    """'clip_on,clip' -> the control keys it names, and a warning for each unknown one."""
    if not raw:
        return frozenset(), []
    keys, warnings = set(), []
    for key in (k.strip() for k in str(raw).split(",")):
        if key in ctl.BY_KEY:
            keys.add(key)
        elif key:
            warnings.append(
                _("ignored `{what}={key}` in the URL: no control is called {name}").format(
                    what=what, key=key, name=repr(key)
                )
            )
    return frozenset(keys), warnings


def read_room_params(params: Mapping[str, str]) -> list[str]:
    """Remember the link's hidden and locked controls for this session; return warnings."""
    hidden, w1 = parse_keys(params.get(HIDE), HIDE)
    locked, w2 = parse_keys(params.get(LOCK), LOCK)
    st.session_state._hidden, st.session_state._locked = hidden, locked - hidden
    return w1 + w2


def hidden_controls() -> frozenset[str]:
    return st.session_state.get("_hidden", frozenset())


def locked_controls() -> frozenset[str]:
    return st.session_state.get("_locked", frozenset())


def student_link(
    base_url: str,
    values: Mapping[str, Any],
    hide: list[str],
    lock: list[str],
    projector: bool,
    page: PageLanguage | None = None,
) -> str:
    """A URL with the settings that differ from the defaults, what to hide and lock,
    projector mode and the page's chosen language; never this browser's saved-runs token."""
    query = with_language(ctl.to_query(values), page)
    if hide:
        query[HIDE] = ",".join(hide)
    if lock:
        query[LOCK] = ",".join(k for k in lock if k not in hide)
    if projector:
        query[PROJECTOR_KEY] = "1"
    scheme, netloc, path, _query, _fragment = urlsplit(base_url or "http://localhost:8501/")
    return urlunsplit((scheme, netloc, path or "/", urlencode(query, safe=","), ""))


def room_section(
    lab: Lab, registry: ShareRegistry, values: dict[str, Any], sb: Any, remembered: str | None
) -> None:
    """The sidebar's Room section: projector mode, a link for students, sharing this run,
    and this bench's own link (``remembered``: the token the browser's cookie holds)."""
    sb.header(_("Room"))
    sb.toggle(
        _("Projector mode"),
        key=PROJECTOR_KEY,
        help=_("large type, thick lines and fewer ticks for the back row (or ?projector=1)"),
    )
    with sb.popover(_("Link for students"), width="stretch"):
        lesson = lessons.BY_NAME.get(st.session_state.get("lesson") or "")
        labels = {c.key: _(c.label) for c in ctl.CONTROLS}
        hide = st.multiselect(
            _("Hide"), list(labels), default=list(lesson.hide) if lesson else [],
            format_func=labels.get, key="link_hide",
        )  # fmt: skip
        lock = st.multiselect(
            _("Lock (shown, greyed out)"), [k for k in labels if k not in hide],
            default=[k for k in (lesson.lock if lesson else ()) if k not in hide],
            format_func=labels.get, key="link_lock",
        )  # fmt: skip
        url = student_link(
            str(st.context.url or ""), values, hide, lock, projector_on(), current_page_language()
        )
        st.code(url, language=None, wrap_lines=True)
        st.caption(_("Opens with these settings; hidden controls keep the values above."))
    if not st.session_state.get("_share_resumed"):  # once a session: a share of this bench
        st.session_state._share_resumed = True
        registry.resume(lab, _owner_secret())
    _share_controls(lab, registry, sb)
    bench_link(lab, sb, remembered)


def bench_link(lab: Lab, sb: Any, remembered: str | None) -> None:
    """'Your runs': this bench's link to bookmark, remembered by the browser too; and what
    the store has to say (a damaged file kept aside: once; runs not reaching the disk: while
    it lasts)."""
    runs = lab.runs
    notice = runs.notice
    if notice and not st.session_state.get("_store_notice_shown"):
        st.session_state._store_notice_shown = True
        sb.warning(notice, icon="💾")
    if runs.status_message:
        sb.warning(runs.status_message, icon="💾")
    token = runs.token
    if token is None:
        return
    sb.markdown(_("**Your runs** · bookmark this link"))
    link = bench_url(str(st.context.url or ""), token, current_page_language())
    sb.code(link, language=None, wrap_lines=True)
    sb.caption(
        _(
            "It brings your saved runs back after a restart, in any browser; this browser also "
            "remembers it, so the plain address finds them too."
        )
    )
    if remembered != token and st.session_state.get("_cookie_set") != token:
        st.session_state._cookie_set = token
        sb.iframe(remember_script(token), height="content")  # runs on the page's origin


def bench_url(base_url: str, token: str, page: PageLanguage | None = None) -> str:
    """The plain address with only ``?bench=<token>`` (and the chosen language): this
    browser's saved runs."""
    return _link(base_url, with_language({TOKEN_PARAM: token}, page))


def watch_url(base_url: str, token: str, page: PageLanguage | None = None) -> str:
    """The read-only ``?watch=<token>`` link (with the chosen language) to a shared run."""
    return _link(base_url, with_language({WATCH: token}, page))


def _link(base_url: str, query: Mapping[str, str]) -> str:
    scheme, netloc, path, _query, _fragment = urlsplit(base_url or "http://localhost:8501/")
    return urlunsplit((scheme, netloc, path or "/", urlencode(query), ""))


def remember_script(token: str) -> str:
    """A script that sets the bench cookie on the page's own origin (the component's frame
    shares it), sent back with the next visit's connection (``st.context.cookies``)."""
    cookie = f"{TOKEN_COOKIE}={token}; path=/; max-age={COOKIE_DAYS * 86400}; SameSite=Lax"
    return (
        "<script>(function () { const c = " + repr(cookie).replace("'", '"') + ";"
        " try { window.parent.document.cookie = c; } catch (e) { document.cookie = c; }"
        " })();</script>"
    )


def _owner_secret() -> str:
    return st.session_state.setdefault("_owner_secret", secrets.token_urlsafe(16))


def _share_controls(lab: Lab, registry: ShareRegistry, sb: Any) -> None:
    token = registry.token_of(lab)
    if token is None:
        if sb.button(_("Share this run with the class"), help=_("a read-only link to this bench")):
            registry.share(lab, _owner_secret())
            st.rerun()
        return
    link = watch_url(str(st.context.url or ""), token, current_page_language())

    @language_fragment(run_every=WATCH_COUNT_S)
    def watching() -> None:  # the count changes while the page does not rerun in full
        st.caption(_("Shared, read-only · {n} watching now").format(n=registry.watchers(token)))

    with sb:
        watching()
    sb.code(link, language=None, wrap_lines=True)
    if sb.button(_("Stop sharing")):
        registry.stop(token, _owner_secret())
        st.rerun()
