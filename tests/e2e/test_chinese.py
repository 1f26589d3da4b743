"""简体中文 in the browser (issue 22): ``?lang=zh`` words every control and view in Chinese, with
no English word outside names and symbols; a lesson runs to its verdict in Chinese; the CJK
font is there and drawn (screenshots at 800 and 1400 px); the switch costs one rerun.

Expected texts come from the catalogue itself (``zh``: the zh_CN translation of an id) where
the wording is a translator's choice, and are written out where the book fixes the term
(开始, 学习率, 困惑度). The English-word scan reads the main area and the sidebar as a reader
does (``innerText``), leaving out what is not our own words: Streamlit's own chrome (the header
bar and menus sit outside both), plotly's modebar (icons with English tooltips, not text),
maths (KaTeX), code blocks (links, paths) and the corpus's own text (the probe passage and
generated text: English because the book's corpus is).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PAGE_LOAD_MS, TIMEOUT_MS, GruLab
from playwright.sync_api import Browser, Page, WebSocketRoute, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from dashboard.charts.base import FONT_FAMILY
from dashboard.sidebar.language import SWITCH_LABEL
from dashboard.views.training import VIEWS
from gru_core.i18n import translations

pytestmark = pytest.mark.e2e

# Terms of the Chinese edition a reader must find on the lab's first screen.
BOOK_TERMS = ("开始", "学习率", "困惑度")
# Words that stay as they are in any language: names, symbols, units.
NAMES = frozenset(
    "GRU RNN LSTM d2l cuDNN θ T λ Z R H CSV JSON URL CPU GPU CUDA MPS SHA MB GB KB px ms".split()
    # The language switch is labelled in both languages on purpose ("Language / 语言"), so a
    # reader who cannot read the page's language still finds it.
    + ["Language"]
)
_OUR_TEXT_JS = """
() => [document.querySelector('[data-testid="stMain"]'),
       document.querySelector('[data-testid="stSidebar"]')]
  .filter(Boolean)
  .map(el => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll(
      '.modebar, .katex, code, pre, [data-testid="stCode"], .stHtml, '
      + '[data-testid="stIconMaterial"], [data-testid="stTextArea"] textarea'
    ).forEach(n => n.remove());
    document.body.appendChild(copy);  // innerText needs a rendered element
    copy.style.position = 'absolute'; copy.style.left = '-99999px';
    const text = copy.innerText;
    copy.remove();
    return text;
  }).join('\\n')
"""
_FONT_JS = """
async () => {
  await document.fonts.ready;
  const probe = document.createElement('span');
  probe.textContent = '门控循环单元';
  document.querySelector('[data-testid="stMain"]').appendChild(probe);
  const family = getComputedStyle(probe).fontFamily;
  probe.remove();
  // Drawn as glyphs, not boxes: two characters draw differently from each other and from
  // a code point no font has (which every font draws as the same empty box).
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 48;
  const ctx = canvas.getContext('2d');
  const draw = ch => {
    ctx.clearRect(0, 0, 48, 48);
    ctx.font = '40px ' + family;
    ctx.fillText(ch, 2, 40);
    return Array.from(ctx.getImageData(0, 0, 48, 48).data).join(',');
  };
  const men = draw('门'), kong = draw('控'), box = draw('\\u{10FFFD}');
  return {check: document.fonts.check('16px "Noto Sans CJK SC"', '门控'), family: family,
          glyphs: men !== kong && men !== box && kong !== box};
}
"""


def zh(msgid: str) -> str:
    """The catalogue's zh_CN text for ``msgid`` (the id itself where it has none yet)."""
    return translations("zh_CN").gettext(msgid)


def english_words(text: str) -> list[str]:
    """Latin words in ``text``: a token is letters and digits (``d2l`` is one name, ``1e+06``
    one number); numbers and single letters (maths symbols: t, h, g) are not words."""
    tokens = re.findall(r"[A-Za-z0-9]+(?:['-][A-Za-z]+)*", text)
    words = {t for t in tokens if len(re.sub(r"[^A-Za-z]", "", t)) > 1}
    words = {w for w in words if not re.fullmatch(r"\d+(\.\d+)?e", w)}  # 1e+06, 2.5e-07
    return sorted(words - NAMES)


