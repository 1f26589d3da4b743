"""The investigations: each completion check on crafted runs and maps (pass and fail), the
findings quoting the student's numbers, the steps' settings valid where they are applied,
the time each investigation takes, and the progress saved with the bench and restored."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dashboard.investigate import checks as ck
from dashboard.investigate.catalogue import (
    LAB,
    MAP,
    SCALE_ENV,
    THROUGH_TIME,
    Scale,
    investigations,
    progress_of,
)
from dashboard.investigate.evidence import Evidence, MapCell, MapFact, RunFact, ViewMark
from dashboard.investigate.findings import finding
from dashboard.investigate.progress import Progress, ProgressBook
from dashboard.runs.memory import MemoryRunStore
from dashboard.runs.records import StorageError, new_token
from dashboard.runs.sqlite import SQLiteRunStore
from dashboard.screens import map as map_screen
from dashboard.sidebar import controls as ctl
from gru_core.sweep.spec import AXES

BOOK = Scale()
H = BOOK.hidden


def run(model: str = "gru", verdict: str = "learned", **kw: Any) -> RunFact:
    base: dict[str, Any] = dict(
        name="#1", model=model, hidden=H, init_std=0.01, clip=1.0, lr=1.0, steps=35,
        verdict=verdict, perplexity=5.0, val_perplexity=9.0,
    )  # fmt: skip
    return RunFact(**{**base, **kw})


def grid(
    x_axis: str, xs: list[Any], y_axis: str, ys: list[Any], models: tuple[str, ...],
    verdict: Any = lambda m, x, y: "learned", hidden: int = H,
    edges: tuple[tuple[str, int, float | None], ...] = (),
) -> MapFact:  # fmt: skip
    cells = tuple(
        MapCell(m, x, y, verdict(m, x, y), 5.0 + i)
        for i, (m, x, y) in enumerate((m, x, y) for m in models for y in ys for x in xs)
    )
    return MapFact(x_axis, y_axis, models, hidden, 35, 10, cells, edges)


def clip_map(hidden: int = H) -> MapFact:
    """The RNN blows up at std 0.1 unless θ <= 1; the GRU trains everywhere."""

    def verdict(model: str, clip: Any, std: float) -> str:
        bad = model == "rnn" and std == 0.1 and (clip is None or clip > 1)
        return "blew up" if bad else "learned"

    return grid("clip_threshold", [0.1, 1.0, 10.0, None], "init_std", [0.01, 0.1],
                ("gru", "rnn"), verdict, hidden,
                (("gru", hidden, 0.139), ("rnn", hidden, 0.0726)))  # fmt: skip


def init_map(hidden: int = H, models: tuple[str, ...] = ("gru", "rnn")) -> MapFact:
    edge = 2.22 / hidden**0.5
    fact = grid("init_std", [0.001, 0.01, 0.1, 1.0], "clip_threshold", [1.0, None], models,
                lambda m, x, y: "diverged" if x == 1.0 else "learned", hidden,
                tuple((m, hidden, edge) for m in models))  # fmt: skip
    cells = tuple(replace(c, perplexity=None, diverged_step=12) if c.verdict == "diverged" else c
                  for c in fact.cells)  # fmt: skip
    return replace(fact, cells=cells)


def flow(decay: float, steps: int) -> tuple[float, ...]:
    """‖∂ℓ_T/∂H_t‖ for t = 1..T falling by ``decay`` per step back from t = T."""
    return tuple(decay ** (steps - t) for t in range(1, steps + 1))


def complete() -> Evidence:
    """Evidence that completes every step of every investigation at the book's size."""
    runs = (
        run("rnn", "learned", init_std=0.1, clip=1.0),
        run("rnn", "blew up", init_std=0.1, clip=None),
        run("gru", "learned", init_std=0.1, clip=None),
        run("gru", "learned", init_std=0.1, clip=1.0),
        run("gru", steps=35, flow_last=flow(0.7, 35)),
        run("gru", steps=280, flow_last=flow(0.8, 280)),
        run("rnn", steps=280, flow_last=flow(0.5, 280)),
        run("gru_update_only"),
        run("gru_reset_only", "did not learn"),
    )
    halves = ("gru", "gru_reset_only", "gru_update_only", "rnn")
    maps = (
        clip_map(), init_map(), init_map(BOOK.small_hidden),
        grid("init_std", [0.01, 0.1], "clip_threshold", [1.0, None], halves),
    )  # fmt: skip
    views = {ViewMark(THROUGH_TIME, "gru", 35), ViewMark(THROUGH_TIME, "gru", 280),
             ViewMark(THROUGH_TIME, "rnn", 280)}  # fmt: skip
    return Evidence(runs, maps, frozenset(views))


