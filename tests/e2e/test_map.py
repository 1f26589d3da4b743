"""The trainability map: a 3×3 sweep of a tiny model fills nine cells, and a click on one
opens the lab with that cell's init std and clip threshold; GRU and RNN side by side share
one colour bar."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

TINY_MAP = "map_hidden=8&map_steps=10&map_epochs=1&map_xv=0.001,0.01,0.1&map_yv=0.1,1,off"

_CELLS_JS = """
() => {
  const el = document.querySelector('.js-plotly-plot');
  if (!el || !el._fullData || !el._fullData.length) return null;
  const text = el._fullData[0].text || [];
  return text.flat().map(String);
}
"""


def test_a_tiny_map_fills_and_a_click_opens_the_lab(lab) -> None:
    lab.page.goto(f"{lab.base_url}/map?{TINY_MAP}")
    start = lab.button("Start")
    expect(start).to_be_visible(timeout=60_000)
    start.click()
    cells = lab.wait_until(
        lambda: lab.page.evaluate(_CELLS_JS),
        lambda c: c is not None and len(c) == 9 and "…" not in c,
        timeout_s=120,
        what="nine finished cells in the map",
    )
    assert len(cells) == 9
    # Click the middle cell (init std 0.01, θ 1): the plot area is a 3 × 3 grid.
    area = lab.page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    assert area is not None
    lab.page.mouse.click(area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
    expect(lab.button("Start")).to_be_visible(timeout=60_000)
    lab.wait_until(
        lambda: (
            lab.slider_value("Init std (log scale)")
            if lab.slider("Init std (log scale)").count()
            else ""
        ),
        lambda v: v == "0.01",
        timeout_s=30,
        what="the lab to open with the cell's init std",
    )
    assert lab.slider_value("Clip threshold θ (log scale)") == "1.0"
    assert lab.slider_value("Hidden size") == "8" or lab.query().get("hidden") == "8"
    assert lab.exceptions() == 0
    lab.screenshot("map-opened-cell.png")


SIDE_BY_SIDE = (
    "map_hidden=8&map_steps=10&map_epochs=1&map_xv=0.01,0.1&map_yv=1,off&map_models=GRU,RNN"
)

_MAPS_JS = """
() => {
  const plots = document.querySelectorAll('.js-plotly-plot');
  if (plots.length !== 1) return {plots: plots.length};
  const el = plots[0];
  if (!el._fullData) return null;
  const values = el._fullData.filter(t => t.type === 'heatmap' && t.name === 'perplexity');
  return {
    plots: 1,
    models: values.map(t => t.meta),
    axes: values.map(t => t.coloraxis),
    cells: values.map(t => (t.text || []).flat().map(String)),
    colourbars: el.querySelectorAll('.colorbar').length,
  };
}
"""


def test_gru_and_rnn_side_by_side_show_one_colour_bar(lab) -> None:
    lab.page.goto(f"{lab.base_url}/map?{SIDE_BY_SIDE}")
    start = lab.button("Start")
    expect(start).to_be_visible(timeout=60_000)
    start.click()
    maps = lab.wait_until(
        lambda: lab.page.evaluate(_MAPS_JS),
        lambda m: m is not None and len(m.get("cells", [])) == 2
        and all(len(c) == 4 and "…" not in c for c in m["cells"]),
        timeout_s=120,
        what="both maps finished",
    )  # fmt: skip
    assert maps["plots"] == 1 and maps["models"] == ["gru", "rnn"]
    assert maps["axes"] == ["coloraxis", "coloraxis"]
    assert maps["colourbars"] == 1  # one scale for both maps
    assert lab.exceptions() == 0
    lab.screenshot("map-gru-rnn-one-scale.png")
