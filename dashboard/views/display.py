"""How things reach the screen: every chart through ``chart()``, the page's stylesheet through
``page_style()``. One place decides the room's look (default or projector).

Layout rules, so that nothing is cut from a 800 px laptop split screen to a 2560 px projector:
buttons and metrics sit in wrapping rows at their natural width; the head (title, corpus line,
buttons, the equations folded into an expander) is compact, so the Overview's charts start on
the first screen; the keyed blocks ``top`` (title and equations) and ``charts-*``
(side-by-side charts, ``chart_columns``) wrap their columns onto new rows when a column would
be narrower than it can be read; equations scale with the viewport (a CSS clamp on the
viewport width) instead of being cut. Projector mode (the sidebar toggle or ``?projector=1``)
enlarges the whole page and restyles every chart (``for_projector``).
"""

from __future__ import annotations

import html
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import plotly.graph_objects as go
import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from dashboard.charts.base import FONT_FAMILY, for_projector
from dashboard.charts.thinning import wire_arrays
from gru_core.i18n import _, language

PLOT_CONFIG = {"displaylogo": False}
PROJECTOR_KEY = "projector"

_STYLE = """
<style>
/* One font stack that covers Chinese (charts/base.FONT_FAMILY), on the page's text and the
   widgets'; KaTeX's maths, code and Material icons keep their own fonts. */
html, body, .stApp, .stApp :is(p, li, label, button, input, textarea, h1, h2, h3, h4, h5, h6,
  th, td, summary, [data-baseweb="select"] div, [data-baseweb="tab"] p, [role="option"]),
.stApp span:not(.katex, .katex *, code *, [data-testid="stIconMaterial"]),
[role="tooltip"], [data-baseweb="popover"] li { font-family: FONT_STACK; }
/* Buttons and metrics: never cut to "S." or "d…"; a row wraps instead. */
.stButton button p, .stDownloadButton button p { white-space: nowrap; }
[data-testid="stMetricValue"] > div, [data-testid="stMetricLabel"] p {
  overflow: visible; text-overflow: clip; white-space: nowrap;
}
/* Side-by-side blocks wrap onto a new row before a column gets too narrow to read. */
.st-key-top [data-testid="stHorizontalBlock"],
[class*="st-key-charts-"] [data-testid="stHorizontalBlock"] { flex-wrap: wrap; }
/* Title and equations side by side only on a wide screen; stacked below 1500 px. */
@media (max-width: 1499px) { .st-key-top [data-testid="stColumn"] { min-width: 100%; } }
[class*="st-key-charts-"] [data-testid="stColumn"] { min-width: min(100%, 18rem); }
/* A compact head (title, corpus line, buttons, folded equations) below Streamlit's 3.75 rem
   header bar: the Overview's charts start on the first screen, from a 1280x720 projector
   to a 1920x1080 desktop (tests/e2e/test_fold.py). */
.stMainBlockContainer { padding: 3.75rem 2.5rem 4rem; }
.st-key-top h1 { font-size: 2.1rem; padding: 0; }
.st-key-top [data-testid="stVerticalBlock"] { gap: 0.5rem; }
.st-key-top [data-testid="stHorizontalBlock"] { row-gap: 0.5rem; }
/* Equations scale with the viewport (never cut, never a scroll bar): the widest line is
   about 24 em, in a block of the main area's width (stacked) or 2/5 of it (side by side). */
.st-key-equations .katex-display { margin: 0.3em 0; overflow: visible; }
.st-key-equations .katex-display > .katex {
  font-size: clamp(9px, calc((100vw - 420px) / 30), 1.21em);
}
@media (min-width: 1500px) {
  .st-key-equations .katex-display > .katex {
    font-size: clamp(9px, calc((100vw - 420px) / 72), 1.21em);
  }
}
/* The probe text and other HTML blocks wrap. */
.stHtml { overflow-wrap: anywhere; }
/* A chart's text alternative: read by screen readers, not drawn (it takes no room). */
.gru-alt, [data-testid="stElementContainer"]:has(.gru-alt) {
  position: absolute !important; width: 1px; height: 1px; margin: -1px; padding: 0;
  overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; border: 0;
}
/* Keyboard focus: a 3 px ring of dark blue (11:1 on white, 3:1 or more on every fill the
   page uses), with a white halo so it shows on a coloured button as well. */
:focus-visible, button:focus-visible, a:focus-visible, [role="tab"]:focus-visible,
[role="radio"]:focus-visible, [role="option"]:focus-visible, [role="slider"]:focus-visible,
input:focus-visible, summary:focus-visible, [tabindex]:focus-visible {
  outline: 3px solid #003a70 !important; outline-offset: 2px !important;
  box-shadow: 0 0 0 5px #ffffff !important;
}
/* Fine print in a dark enough grey (7:1 on white, 6:1 on the sidebar's grey): Streamlit
   draws captions at 60 % opacity (3.1:1, under WCAG's 4.5:1), and no theme option sets it. */
[data-testid="stCaptionContainer"] { opacity: 1 !important; color: #555555 !important; }
</style>
""".replace("FONT_STACK", FONT_FAMILY)
_PROJECTOR_STYLE = """
<style>
/* One font stack that covers Chinese (charts/base.FONT_FAMILY), on the page's text and the
   widgets'; KaTeX's maths, code and Material icons keep their own fonts. */
html, body, .stApp, .stApp :is(p, li, label, button, input, textarea, h1, h2, h3, h4, h5, h6,
  th, td, summary, [data-baseweb="select"] div, [data-baseweb="tab"] p, [role="option"]),
.stApp span:not(.katex, .katex *, code *, [data-testid="stIconMaterial"]),
[role="tooltip"], [data-baseweb="popover"] li { font-family: FONT_STACK; }
html { font-size: 125%; }
[data-testid="stMetricValue"] { font-size: 2rem; }  /* six in one row at 1280 px */
[data-testid="stCaptionContainer"], .stCaption { color: #1a1a1a !important; font-size: 1rem; }
/* The status line's fine print repeats the metrics above it: the back row reads those; the
   room knows what the lab is (the tagline). Both go, so the charts start above the fold. */
.st-key-status-detail, .st-key-tagline,
[data-testid="stLayoutWrapper"]:has(> .st-key-status-detail),
[data-testid="stLayoutWrapper"]:has(> .st-key-tagline) { display: none; }
</style>
"""


