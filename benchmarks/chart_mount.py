"""What a view's charts cost a page when Streamlit mounts them: the Gates view's figures (the
Z and R gate bands, the Z and R probe heatmaps, built as ``chart_draw.py`` builds them) drawn
through ``st.plotly_chart`` in headless Chromium, in three variants side by side in one run:
four charts with Streamlit's plotly theme, four charts without it (``theme=None``, what
``views/display.chart`` draws with), and two charts, each gate a panel of one figure
(``charts/panels.stacked``, what the Gates view draws).

``chart_draw.py`` times plotly.js alone; this times what a view switch pays on top: the
element's mount, Streamlit's theming of the figure, and plotly drawing each chart twice on a
mount (counted here from plotly's ``plotly_afterplot`` events). Each round clicks "draw" once
per variant, on its own page (its own session), in turn, so a change of the machine's load
hits every variant alike; each click mounts its charts afresh (new keys). The time is from the
click to the moment every chart carries data and nothing is stale, and the page's main
thread's busy time over it (Chromium's CPU profiler). Prints the medians, their ratios to
the first variant's and the load average.

Usage: ``python benchmarks/chart_mount.py [--rounds 11]``. The same file is the small
Streamlit app it drives (``streamlit run benchmarks/chart_mount.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CHROMIUM = "/usr/bin/chromium"
# name -> (theme, layout): the query the variant's page is opened with
VARIANTS = {
    "4 charts, streamlit theme": "theme=streamlit&charts=4",
    "4 charts, theme=None": "theme=none&charts=4",
    "2 charts of 2 panels, theme=None": "theme=none&charts=2",
}
_HOOK_JS = """
window.__plots = 0;
new MutationObserver(() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (gd.__counted || !gd.on) continue;
    gd.__counted = true;
    gd.on('plotly_afterplot', () => { window.__plots += 1; });
  }
}).observe(document, {subtree: true, childList: true, attributes: true,
                      attributeFilter: ['class']});
"""
_DRAWN_JS = """
([n, charts]) => {
  if (!document.body.innerText.includes('drawn ' + n)) return false;
  if (document.querySelector('[data-stale="true"]')) return false;
  const plots = document.querySelectorAll('.js-plotly-plot');
  if (plots.length < charts) return false;
  for (const el of plots) if (!el._fullData || !el._fullData.length) return false;
  return true;
}
"""


def app() -> None:
    """The page: a "draw" button that mounts the figures afresh on every click."""
    sys.path[:0] = [str(REPO), str(HERE)]
    import streamlit as st
    from chart_draw import figures

    from dashboard.charts.panels import stacked
    from dashboard.charts.thinning import wire_arrays

    @st.cache_resource
    def built(charts: int) -> list:
        made = figures(4000)
        bands, heat = made["bands Z"], made["heatmap Z"]
        if charts == 2:  # as cells.gates_bands_figure and gates_heatmap_figure make them
            pairs = [stacked([fig, fig], "two", ["Z", "R"], 170) for fig in (bands, heat)]
            return [wire_arrays(fig) for fig in pairs]
        return [wire_arrays(fig) for fig in (bands, bands, heat, heat)]

    theme = None if st.query_params.get("theme") == "none" else "streamlit"
    charts = int(st.query_params.get("charts", 4))
    clicks = st.session_state.setdefault("clicks", 0)
    if st.button("draw"):
        st.session_state.clicks = clicks = clicks + 1
    if clicks:
        columns = st.columns(2)
        for i, fig in enumerate(built(charts)):
            with columns[i % 2]:
                st.plotly_chart(fig, key=f"chart-{i}-{clicks}", theme=theme)
    st.write(f"drawn {clicks}")


def busy_ms(profile: dict) -> float:
    """The main thread's time in a CPU profile, less its idle samples, ms."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    return (
        sum(
            delta
            for sample, delta in zip(profile["samples"], profile["timeDeltas"], strict=True)
            if nodes[sample]["callFrame"]["functionName"] != "(idle)"
        )
        / 1000
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    from serve import streamlit_server  # the page's own run (app()) needs neither

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log_path = Path(tempfile.gettempdir()) / "chart_mount-stderr.log"
    with streamlit_server(Path(__file__).resolve(), REPO, env, log_path) as base:
        times: dict[str, list[tuple[float, float, int]]] = {v: [] for v in VARIANTS}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            pages = {}
            for name, query in VARIANTS.items():
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.add_init_script(_HOOK_JS)
                page.goto(f"{base}/?{query}")
                page.get_by_role("button", name="draw").wait_for(timeout=60_000)
                cdp = page.context.new_cdp_session(page)
                cdp.send("Profiler.enable")
                pages[name] = (page, cdp, int(query.rsplit("=", 1)[1]))
            for n in range(args.rounds + 1):  # the first round warms each page up
                for name, (page, cdp, charts) in pages.items():
                    plots = page.evaluate("window.__plots")
                    cdp.send("Profiler.start")
                    t0 = time.perf_counter()
                    page.get_by_role("button", name="draw").click()
                    page.wait_for_function(
                        _DRAWN_JS, arg=[n + 1, charts], polling=50, timeout=60_000
                    )
                    wall = (time.perf_counter() - t0) * 1000
                    page.wait_for_timeout(600)  # plotly's own second draw comes ~300 ms later
                    busy = busy_ms(cdp.send("Profiler.stop")["profile"])
                    if n:
                        draws = page.evaluate("window.__plots") - plots
                        times[name].append((wall, busy, draws / charts))
            browser.close()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{args.rounds} rounds of the Gates view's figures mounted | load average {load}")
    print("| variant | click to drawn, median ms | main thread busy, median ms | draws a chart |")
    print("|---|---:|---:|---:|")
    medians = {}
    for name, rows in times.items():
        wall = statistics.median(r[0] for r in rows)
        busy = statistics.median(r[1] for r in rows)
        draws = statistics.median(r[2] for r in rows)
        medians[name] = (wall, busy)
        print(f"| {name} | {wall:.0f} | {busy:.0f} | {draws:g} |")
    first, (w0, b0) = next(iter(medians.items()))
    for name, (wall, busy) in list(medians.items())[1:]:
        print(f"{name} / {first}: click to drawn {wall / w0:.2f}x, busy {busy / b0:.2f}x")


if __name__ == "__main__":
    try:
        from streamlit import runtime

        serving = runtime.exists()
    except ImportError:
        serving = False
    if serving:
        app()
    else:
        main()