STEPS = [(inv.key, step) for inv in investigations(BOOK) for step in inv.steps]


@pytest.mark.parametrize(("key", "step"), STEPS, ids=[s.id for _, s in STEPS])
def test_every_step_is_done_by_its_runs_and_maps_and_not_without_them(key: str, step: Any) -> None:
    assert not step.check(Evidence()).done
    done = step.check(complete())
    assert done.done, done.message
    assert any(ch.isdigit() for ch in done.message)  # the result quotes numbers


def test_maps_must_be_at_the_books_hidden_size_with_every_model() -> None:
    axes = ("init_std", "clip_threshold")
    assert ck.maps_exist(Evidence(maps=(init_map(),)), ("gru", "rnn"), axes, H, (3, 2)).done
    small = ck.maps_exist(Evidence(maps=(init_map(32),)), ("gru", "rnn"), axes, H)
    assert not small.done and "hidden 256" in small.message
    gru_only = ck.maps_exist(Evidence(maps=(init_map(models=("gru",)),)), ("gru", "rnn"), axes, H)
    assert not gru_only.done and "RNN" in gru_only.message and "GRU," not in gru_only.message
    # a map of other axes, or too few values on one, does not count
    other = grid("lr", [1.0, 5.0], "clip_threshold", [1.0, None], ("gru", "rnn"))
    assert not ck.maps_exist(Evidence(maps=(other,)), ("gru", "rnn"), axes, H).done
    narrow = grid("init_std", [0.01, 0.1], "clip_threshold", [1.0, None], ("gru", "rnn"))
    assert not ck.maps_exist(Evidence(maps=(narrow,)), ("gru", "rnn"), axes, H, (3, 2)).done
    # a GRU map and an RNN map made separately count together
    both = Evidence(maps=(init_map(models=("gru",)), init_map(models=("rnn",))))
    result = ck.maps_exist(both, ("gru", "rnn"), axes, H)
    assert result.done and "best perplexity 5.00 at init std 0.001" in result.message


def test_the_theta_boundary_needs_a_theta_that_trains_and_one_that_does_not() -> None:
    learned = run("rnn", init_std=0.1, clip=1.0)
    blew = run("rnn", "blew up", init_std=0.1, clip=10.0)
    only_good = ck.theta_boundary(Evidence((learned,)), "rnn", 0.1, H)
    assert not only_good.done and "larger θ" in only_good.message
    only_bad = ck.theta_boundary(Evidence((blew,)), "rnn", 0.1, H)
    assert not only_bad.done and "smaller θ" in only_bad.message
    other_std = ck.theta_boundary(Evidence((learned, replace(blew, init_std=0.01))), "rnn", 0.1, H)
    assert not other_std.done
    found = ck.theta_boundary(Evidence((blew, learned)), "rnn", 0.1, H)
    assert found.done
    assert "trained at θ = 1 and not at θ = 10" in found.message
    assert "perplexity 5.00" in found.message