def projector_on() -> bool:
    return bool(st.session_state.get(PROJECTOR_KEY, False))


def page_style() -> None:
    """The page's stylesheet (takes no space on the page)."""
    st.html(_STYLE + (_PROJECTOR_STYLE if projector_on() else ""))


def chart(
    fig: go.Figure,
    key: str,
    *,
    alt: str | Callable[[go.Figure], str],
    select: Literal["points"] | None = None,
) -> Any:
    """Draw a figure in the room's look (projector mode restyles a copy); the only caller of
    ``st.plotly_chart`` (tests/test_layers.py). ``alt``: the chart's text alternative in words
    (``charts/describe.py``), or a describer of the figure (``describe.lines``); it is
    written before the chart in the same keyed block (``chart-<key>``), visually hidden, so
    a screen reader reads it in the chart's place (Streamlit charts have no alt text of their
    own: streamlit#8563). ``select="points"``: a click on a point reruns the page, and the
    returned event holds the selection."""
    if callable(alt):
        alt = alt(fig)
    if projector_on():
        fig = for_projector(go.Figure(fig))
    with st.container(key=f"chart-{key}"):
        st.html(alt_html(alt))
        if select is None:
            return st.plotly_chart(fig, key=key, config=PLOT_CONFIG, theme=None)
        return st.plotly_chart(
            fig, key=key, config=PLOT_CONFIG, theme=None, on_select="rerun", selection_mode=select
        )


def alt_html(alt: str) -> str:
    """A chart's text alternative as the hidden paragraph ``chart`` writes ('Chart: ...')."""
    return '<p class="gru-alt">{}</p>'.format(html.escape(_("Chart: {text}").format(text=alt)))


T = TypeVar("T")
# Keyed by (snapshot, name, language): a figure's words are the language of its builder.
_FIGURES: OrderedDict[tuple[int, str, str], tuple[weakref.ref, Any]] = OrderedDict()
_BUILDING: dict[tuple[int, str, str], threading.Event] = {}  # figures being built right now
_FIGURES_LOCK = threading.Lock()
CACHED_FIGURES = 64
BUILD_WAIT_S = 5.0  # the longest a session waits for another's build of the same figure


class SnapshotFigure(go.Figure):
    """A figure of one snapshot, never changed once built. Streamlit turns a figure into its
    dict on every draw, and plotly deep-copies the whole figure for that; this one makes the
    dict once, for the owner and every watcher that draws it (projector mode restyles a
    copy, ``go.Figure(fig)``)."""

    def to_dict(self) -> dict:
        frozen = getattr(self, "_frozen_dict", None)
        if frozen is None:
            frozen = self._frozen_dict = super().to_dict()
        return frozen


def snapshot_figure(snapshot: object, name: str, build: Callable[[], go.Figure]) -> go.Figure:
    """The figure ``name`` of a telemetry snapshot, built once per snapshot for every session
    that draws it (``per_snapshot``): the owner of a shared run and all its watchers read the
    same snapshot object (the store caches it; watchers take one up to a few seconds old), so
    forty watchers cost one build per snapshot. Its arrays are narrowed once
    (``figure_base.wire_arrays``): every page that draws it is sent half the bytes."""

    return per_snapshot(snapshot, name, lambda: frozen_figure(build()))


