"""Each investigation walked end to end in Chromium (the walks: benchmarks/walks.py, which the
timed walk benchmarks/investigation_walk.py shares): each step applied in one click, trained,
its view opened, and seen done with the student's own numbers; the answer, and what the data
says.

The walks run on a server of their own with ``GRU_LAB_INVESTIGATE_SCALE=small`` (hidden 16,
an epoch or a few), so each takes a minute or two in CI; the investigations themselves use the
book's hidden size 256.
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

from benchmarks.walks import WALKS, Walk
from dashboard.investigate.catalogue import SCALE_ENV, Scale

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


def walk(lab: GruLab, key: str) -> dict[str, str]:
    """Walk the investigation ``key``; what each step said, and what the data says."""
    started = time.monotonic()
    said = WALKS[key](Walk(lab.page, lab.base_url, Scale.small(), TRAIN_S))
    assert lab.exceptions() == 0
    print(f"{key} walk: {time.monotonic() - started:.0f} s")
    return said


# -- the four walks --------------------------------------------------------------------------
def test_walk_the_clip_threshold_investigation(lab: GruLab) -> None:
    said = walk(lab, "clip")
    assert "GRU: trained in" in said["clip.1"]
    assert "It trained at θ = 10 and not at θ = off" in said["clip.2"]
    assert "θ 1:" in said["clip.3"]
    assert "Your map, init std 0.1: the GRU trained at θ =" in said["answer"]


def test_walk_the_init_std_investigation(lab: GruLab) -> None:
    said = walk(lab, "init")
    assert "RNN: trained in" in said["init.1"]
    assert "GRU: trained in" in said["init.2"]
    assert "Hidden 16, GRU: trained at init std" in said["answer"]
    assert "edge of chaos" in said["answer"]


def test_walk_the_bptt_investigation(lab: GruLab) -> None:
    said = walk(lab, "bptt")
    assert "GRU, T = 35:" in said["bptt.1"]
    assert "GRU, T = 280: 35 back" in said["bptt.2"]
    assert "RNN, T = 280" in said["bptt.3"]
    assert "GRU, T = 280" in said["answer"]


def test_walk_the_half_gru_investigation(lab: GruLab) -> None:
    said = walk(lab, "half")
    assert "GRU (update gate only): trained in" in said["half.1"]
    assert "GRU (reset gate only):" in said["half.2"]
    assert "Z = 0" in said["answer"]


def test_a_run_that_ends_after_the_student_went_back_ticks_its_step(lab: GruLab) -> None:
    """The race: Start a step's run, open the view it names, go back to the investigation at
    once (the run still training: at 1 step per second, about 45 s), and the step turns done
    when the run has been saved, without a click."""
    student = Walk(lab.page, lab.base_url, Scale.small(), TRAIN_S)
    student.open("bptt")
    student.apply("bptt.1")
    expect(lab.page.get_by_text("Corpus:")).to_be_visible(timeout=PAGE_LOAD_MS)
    student.relaunch("bptt.1", speed=1)  # slowed, so that it still trains when we are back
    student.start_lab()
    student.choose_view("Through time")
    lab.page.get_by_role("link", name="Back to the investigation").first.click()
    box = student.box("bptt.1")
    expect(box.locator('[data-testid="stAlertContentInfo"]')).to_be_visible(timeout=PAGE_LOAD_MS)
    done = box.locator('[data-testid="stAlertContentSuccess"]')
    expect(done).to_contain_text("GRU, T = 35:", timeout=TRAIN_S * 1000)
    assert lab.exceptions() == 0


def test_download_my_worksheet_holds_the_answer_and_every_figure(lab: GruLab) -> None:
    """One run of the clip investigation, then the investigations page opened afresh (a new
    session of the bench, the lab not opened in it): the downloaded HTML file holds the
    student's answer and the run's figures, each drawn by its own Plotly.newPlot call."""
    student = Walk(lab.page, lab.base_url, Scale.small(), TRAIN_S)
    student.open("clip")
    student.apply("clip.2")
    student.run_lab()
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