def test_through_time_needs_the_run_and_the_view_on_it() -> None:
    r = run("gru", steps=280, flow_last=flow(0.8, 280))
    assert "saved GRU run" in ck.view_opened(Evidence(), THROUGH_TIME, "gru", 280).message
    no_view = ck.view_opened(Evidence((r,)), THROUGH_TIME, "gru", 280)
    assert not no_view.done and "Through time" in no_view.message
    wrong_t = Evidence((r,), views=frozenset({ViewMark(THROUGH_TIME, "gru", 35)}))
    assert not ck.view_opened(wrong_t, THROUGH_TIME, "gru", 280).done
    seen = Evidence((r,), views=frozenset({ViewMark(THROUGH_TIME, "gru", 280)}))
    result = ck.view_opened(seen, THROUGH_TIME, "gru", 280)
    assert result.done
    assert f"35 back {0.8**35:.0e}" in result.message  # the run's own gradient, quoted
    # 0.8^k falls under 1e-7 at k = ceil(7 / log10(1.25)) = 73 steps back
    assert ck.practical_reach(r) == 73 and "after 73 steps" in result.message


def test_runs_exist_names_what_is_missing() -> None:
    half = ck.runs_exist(Evidence((run("gru_update_only"),)), ("gru_update_only", "gru_reset_only"))
    assert not half.done and "reset gate only" in half.message
    both = Evidence((run("gru_update_only"), run("gru_reset_only", "did not learn")))
    assert ck.runs_exist(both, ("gru_update_only", "gru_reset_only")).done


def test_the_clip_finding_says_the_gru_needs_clipping_less_from_the_data() -> None:
    found = finding("clip", Evidence(maps=(clip_map(),)), BOOK)
    text = " ".join(found.data)
    assert "the GRU trained at θ = 0.1, 1, 10, off; the RNN at θ = 0.1, 1." in text
    assert "needs clipping less" in text
    assert "0.14 for the GRU" in found.theory and "0.073 for the RNN" in found.theory

    # other data, another finding: an RNN that trains where the GRU does not
    def gru_off_blows_up(model: str, clip: Any, std: float) -> str:
        return "blew up" if model == "gru" and clip is None else "learned"

    flipped = grid(
        "clip_threshold", [1.0, None], "init_std", [0.1], ("gru", "rnn"), gru_off_blows_up
    )
    text = " ".join(finding("clip", Evidence(maps=(flipped,)), BOOK).data)
    assert "needs clipping less" not in text and "RNN trained at θ = off" in text


def test_the_init_finding_compares_the_edge_at_both_sizes() -> None:
    ev = Evidence(maps=(init_map(), init_map(BOOK.small_hidden)))
    found = finding("init", ev, BOOK)
    text = " ".join(found.data)
    assert "Hidden 256, GRU: trained at init std 0.001, 0.01, 0.1" in text
    assert "from init std 0.39 at hidden 32 to 0.14 at hidden 256" in text
    assert "2.8× lower (√(256/32) = 2.8)" in text and "14× below it" in text
    assert "edge of chaos" in found.theory


def test_the_bptt_finding_quotes_the_practical_window() -> None:
    found = finding("bptt", complete(), BOOK)
    assert any("for 73 steps back" in line for line in found.data)
    assert finding("bptt", Evidence(), BOOK).data == ()


def test_the_half_finding_lists_each_model_of_the_map() -> None:
    found = finding("half", complete(), BOOK)
    assert sum("trained in 4 of 4 cells" in line for line in found.data) == 4
    assert "Z = 0" in found.theory and "R = 1" in found.theory


def test_progress_counts_the_answer_as_the_last_step() -> None:
    inv = investigations(BOOK)[0]
    assert progress_of(inv, {}, "") == (0, 4)
    assert progress_of(inv, {"clip.1": "x"}, "too short") == (1, 4)
    done = {s.id: "x" for s in inv.steps}
    assert progress_of(inv, done, "The GRU needs clipping less than the RNN.") == (4, 4)