@pytest.fixture
def zh_lab(browser: Browser, app_url: str) -> GruLab:
    context = browser.new_context(viewport={"width": 1400, "height": 1600}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    lab = GruLab(page, app_url)
    yield lab
    lab.stop_training()
    context.close()


def _open_zh(lab: GruLab, query: str = "lang=zh") -> None:
    lab.page.goto(f"{lab.base_url}/?{query}")
    switch = lab.page.get_by_role("combobox", name=SWITCH_LABEL)
    expect(switch).to_have_value("简体中文", timeout=PAGE_LOAD_MS)


_STYLED_JS = """
() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return false;
  const probe = document.createElement('span');
  main.appendChild(probe);
  const family = getComputedStyle(probe).fontFamily;
  probe.remove();
  return family.includes('Noto Sans CJK SC');
}
"""


def _main_ready(page: Page) -> None:
    """The run controls are drawn (the main area's first buttons)."""
    expect(page.locator('[data-testid="stMain"] button').first).to_be_visible(timeout=PAGE_LOAD_MS)


def _styled(page: Page) -> None:
    """The page's stylesheet is in force: it arrives as an element of the script's first run
    and the browser applies it when that element is drawn, which can come after the buttons
    (failed once in CI under load when read at once)."""
    try:
        page.wait_for_function(_STYLED_JS, timeout=PAGE_LOAD_MS)
    except PlaywrightTimeout:
        pass  # the assertion below says what the page uses instead


def test_the_cjk_font_is_installed_named_and_drawn(zh_lab: GruLab, tmp_path: Path) -> None:
    fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True)
    assert "Noto Sans CJK SC" in fonts.stdout, "install Debian's fonts-noto-cjk"
    _open_zh(zh_lab)
    _main_ready(zh_lab.page)
    _styled(zh_lab.page)
    font = zh_lab.page.evaluate(_FONT_JS)
    assert font["check"], "the browser cannot draw Noto Sans CJK SC"
    assert "Noto Sans CJK SC" in font["family"], font["family"]  # the page's own stylesheet
    assert font["glyphs"], "Chinese characters are drawn as boxes"
    for width in (800, 1400):
        zh_lab.page.set_viewport_size({"width": width, "height": 1200})
        shot = tmp_path / f"chinese-{width}.png"
        zh_lab.page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    assert "Noto Sans CJK SC" in FONT_FAMILY


def test_the_browsers_language_is_the_default(zh_lab: GruLab) -> None:
    """A zh-CN browser with nothing in the URL gets Chinese, and nothing is written into the
    URL (a link it gives out follows each reader's own browser)."""
    _open_zh(zh_lab, query="")
    assert "lang=" not in zh_lab.page.url


def _no_english(lab: GruLab, where: str) -> None:
    left = english_words(lab.page.evaluate(_OUR_TEXT_JS))
    assert not left, f"English words on the Chinese page ({where}): {left}"


def test_every_control_and_view_is_in_chinese(zh_lab: GruLab) -> None:
    """The lab's first screen, each of its views and the map page."""
    _open_zh(zh_lab)
    _main_ready(zh_lab.page)
    page = zh_lab.page
    for term in BOOK_TERMS:
        expect(page.get_by_text(term).first).to_be_attached()
    _no_english(zh_lab, "the lab")
    for view in VIEWS:
        zh_lab.choose_view(zh(view))
        zh_lab.settle()
        _no_english(zh_lab, f"the view {view!r}")
    page.goto(f"{zh_lab.base_url}/map?lang=zh")
    expect(page.get_by_role("combobox", name=SWITCH_LABEL)).to_have_value("简体中文")
    _main_ready(page)
    _no_english(zh_lab, "the map")


def test_a_lesson_runs_to_its_verdict_in_chinese(zh_lab: GruLab) -> None:
    _open_zh(zh_lab)
    page = zh_lab.page
    box = page.get_by_role("combobox", name=zh("Lesson preset"))
    box.click()
    page.get_by_role("option", name=zh("Exploding gradients"), exact=True).click()
    expect(box).to_have_value(zh("Exploding gradients"))
    start = page.get_by_role("button", name="开始", exact=True)
    expect(start).to_be_enabled()
    start.click()
    stop = page.get_by_role("button", name=zh("Stop"), exact=True)
    expect(stop).to_be_enabled()
    expect(stop).to_be_disabled(timeout=120_000)  # the run ended: blew up (or diverged)
    verdict = page.locator('[data-testid="stAlertContentError"]')
    expect(verdict.first).to_be_visible()
    assert re.search(r"[\u4e00-\u9fff]", verdict.first.inner_text())
    _no_english(zh_lab, "after the verdict")


class RunCounter:
    """Counts the page's finished script runs (``script_finished`` messages from the server),
    passing every message through unchanged."""

    def __init__(self, page: Page) -> None:
        self.finished = 0
        page.route_web_socket(re.compile(r"/_stcore/stream$"), self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            msg = ForwardMsg()
            msg.ParseFromString(message if isinstance(message, bytes) else message.encode())
            self.finished += msg.WhichOneof("type") == "script_finished"
            ws.send(message)

        server.on_message(from_server)


def test_switching_language_costs_one_rerun(zh_lab: GruLab) -> None:
    """English -> 简体中文 with the sidebar's switch: one script run (the change's own) and
    the page speaks Chinese, with ?lang=zh in its URL."""
    page = zh_lab.page
    runs = RunCounter(page)
    page.goto(f"{zh_lab.base_url}/?lang=en")
    switch = page.get_by_role("combobox", name=SWITCH_LABEL)
    expect(switch).to_have_value("English", timeout=PAGE_LOAD_MS)
    _main_ready(page)
    zh_lab.wait_until(lambda: runs.finished, lambda n: n >= 1, 20, "the first run to finish")
    assert zh_lab.settle()
    before = runs.finished
    switch.click()
    option = page.get_by_role("option", name="简体中文", exact=True)
    expect(option).to_be_visible()
    started = time.perf_counter()
    option.click()
    zh_lab.wait_until(lambda: runs.finished - before, lambda n: n >= 1, 20, "the rerun")
    took = time.perf_counter() - started  # printed, never asserted (a loaded machine)
    expect(switch).to_have_value("简体中文")
    zh_lab.wait_until(lambda: "lang=zh" in page.url, bool, 20, "?lang=zh in the URL")
    assert zh_lab.settle()
    assert runs.finished - before == 1
    print(f"switching language: one rerun, {took:.2f} s from the click to its end")
