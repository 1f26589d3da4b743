"""Each investigation walked end to end in Chromium: pick it, apply each step in one click,
train what it asks (maps on the map page, runs in the lab), open the view it names, come back
by the banner's link, see the step done with the student's own numbers, answer in one's own
words, and read what the data says.

The walks run on a server of their own with ``GRU_LAB_INVESTIGATE_SCALE=small`` (hidden 16,
an epoch or a few), so each takes a minute or two in CI; the investigations themselves use the
book's hidden size 256. Where a step asks the student to change a setting by hand, the walk
opens the lab's own URL with that setting (what a student's edit of the sidebar leaves there).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from conftest import PAGE_LOAD_MS, GruLab, serve
from playwright.sync_api import expect

from dashboard.investigate.catalogue import SCALE_ENV, Scale, investigations
from dashboard.sidebar.controls import defaults, to_query

pytestmark = pytest.mark.e2e
TRAIN_S = 240  # the longest a small step's training may take on a loaded CI machine


@pytest.fixture(scope="module")
def app_url(corpus_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of this module's own, with the investigations shrunk for the walks."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(os.environ, SCALE_ENV, "small")
        runs_db = tmp_path_factory.mktemp("guide-runs") / "runs.sqlite3"
        with serve(corpus_path, runs_db, "streamlit-investigations.log") as url:
            yield url


# -- the walk --------------------------------------------------------------------------------
def open_investigation(lab: GruLab, title: str, first: str) -> None:
    lab.page.goto(f"{lab.base_url}/investigate")
    expect(lab.page.get_by_role("heading", name="Investigations")).to_be_visible(
        timeout=PAGE_LOAD_MS
    )
    choice = lab.page.locator('[data-testid="stRadio"] label').filter(has_text=title)
    choice.click()
    expect(lab.page.locator(f".st-key-step_{first.replace('.', '_')}")).to_be_visible()


def apply(lab: GruLab, step_id: str) -> None:
    box = lab.page.locator(f".st-key-step_{step_id.replace('.', '_')}")
    box.get_by_role("button").click()


def back(lab: GruLab, step_id: str) -> str:
    """Back to the investigation by the banner's link; the step's result once it is done."""
    # While a page reruns in full its old banner may still stand beside the new one.
    link = lab.page.get_by_role("link", name="Back to the investigation").first
    link.click(timeout=PAGE_LOAD_MS)
    box = lab.page.locator(f".st-key-step_{step_id.replace('.', '_')}")
    done = box.locator('[data-testid="stAlertContentSuccess"]')
    expect(done).to_be_visible(timeout=PAGE_LOAD_MS)
    return done.inner_text()


def run_map(lab: GruLab, step: int) -> None:
    """On the map page the step filled: Start, and wait until the banner moves past the step
    (the map is recorded when its last cell ends; the page then reruns in full)."""
    banner = lab.page.locator(".st-key-investigation_banner")
    expect(banner).to_contain_text(f"Step {step}:", timeout=PAGE_LOAD_MS)
    lab.button("Start").click()
    expect(banner).not_to_contain_text(f"Step {step}:", timeout=TRAIN_S * 1000)


def run_lab(lab: GruLab, view: str | None = None) -> None:
    """In the lab: Start a fresh run and wait for its end (then open ``view`` on it)."""
    expect(lab.page.get_by_text("Corpus:")).to_be_visible(timeout=PAGE_LOAD_MS)
    # The last job's Step card, or nothing: drawn after the header, so wait for one of them
    # (a card drawn after a too-early look would pass for the new run's first step).
    idle = lab.page.get_by_text("Nothing is training.")
    expect(lab.metric_card("Step").or_(idle).first).to_be_visible(timeout=PAGE_LOAD_MS)
    if lab.metric_card("Step").count():
        lab.reset()
    start = lab.button("Start")
    expect(start).to_be_enabled(timeout=PAGE_LOAD_MS)  # a loaded server draws slowly
    start.click()
    lab.wait_for_step(1, timeout_s=TRAIN_S)
    expect(lab.button("Start")).to_be_visible(timeout=TRAIN_S * 1000)  # ended (and saved)
    if view:
        group = lab.page.locator('[data-testid="stButtonGroup"]')
        option = group.get_by_role("radio", name=view, exact=True)
        option.click(timeout=PAGE_LOAD_MS)
        expect(option).to_have_attribute("aria-checked", "true", timeout=PAGE_LOAD_MS)
        expect(lab.page.locator(".st-key-flow-reach")).to_be_visible(timeout=PAGE_LOAD_MS)


def relaunch(lab: GruLab, step_id: str, **changes: object) -> None:
    """The lab at the step's settings with ``changes`` (what the student set by hand), in the
    same bench (its token from the page's URL)."""
    bench = parse_qs(urlsplit(lab.page.url).query)["bench"][-1]
    step = next(s for i in investigations(Scale.small()) for s in i.steps if s.id == step_id)
    query = to_query({**defaults(), **step.values, **changes})
    lab.page.goto(f"{lab.base_url}/?{urlencode({**query, 'bench': bench})}")


def answer(lab: GruLab, key: str, text: str) -> str:
    """Write the answer, save it, and return what the data says."""
    area = lab.page.locator(f".st-key-answer_{key} textarea")
    area.fill(text)
    lab.button("Save my answer").click()
    finding = lab.page.locator(f".st-key-finding_{key}")
    expect(finding).to_be_visible(timeout=30_000)
    return finding.inner_text()


def all_done(lab: GruLab, title: str) -> None:
    summary = lab.page.locator('[data-testid="stMarkdownContainer"] li').filter(has_text=title)
    expect(summary.first).to_contain_text("all done")
    assert lab.exceptions() == 0


# -- the four walks --------------------------------------------------------------------------
def test_walk_the_clip_threshold_investigation(lab: GruLab) -> None:
    started = time.monotonic()
    title = "Does a GRU need a higher clip threshold than an RNN?"
    open_investigation(lab, title, "clip.1")
    apply(lab, "clip.1")
    run_map(lab, 1)
    assert "GRU: trained in" in back(lab, "clip.1")
    apply(lab, "clip.2")  # the RNN at init std 0.1, θ 10
    run_lab(lab)
    relaunch(lab, "clip.2", clip_on=False, lr=50.0)  # the student takes the cap off, and pushes lr
    run_lab(lab)
    result = back(lab, "clip.2")
    assert "It trained at θ = 10 and not at θ = off" in result
    apply(lab, "clip.3")  # the GRU at init std 0.1, clipping off
    run_lab(lab)
    relaunch(lab, "clip.3", clip_on=True, clip=1.0)
    run_lab(lab)
    assert "θ 1:" in back(lab, "clip.3")
    said = answer(lab, "clip", "No: the GRU trained without the cap the RNN needed.")
    assert "Your map, init std 0.1: the GRU trained at θ =" in said
    all_done(lab, title)
    print(f"clip walk: {time.monotonic() - started:.0f} s")


def test_walk_the_init_std_investigation(lab: GruLab) -> None:
    started = time.monotonic()
    title = "Why init std 0.01?"
    open_investigation(lab, title, "init.1")
    apply(lab, "init.1")
    run_map(lab, 1)
    assert "RNN: trained in" in back(lab, "init.1")
    apply(lab, "init.2")
    run_map(lab, 2)
    assert "GRU: trained in" in back(lab, "init.2")
    said = answer(lab, "init", "0.01 keeps the book's network below the edge of chaos.")
    assert "Hidden 16, GRU: trained at init std" in said and "edge of chaos" in said
    all_done(lab, title)
    print(f"init walk: {time.monotonic() - started:.0f} s")


def test_walk_the_bptt_investigation(lab: GruLab) -> None:
    started = time.monotonic()
    title = "Is ~100 steps the practical limit of BPTT?"
    open_investigation(lab, title, "bptt.1")
    apply(lab, "bptt.1")
    run_lab(lab, "Through time")
    assert "GRU, T = 35:" in back(lab, "bptt.1")
    apply(lab, "bptt.2")
    run_lab(lab, "Through time")
    assert "GRU, T = 280: 35 back" in back(lab, "bptt.2")
    apply(lab, "bptt.3")
    run_lab(lab, "Through time")
    assert "RNN, T = 280" in back(lab, "bptt.3")
    said = answer(lab, "bptt", "It depends on the run: the gradient fades at its own rate.")
    assert "GRU, T = 280" in said
    all_done(lab, title)
    print(f"bptt walk: {time.monotonic() - started:.0f} s")


def test_walk_the_half_gru_investigation(lab: GruLab) -> None:
    started = time.monotonic()
    title = "Half a GRU (d2l's exercise 4)"
    open_investigation(lab, title, "half.1")
    apply(lab, "half.1")
    run_map(lab, 1)
    assert "GRU (update gate only): trained in" in back(lab, "half.1")
    apply(lab, "half.2")  # the update gate only
    run_lab(lab)
    relaunch(lab, "half.2", model="GRU (reset gate only)")
    run_lab(lab)
    assert "GRU (reset gate only):" in back(lab, "half.2")
    said = answer(lab, "half", "The update gate keeps the state; without it, it is an RNN.")
    assert "Z = 0" in said
    all_done(lab, title)
    print(f"half walk: {time.monotonic() - started:.0f} s")


def test_download_my_worksheet_holds_the_answer_and_every_figure(lab: GruLab) -> None:
    """One run of the clip investigation, then the investigations page opened afresh (a new
    session of the bench, the lab not opened in it): the downloaded HTML file holds the
    student's answer and the run's figures, each drawn by its own Plotly.newPlot call."""
    open_investigation(lab, "Does a GRU need a higher clip threshold than an RNN?", "clip.1")
    apply(lab, "clip.2")
    run_lab(lab)
    bench = parse_qs(urlsplit(lab.page.url).query)["bench"][-1]
    lab.page.goto(f"{lab.base_url}/investigate?{urlencode({'bench': bench})}")
    said = "The RNN needed the cap; my GRU run is still to come."
    area = lab.page.locator(".st-key-answer_clip textarea")
    expect(area).to_be_visible(timeout=PAGE_LOAD_MS)
    area.fill(said)
    lab.button("Save my answer").click()
    expect(lab.page.get_by_text("Finish the steps above")).to_be_visible(timeout=PAGE_LOAD_MS)
    with lab.page.expect_download(timeout=PAGE_LOAD_MS) as info:
        lab.button("Download my worksheet (HTML)").click()
    download = info.value
    assert download.suggested_filename.endswith(".html")
    text = Path(download.path()).read_text(encoding="utf-8")
    assert said in text
    assert "#1 RNN h16 std0.1 clip 10 T35" in text  # the run, read from the bench's store
    divs = text.count('class="plotly-graph-div"')
    assert divs >= 2  # the run's perplexity and gradient-norm charts
    assert all(f'Plotly.newPlot("chart-{n}"' in text for n in range(1, divs + 1))
    assert lab.exceptions() == 0