# -- the steps' settings ---------------------------------------------------------------------
@pytest.mark.parametrize(("key", "step"), STEPS, ids=[s.id for _, s in STEPS])
def test_every_step_applies_settings_its_page_accepts(key: str, step: Any) -> None:
    if step.page == LAB:
        config = ctl.config_from_values({**ctl.defaults(), **step.values})
        assert config.hidden_size == H
        assert all(ctl.parse(ctl.BY_KEY[k], ctl._fmt(v)) == v for k, v in step.values.items())
    else:
        assert step.page == MAP
        v = step.values
        assert set(map_screen.DEFAULTS) | {"map_xv", "map_yv"} == set(v)
        assert v["map_x"] in AXES and v["map_y"] in AXES and v["map_x"] != v["map_y"]
        for side in ("x", "y"):
            assert set(v[f"map_{side}v"]) <= set(map_screen._options(v[f"map_{side}"]))
        assert set(v["map_models"]) <= set(map_screen.MODEL_NAMES)
        for size, (low, high) in map_screen.SIZES.items():
            assert low <= v[size] <= high


@pytest.mark.parametrize("inv", investigations(BOOK), ids=lambda i: i.key)
def test_each_investigation_trains_for_well_under_ten_minutes(inv: Any) -> None:
    assert sum(step.seconds for step in inv.steps) < 6 * 60  # the rest is reading and writing


def test_the_small_scale_shrinks_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCALE_ENV, "small")
    for inv in investigations():
        for step in inv.steps:
            hidden = step.values.get("hidden", step.values.get("map_hidden"))
            assert hidden is not None and hidden <= 16


# -- progress, saved with the bench ----------------------------------------------------------
def test_progress_round_trips_through_its_dict() -> None:
    progress = Progress(
        "init", {"init.1": "GRU: trained in 6 of 8 cells"}, {"init": "0.01 is below the edge"},
        (init_map(), clip_map()), frozenset({ViewMark(THROUGH_TIME, "gru", 35)}),
    )  # fmt: skip
    assert Progress.from_dict(progress.to_dict()) == progress


def test_progress_is_saved_with_the_bench_and_restored_after_a_reload(tmp_path: Path) -> None:
    store = SQLiteRunStore(tmp_path / "runs.sqlite")
    token = new_token()
    book = ProgressBook(store, token)
    book.load()
    book.set_active("clip")
    book.add_map(clip_map())
    book.saw(ViewMark(THROUGH_TIME, "gru", 280))
    book.mark_done("clip.1", "GRU: trained in 8 of 8 cells")
    book.mark_done("clip.1", "a later result does not replace the first")
    book.answer("clip", "No: the GRU needs clipping less.")
    # a reload (a new session) and a server restart (a new store on the same file)
    again = ProgressBook(SQLiteRunStore(tmp_path / "runs.sqlite"), token)
    again.load()
    assert again.progress == book.progress
    assert again.progress.done == {"clip.1": "GRU: trained in 8 of 8 cells"}
    assert again.progress.maps == (clip_map(),)
    # another bench sees none of it
    other = ProgressBook(store, new_token())
    other.load()
    assert other.progress == Progress()
    again.reset("clip", ("clip.1", "clip.2", "clip.3"))
    assert again.progress.done == {} and "clip" not in again.progress.answers
    assert again.progress.maps == (clip_map(),)  # the maps stay: they are the student's work


