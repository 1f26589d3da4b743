"""The lab under Chromium's colour-vision-deficiency emulation (CDP
``Emulation.setEmulatedVisionDeficiency``: deuteranopia, protanopia, tritanopia) after a short
run: every chart still draws its lines with their legends, the lines of one chart differ in
dash or marker (not colour alone), and each chart keeps its text alternative. Screenshots of
each go to the test's tmp dir. (The colours themselves are checked pair by pair under the same
deficiencies in tests/test_palette.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GruLab

pytestmark = pytest.mark.e2e

SMALL_RUN = "hidden=32&epochs=30&speed=20"
DEFICIENCIES = ("deuteranopia", "protanopia", "tritanopia")
# Each chart's legend: entry names, and each drawn line's (dash, marker symbol, colour); a
# band (a filled area between two edges of width 0) is told apart by its shade and name.
_LEGENDS_JS = """
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
  title: ((el.layout && el.layout.title && el.layout.title.text) || '').replace(/<[^>]*>/g, ''),
  legend: Array.from(el.querySelectorAll('.legend .traces .legendtext')).map(t => t.textContent),
  lines: (el._fullData || []).filter(t => t.type === 'scatter' && t.visible !== false
      && t.showlegend !== false && (t.mode || '').includes('lines')
      && ((t.line || {}).width === undefined || (t.line || {}).width > 0))
    .map(t => ({name: t.name, dash: (t.line || {}).dash || 'solid',
                symbol: (t.mode || '').includes('markers') ? String((t.marker || {}).symbol) : '',
                colour: (t.line || {}).color || ''})),
}))
"""


def test_charts_keep_their_legends_and_shapes_under_each_deficiency(
    lab: GruLab, tmp_path: Path
) -> None:
    lab.open(SMALL_RUN)
    lab.press("Start")
    for title in ("Perplexity", "Gradient norm", "update gate Z: distribution per step"):
        lab.wait_for_points(title)
    lab.wait_until(  # a validation point as well: train and validation both in the legend
        lambda: lab.trace("Perplexity", "validation (per epoch)"),
        lambda t: t is not None and len(t["y"]) >= 1,
        90,
        "a validation perplexity",
    )
    lab.press("Stop")
    lab.settle()
    cdp = lab.page.context.new_cdp_session(lab.page)
    for deficiency in DEFICIENCIES:
        cdp.send("Emulation.setEmulatedVisionDeficiency", {"type": deficiency})
        shot = tmp_path / f"lab-{deficiency}.png"
        lab.page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000  # a page was drawn, not a blank
        charts = lab.page.evaluate(_LEGENDS_JS)
        titles = [c["title"] for c in charts]
        for wanted in ("Perplexity", "Gradient norm", "update gate Z"):
            assert any(t.startswith(wanted) for t in titles), (deficiency, titles)
        for chart in charts:
            names = [line["name"] for line in chart["lines"]]
            if len(names) > 1:  # the legend names them (one line: plotly shows none)
                assert set(names) <= set(chart["legend"]), (deficiency, chart)
            shapes = [(line["dash"], line["symbol"]) for line in chart["lines"]]
            assert len(set(shapes)) == len(shapes), (deficiency, chart)  # not colour alone
        perplexity = next(c for c in charts if c["title"].startswith("Perplexity"))
        assert {"train (per epoch)", "validation (per epoch)"} <= set(perplexity["legend"])
        # each chart keeps its words for a reader who cannot tell its colours apart
        alts = lab.page.locator(".gru-alt").all_text_contents()
        assert len(alts) >= len(charts) and all(a.startswith("Chart: ") for a in alts), alts
        assert any("Perplexity fell from" in a for a in alts), alts
    cdp.send("Emulation.setEmulatedVisionDeficiency", {"type": "none"})
    assert lab.exceptions() == 0
