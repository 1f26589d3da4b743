"""The investigations walked in Chromium as a student walks them: pick one, apply each step in
one click, train what it asks (maps on the map page, runs in the lab), open the view it names,
come back by the banner's link, see the step done with the student's own numbers, answer in
one's own words, and read what the data says.

One walk per investigation (``WALKS``), shared by the e2e test (tests/e2e/test_investigations.py,
which checks what each step says) and the timed walk (benchmarks/investigation_walk.py, which
times each step). Playwright only: every wait is on what the page shows, never a sleep. Where
a step asks the student to change a setting by hand, the walk opens the lab's own URL with
that setting (what a student's edit of the sidebar leaves there).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from playwright.sync_api import Locator, Page, expect

from dashboard.investigate.catalogue import Scale, investigations
from dashboard.sidebar.controls import defaults, to_query

PAGE_LOAD_MS = 60_000  # the first page of a session imports torch and reads the corpus
TITLES = {
    "clip": "Does a GRU need a higher clip threshold than an RNN?",
    "init": "Why init std 0.01?",
    "bptt": "Is ~100 steps the practical limit of BPTT?",
    "half": "Half a GRU (d2l's exercise 4)",
}


class Walk:
    """A student on the page: ``train_s`` is the longest one step's training may take;
    ``lap(label)`` is called as each step is seen done (and when the answer is read)."""

    def __init__(
        self,
        page: Page,
        base_url: str,
        scale: Scale,
        train_s: float,
        lap: Callable[[str], None] = lambda label: None,
    ) -> None:
        self.page, self.base_url, self.scale = page, base_url, scale
        self.train_ms, self.lap = int(train_s * 1000), lap

    def button(self, name: str) -> Locator:
        return self.page.get_by_role("button", name=name, exact=True)

    def box(self, step_id: str) -> Locator:
        return self.page.locator(f".st-key-step_{step_id.replace('.', '_')}")

    def exceptions(self) -> int:
        return self.page.locator('[data-testid="stException"]').count()

    # -- the investigations page ---------------------------------------------------------
    def open(self, key: str) -> None:
        """The investigations page, with ``key``'s investigation chosen."""
        self.page.goto(f"{self.base_url}/investigate")
        heading = self.page.get_by_role("heading", name="Investigations")
        expect(heading).to_be_visible(timeout=PAGE_LOAD_MS)
        choice = self.page.locator('[data-testid="stRadio"] label').filter(has_text=TITLES[key])
        choice.click()
        expect(self.box(f"{key}.1")).to_be_visible(timeout=PAGE_LOAD_MS)

    def apply(self, step_id: str) -> None:
        """The step's one-click settings button (it opens the lab or the map)."""
        self.box(step_id).get_by_role("button").click()

    def back(self, step_id: str) -> str:
        """Back to the investigation by the banner's link; the step's result once it is done."""
        # While a page reruns in full its old banner may still stand beside the new one.
        link = self.page.get_by_role("link", name="Back to the investigation").first
        link.click(timeout=PAGE_LOAD_MS)
        done = self.box(step_id).locator('[data-testid="stAlertContentSuccess"]')
        expect(done).to_be_visible(timeout=PAGE_LOAD_MS)
        self.lap(step_id)
        return done.inner_text()

    def back_to_check(self, step_id: str) -> tuple[bool, str]:
        """Back to the investigation by the banner's link; (the step is done, what its check
        says): a step not done yet says what is missing, and the student reads it."""
        link = self.page.get_by_role("link", name="Back to the investigation").first
        link.click(timeout=PAGE_LOAD_MS)
        box = self.box(step_id)
        said = box.locator(
            '[data-testid="stAlertContentSuccess"], [data-testid="stAlertContentInfo"]'
        ).first
        expect(said).to_be_visible(timeout=PAGE_LOAD_MS)
        done = box.locator('[data-testid="stAlertContentSuccess"]').count() > 0
        return done, said.inner_text()

    def answer(self, key: str, text: str) -> str:
        """Write the answer, save it, and return what the data says."""
        self.page.locator(f".st-key-answer_{key} textarea").fill(text)
        self.button("Save my answer").click()
        finding = self.page.locator(f".st-key-finding_{key}")
        expect(finding).to_be_visible(timeout=PAGE_LOAD_MS)
        self.lap(f"{key}.answer")
        return finding.inner_text()

    def all_done(self, key: str) -> None:
        """The summary says the investigation is all done."""
        summary = self.page.locator('[data-testid="stMarkdownContainer"] li')
        expect(summary.filter(has_text=TITLES[key]).first).to_contain_text("all done")

    # -- the map and the lab ---------------------------------------------------------------
    def run_map(self, step: int) -> None:
        """On the map page the step filled: Start, and wait until the banner moves past the
        step (the map is recorded when its last cell ends; the page then reruns in full)."""
        banner = self.page.locator(".st-key-investigation_banner")
        expect(banner).to_contain_text(f"Step {step}:", timeout=PAGE_LOAD_MS)
        self.button("Start").click()
        expect(banner).not_to_contain_text(f"Step {step}:", timeout=self.train_ms)

    def start_lab(self) -> None:
        """In the lab: Start a fresh run and wait for its first step."""
        expect(self.page.get_by_text("Corpus:")).to_be_visible(timeout=PAGE_LOAD_MS)
        # The last job's Step card, or nothing: drawn after the header, so wait for one of them
        # (a card drawn after a too-early look would pass for the new run's first step).
        idle = self.page.get_by_text("Nothing is training.")
        expect(self._step_card().or_(idle).first).to_be_visible(timeout=PAGE_LOAD_MS)
        if self._step_card().count():
            self.button("Reset").click()
            expect(self.page.get_by_text("Nothing is training")).to_be_visible()
        start = self.button("Start")
        expect(start).to_be_enabled(timeout=PAGE_LOAD_MS)  # a loaded server draws slowly
        start.click()
        value = self._step_card().locator('[data-testid="stMetricValue"]')
        expect(value).to_have_text(re.compile(r"^\s*[1-9][\d,]*\s*$"), timeout=self.train_ms)

    def run_lab(self, view: str | None = None) -> None:
        """In the lab: Start a fresh run and wait for its end (then open ``view`` on it)."""
        self.start_lab()
        expect(self.button("Start")).to_be_visible(timeout=self.train_ms)  # ended (and saved)
        if view:
            self.choose_view(view)
            expect(self.page.locator(".st-key-flow")).to_be_visible(timeout=PAGE_LOAD_MS)

    def choose_view(self, view: str) -> None:
        group = self.page.locator('[data-testid="stButtonGroup"]')
        option = group.get_by_role("radio", name=view, exact=True)
        option.click(timeout=PAGE_LOAD_MS)
        expect(option).to_have_attribute("aria-checked", "true", timeout=PAGE_LOAD_MS)

    def relaunch(self, step_id: str, **changes: object) -> None:
        """The lab at the step's settings with ``changes`` (what the student set by hand), in
        the same bench (its token from the page's URL)."""
        bench = parse_qs(urlsplit(self.page.url).query)["bench"][-1]
        steps = (s for i in investigations(self.scale) for s in i.steps)
        step = next(s for s in steps if s.id == step_id)
        query = to_query({**defaults(), **step.values, **changes})
        self.page.goto(f"{self.base_url}/?{urlencode({**query, 'bench': bench})}")

    def _step_card(self) -> Locator:
        label = self.page.locator('[data-testid="stMetricLabel"]').get_by_text("Step", exact=True)
        return self.page.locator('[data-testid="stMetric"]').filter(has=label)