def frozen_figure(fig: go.Figure) -> go.Figure:
    """``fig`` with its arrays narrowed for the wire (``wire_arrays``) and its dict made once
    (``SnapshotFigure``): for a figure that is never changed after it is built and is drawn
    again and again."""
    fig = wire_arrays(fig)
    if type(fig) is go.Figure:
        fig.__class__ = SnapshotFigure  # same layout, a to_dict made once
    return fig


def per_snapshot(snapshot: object, name: str, build: Callable[[], T]) -> T:
    """What ``build`` makes of ``snapshot`` (a telemetry snapshot, a memory reading's
    activations: any object that stays unchanged while it is kept), under ``name``: built
    once per snapshot for every session that asks, and kept while the snapshot lives (the
    most recent CACHED_FIGURES). A session that asks while another is building the same
    thing waits for that build instead of making its own. Words are in the reader's
    language, so a thing is kept per language (``gru_core.i18n.language``): a Chinese and an
    English watcher each get theirs."""
    key = (id(snapshot), name, language())
    while True:
        with _FIGURES_LOCK:
            hit = _FIGURES.get(key)
            if hit is not None and hit[0]() is snapshot:
                return hit[1]
            building = _BUILDING.get(key)
            if building is None:
                building = _BUILDING[key] = threading.Event()
                break
        if not building.wait(BUILD_WAIT_S):
            return build()  # the other build is stuck: do not wait on it for ever
    try:
        made = build()
        with _FIGURES_LOCK:
            _FIGURES[key] = (weakref.ref(snapshot), made)
            while len(_FIGURES) > CACHED_FIGURES:
                _FIGURES.popitem(last=False)
        return made
    finally:
        with _FIGURES_LOCK:
            _BUILDING.pop(key, None)
        building.set()


_REMEMBERED = "_remembered"  # session state: key -> what was made, the most recent last
REMEMBERED = 8  # three per choice of runs (two overlays, the reach charts): the last few choices


def remembered(key: tuple, build: Callable[[], T]) -> T:
    """What ``build`` made for this session under ``key``, kept across reruns (the most
    recent REMEMBERED keys) and made again for a new key: for what is built from things that
    never change once made (saved runs, named in ``key`` by their ids), so that a full rerun
    of the page does not rebuild their figures. Kept per language, as ``per_snapshot``."""
    memo: OrderedDict[tuple, Any] = st.session_state.setdefault(_REMEMBERED, OrderedDict())
    full = (*key, language())
    if full in memo:
        memo.move_to_end(full)
        return memo[full]
    made = memo[full] = build()
    while len(memo) > REMEMBERED:
        memo.popitem(last=False)
    return made


def chart_columns(spec: int | list[int], name: str) -> list:
    """Columns for charts side by side that wrap onto new rows on a narrow screen."""
    return list(st.container(key=f"charts-{name}").columns(spec))


HOLD_S = 3.0  # how long a reading is kept on the fragment reruns that follow it
_HELD = "_held"  # session state: name -> (monotonic time made, what was made)


def held(name: str, make: Callable[[], T], hold_s: float = HOLD_S) -> T:
    """What ``make`` made for this session under ``name``, kept for up to ``hold_s`` seconds
    on the fragment reruns that follow (a full rerun always makes it afresh): for what is
    slow to make from a run that moves on at every step (the Memory view reads the live
    weights), so that a click on one of the view's own widgets (a unit, a position) does
    not read them again. HOLD_S is shorter than the heavy views' pace
    (``pacing.HEAVY_S``), so every timed redraw of the view reads anew."""
    ctx = get_script_run_ctx()
    timed = ctx is not None and bool(ctx.fragment_ids_this_run)
    kept: dict[str, tuple[float, Any]] = st.session_state.setdefault(_HELD, {})
    return kept_or_made(kept, name, make, hold_s, timed, time.monotonic())


def kept_or_made(
    kept: dict[str, tuple[float, Any]],
    name: str,
    make: Callable[[], T],
    hold_s: float,
    timed: bool,
    now: float,
) -> T:
    """``held``'s rule on a plain dict (name -> (made at, made)): on a fragment rerun
    (``timed``), what was made less than ``hold_s`` ago; otherwise ``make()``, kept from
    ``now`` (and whatever is ``hold_s`` old or older is dropped)."""
    hit = kept.get(name)
    if timed and hit is not None and now - hit[0] < hold_s:
        return hit[1]
    for old in [k for k, (at, _made) in kept.items() if now - at >= hold_s]:
        del kept[old]  # too old to be kept again: never returned, so not held either
    made = make()
    kept[name] = (now, made)
    return made


def worded(options: Iterable[str]) -> Callable[[str], str]:
    """A widget's ``format_func`` for ``N_``-marked options, worded now in this run's language:
    Streamlit (and AppTest) may call it after the run, where another language is in force."""
    words = {option: _(option) for option in options}
    return lambda option: words.get(option, option)