def test_a_store_from_before_investigations_gains_the_progress_table(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    SQLiteRunStore(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE progress")
    store = SQLiteRunStore(path)
    token = new_token()
    store.save_progress(token, {"active": "bptt"})
    assert store.get_progress(token) == {"active": "bptt"}


def test_memory_store_keeps_progress_and_refuses_what_is_not_json() -> None:
    store = MemoryRunStore()
    token = new_token()
    assert store.get_progress(token) is None
    body = {"answers": {"init": "x"}}
    store.save_progress(token, body)
    body["answers"]["init"] = "changed after saving"
    assert store.get_progress(token) == {"answers": {"init": "x"}}
    with pytest.raises(ValueError, match="plain JSON"):
        store.save_progress(token, {"x": float("nan")})
    with pytest.raises(ValueError):
        store.save_progress("not a token", {})


# -- the worksheet ---------------------------------------------------------------------------
def test_the_worksheet_holds_the_progress_the_answers_and_the_maps() -> None:
    from dashboard.investigate.sheet import worksheet_from_progress
    from dashboard.worksheet import worksheet_html, worksheet_markdown

    progress = Progress(
        "init", {"init.1": "GRU: trained in 6 of 8 cells (kept)"},
        {"init": "0.01 keeps the book's network below the edge of chaos."},
        (init_map(), init_map(BOOK.small_hidden), clip_map()),
    )  # fmt: skip
    sheet = worksheet_from_progress(progress, [], BOOK, "en", student="Ada")
    init = next(i for i in sheet.investigations if i.title == "Why init std 0.01?")
    assert init.done  # both maps and the answer
    # Its map is there: the step reads as checked now (in the sheet's language); the words
    # kept when it was done stand in only once the evidence has gone (the sheet below).
    assert init.steps[0].result.startswith("GRU: trained in 6 of 8 cells; best perplexity")
    gone = worksheet_from_progress(replace(progress, maps=()), [], BOOK, "en", student="Ada")
    kept = next(i for i in gone.investigations if i.title == "Why init std 0.01?").steps[0]
    assert kept.done and kept.result == "GRU: trained in 6 of 8 cells (kept)"
    assert init.steps[1].done and "GRU: trained in" in init.steps[1].result
    assert "from init std 0.39 at hidden 32 to 0.14 at hidden 256" in init.data_says
    assert [m.models for m in init.maps] == [("GRU", "RNN"), ("GRU", "RNN")]
    clip_sheet = sheet.investigations[0]
    assert not clip_sheet.done and len(clip_sheet.maps) == 1  # the clip map, not the init maps
    html = worksheet_html(sheet)
    assert "0.01 keeps the book&#x27;s network" in html or "0.01 keeps the book's network" in html
    assert html.count('class="plotly-graph-div"') >= 3 or html.count("Plotly.newPlot") >= 3
    markdown = worksheet_markdown(sheet)
    assert "GRU: trained in 6 of 8 cells; best perplexity" in markdown
    assert "| clip θ \\\\ init std | 0.001 | 0.01 | 0.1 | 1 |" in markdown
    assert "None" not in markdown


def test_a_done_step_reads_in_the_readers_language_not_the_one_it_was_done_in() -> None:
    """A step done on an English page kept its result in English; read on a Chinese page it
    showed that English. The live check words it now; the kept words stand in only when the
    evidence has gone from the store."""
    from dashboard.screens.investigate import checked
    from gru_core.i18n import language_scope

    inv = next(i for i in investigations(BOOK) if i.key == "init")
    book = ProgressBook()
    ev = Evidence(maps=(init_map(),))
    with language_scope("en"):
        done_in_english = checked(inv, ev, book)[0]
    assert done_in_english.done and "trained in" in done_in_english.message
    with language_scope("zh_CN"):
        read_in_chinese = checked(inv, ev, book)[0]
        kept_only = checked(inv, Evidence(), book)[0]  # the map has gone from the store
    assert read_in_chinese.done and "trained in" not in read_in_chinese.message
    assert "训练" in read_in_chinese.message
    assert kept_only.done and kept_only.message == done_in_english.message


def test_a_failed_save_of_progress_is_worded_where_it_is_shown() -> None:
    from gru_core.i18n import language_scope, worded

    class Broken(MemoryRunStore):
        def save_progress(self, token: str, body: dict) -> None:
            raise StorageError("disk full")

    book = ProgressBook(Broken(), new_token())
    book.mark_done("init.1", "done")
    assert book.problem is not None and "disk full" in book.problem
    with language_scope("zh_CN"):
        assert worded(book.problem) == "探究进度没有保存：disk full"