# -- the four walks: each returns what each step said (by step id) and what the data says --
Said = dict[str, str]


THETAS = (10.0, 1.0, 0.1)  # the θ a student tries for the RNN, from the step's 10 down


def walk_clip(w: Walk) -> Said:
    w.open("clip")
    w.apply("clip.1")
    w.run_map(1)
    said = {"clip.1": w.back("clip.1")}
    w.apply("clip.2")  # the RNN at init std 0.1, θ 10
    w.run_lab()
    # The student follows what the step says is missing: a smaller θ while the RNN trained at
    # none tried, the cap off (and a pushed lr) once it trained at one.
    done, text, tried = False, "", 1
    while True:
        done, text = w.back_to_check("clip.2")
        if done or tried > len(THETAS):
            break
        if "smaller θ" in text and tried < len(THETAS):
            w.relaunch("clip.2", clip=THETAS[tried])
        else:
            w.relaunch("clip.2", clip_on=False, lr=50.0)
        tried += 1
        w.run_lab()
    assert done, f"clip.2 not done after {tried} runs: {text}"
    w.lap("clip.2")
    said["clip.2"] = text
    w.apply("clip.3")  # the GRU at init std 0.1, clipping off
    w.run_lab()
    w.relaunch("clip.3", clip_on=True, clip=1.0)
    w.run_lab()
    said["clip.3"] = w.back("clip.3")
    said["answer"] = w.answer("clip", "No: the GRU trained without the cap the RNN needed.")
    w.all_done("clip")
    return said


def walk_init(w: Walk) -> Said:
    w.open("init")
    said = {}
    for n in (1, 2):
        w.apply(f"init.{n}")
        w.run_map(n)
        said[f"init.{n}"] = w.back(f"init.{n}")
    said["answer"] = w.answer("init", "0.01 keeps the book's network below the edge of chaos.")
    w.all_done("init")
    return said


def walk_bptt(w: Walk) -> Said:
    w.open("bptt")
    said = {}
    for n in (1, 2, 3):
        w.apply(f"bptt.{n}")
        w.run_lab("Through time")
        said[f"bptt.{n}"] = w.back(f"bptt.{n}")
    text = "It depends on the run: the gradient fades at its own rate."
    said["answer"] = w.answer("bptt", text)
    w.all_done("bptt")
    return said


def walk_half(w: Walk) -> Said:
    w.open("half")
    w.apply("half.1")
    w.run_map(1)
    said = {"half.1": w.back("half.1")}
    w.apply("half.2")  # the update gate only
    w.run_lab()
    w.relaunch("half.2", model="GRU (reset gate only)")
    w.run_lab()
    said["half.2"] = w.back("half.2")
    text = "The update gate keeps the state; without it, it is an RNN."
    said["answer"] = w.answer("half", text)
    w.all_done("half")
    return said


WALKS: dict[str, Callable[[Walk], Said]] = {
    "clip": walk_clip,
    "init": walk_init,
    "bptt": walk_bptt,
    "half": walk_half,
}
