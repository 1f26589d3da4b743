"""Trainability map sweeps: the spec's validation, a cell against the single run of its config
and seed (the reference), divergence, chunking under a memory budget, the job's controls,
the CSV and the CLI."""

from __future__ import annotations

import math
import sys
import threading
import time
import types
from pathlib import Path

import pandas as pd
import pytest
import torch

from gru_core.config import TrainConfig
from gru_core.data import Corpus, split_train_val
from gru_core.i18n import language_scope
from gru_core.run.records import EpochRecord, Outcome, StepRecord
from gru_core.run.scheduling import SlotPool
from gru_core.run.trainer import Trainer
from gru_core.step.core import StepCore
from gru_core.step.forward import Workspace
from gru_core.step.validation import validation_losses
from gru_core.sweep import cli as sweep
from gru_core.sweep import job as sweep_job
from gru_core.sweep.chunk import Curve, run_chunk
from gru_core.sweep.job import SweepJob
from gru_core.sweep.results import (
    CSV_COLUMNS,
    CellResult,
    cell_text,
    grid_table,
    results_frame,
    summarize,
    text_width,
)
from gru_core.sweep.spec import SweepSpec, axis_value, default_values, parse_values, plan

from helpers import CHAOTIC, fake_theory


@pytest.fixture(autouse=True)
def quick_theory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every map here draws its theory from a quick stand-in (the real one is gru_core's,
    tested in test_theory.py; ``test_the_real_theory_draws_the_map`` uses it)."""
    monkeypatch.setitem(sys.modules, "gru_core.theory", fake_theory([]))


SMALL = TrainConfig(hidden_size=16, num_steps=10, batch_size=4, max_tokens=2000,
                    val_tokens=500, num_epochs=2, device="cpu")  # fmt: skip


def small_spec(**changes: object) -> SweepSpec:
    values = dict(x_values=(0.01, 0.5), y_values=(1.0, None), base=SMALL)
    return SweepSpec(**{**values, **changes})  # type: ignore[arg-type]


# -- the spec ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(x_axis="depth"), "x_axis='depth' is not one of"),
        (dict(x_axis="num_steps", x_values=(35, 70.5)), "x_values[1]: num_steps=70.5 must be a"),
        (dict(y_axis="hidden_size", y_values=(0,)), "y_values[0]: hidden_size=0 must be positive"),
        (dict(y_axis="hidden_size", y_values=(8, 5000)), "y_values[1]: hidden_size=5000 is out"),
        (dict(y_axis="init_std"), "x_axis and y_axis are both 'init_std'"),
        (dict(x_values=()), "x_values is empty"),
        (dict(x_values=(0.01, -0.1)), "x_values[1]: init_std=-0.1 must be positive"),
        (dict(x_values=(0.0,)), "x_values[0]: init_std=0.0 must be positive"),
        (dict(x_values=(0.01, 20.0)), "x_values[1]: init_std=20.0 is out of range"),
        (dict(x_values=(0.01, 0.01)), "repeats a value"),
        (dict(x_values=(None,)), "x_values[0]: init_std=None must be"),
        (dict(x_values="0.01"), "must be a list of init_std values"),
        (dict(y_values=(1.0, 2e6)), "y_values[1]: clip_threshold=2000000.0 is out of range"),
        (dict(seeds=0), "seeds=0 must be an integer in [1, 3]"),
        (dict(seeds=4), "seeds=4 must be an integer in [1, 3]"),
        (dict(models=("gru", "transformer")), "models=('gru', 'transformer') must be"),
        (dict(models=()), "models=() must be distinct"),
        (dict(backend="spark"), "backend='spark' is not one of local, ray"),
        (dict(target_perplexity=0.5), "target_perplexity=0.5 must be a number >= 1"),
        (dict(eval_every=0), "eval_every=0 must be an integer >= 1"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(changes: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        small_spec(**changes)
    assert message in str(info.value)


def test_default_values_are_log_ladders_that_validate() -> None:
    assert default_values("init_std") == (0.001, 0.01, 0.1, 1.0)
    assert default_values("clip_threshold") == (0.1, 1.0, 10.0, None)
    assert default_values("lr") == (0.1, 1.0, 10.0, 100.0)
    eight = default_values("clip_threshold", 8)
    assert len(eight) == 8 and eight[-1] is None and list(eight[:-1]) == sorted(eight[:-1])
    SweepSpec(x_values=default_values("init_std", 8), y_values=eight)  # all valid
    with pytest.raises(ValueError, match="axis='depth'"):
        default_values("depth")


def test_sequence_length_and_hidden_size_are_integer_axes() -> None:
    assert default_values("num_steps") == (35, 70, 140, 280)
    assert default_values("hidden_size") == (32, 64, 128, 256)
    assert all(type(v) is int for v in default_values("hidden_size", 16))
    assert len(set(default_values("num_steps", 16))) == 16
    assert parse_values("num_steps", "35, 70,140.0") == (35, 70, 140)
    with pytest.raises(ValueError, match="num_steps: '35.5' is not a whole number"):
        parse_values("num_steps", "35.5")
    assert axis_value("hidden_size", 64.0) == 64 and axis_value("lr", 1) == 1.0
    spec = SweepSpec("num_steps", (35.0, 70), "hidden_size", (32, 64))
    assert spec.x_values == (35, 70) and all(type(v) is int for v in spec.y_values)
    cell = spec.cells()[3]
    assert (cell.config.num_steps, cell.config.hidden_size) == (70, 64)


def test_groups_split_by_shape_with_their_own_memory_estimate() -> None:
    spec = SweepSpec("num_steps", (5, 10), "hidden_size", (8, 16), SMALL, 1, ("gru", "rnn"))
    groups = spec.groups()
    assert len(groups) == 8 and all(len(g) == 1 for g in groups)
    shapes = {(g[0].config.model, g[0].config.num_steps, g[0].config.hidden_size) for g in groups}
    assert len(shapes) == 8
    by_hidden = SweepSpec("init_std", (0.01, 0.1), "hidden_size", (8, 16), SMALL).groups()
    assert [[c.config.hidden_size for c in g] for g in by_hidden] == [[8, 8], [16, 16]]
    p = plan(spec, 28, "cpu")
    est = dict(zip((c[0].config for c in p.chunks), p.estimates, strict=True))
    gru = {(c.num_steps, c.hidden_size): e for c, e in est.items() if c.model == "gru"}
    assert gru[(10, 16)] > gru[(5, 16)] and gru[(5, 16)] > gru[(5, 8)]


def test_groups_share_shape_and_seed() -> None:
    spec = small_spec(seeds=2, models=("gru", "rnn"))
    groups = spec.groups()
    assert len(spec.cells()) == 16 and len(groups) == 4
    for group in groups:
        assert len({(c.model, c.seed) for c in group}) == 1 and len(group) == 4
    cell = spec.cells()[5]
    assert cell.config == SMALL.replace(model=cell.model, seed=cell.seed, init_std=cell.x,
                                        clip_threshold=cell.y)  # fmt: skip


# -- a cell is the single run of its config and seed ---------------------------------------


def single_run(config: TrainConfig, corpus: Corpus) -> tuple[list, list, Outcome]:
    trainer = Trainer(config, corpus, "cpu", eval_every=1)
    records = list(trainer.run())
    steps = [r for r in records if isinstance(r, StepRecord)]
    epochs = [r for r in records if isinstance(r, EpochRecord)]
    assert isinstance(records[-1], Outcome)
    return steps, epochs, records[-1]


def sweep_chunk(spec: SweepSpec, chunk: tuple, corpus: Corpus) -> tuple[list, dict]:
    """Results of one chunk, and every member's per-step (loss, grad norm) before it ended."""
    train, val = split_train_val(corpus.tokens, spec.base.max_tokens, spec.base.val_tokens)
    seen: dict[int, list[tuple[int, float, float]]] = {k: [] for k in range(len(chunk))}

    def hook(step: int, epoch: int, rows, core: StepCore) -> None:  # noqa: ANN001
        ix = core.layout.index
        for k in seen:
            if not rows[k, ix["diverged"]]:
                seen[k].append((step, rows[k, ix["loss"]], rows[k, ix["grad_norm"]]))

    results = run_chunk(chunk, train, val, len(corpus.vocab), "cpu", spec.target_perplexity,
                        spec.eval_every, on_rows=hook)  # fmt: skip
    return results, seen


@pytest.mark.parametrize("sampling", ["sequential", "random"])
def test_each_cell_equals_its_single_run(small_corpus: Corpus, sampling: str) -> None:
    spec = small_spec(base=SMALL.replace(sampling=sampling), seeds=2)
    p = plan(spec, len(small_corpus.vocab), "cpu")
    assert len(p.chunks) == 2  # one per seed: each seed draws its own minibatch order
    for chunk in p.chunks:
        results, seen = sweep_chunk(spec, chunk, small_corpus)
        for k, (cell, result) in enumerate(zip(chunk, results, strict=True)):
            steps, epochs, outcome = single_run(cell.config, small_corpus)
            assert outcome.status == result.status == "done"
            assert [s for s, _, _ in seen[k]] == [r.step for r in steps]
            for (_, loss, norm), record in zip(seen[k], steps, strict=True):
                assert loss == pytest.approx(record.loss, rel=1e-5)
                assert norm == pytest.approx(record.grad_norm, rel=1e-5)
            assert result.steps == steps[-1].step and result.epochs == len(epochs)
            assert result.final_train_perplexity == pytest.approx(epochs[-1].train_perplexity,
                                                                  rel=1e-5)  # fmt: skip
            vals = [e.val_perplexity for e in epochs]
            assert result.final_val_perplexity == pytest.approx(vals[-1], rel=1e-5)
            assert result.best_val_perplexity == pytest.approx(min(vals), rel=1e-5)
            assert result.max_grad_norm == pytest.approx(max(r.grad_norm for r in steps), 1e-5)
            assert result.clipped_share == sum(r.clipped for r in steps) / len(steps)
            assert result.verdict == "learned" or result.verdict == "did not learn"


def test_diverged_cells_match_the_single_run_and_the_others_go_on(small_corpus: Corpus) -> None:
    base = TrainConfig(**{**CHAOTIC, "device": "cpu", "num_epochs": 2})
    spec = SweepSpec("init_std", (0.1, 3.0), "lr", (0.5, 10.0), base)
    (chunk,) = plan(spec, len(small_corpus.vocab), "cpu").chunks
    results, seen = sweep_chunk(spec, chunk, small_corpus)
    for k, (cell, result) in enumerate(zip(chunk, results, strict=True)):
        steps, _, outcome = single_run(cell.config, small_corpus)
        assert result.status == outcome.status
        assert [s for s, _, _ in seen[k]] == [r.step for r in steps]
        if outcome.status == "diverged":
            assert result.diverged_step == outcome.step and result.verdict == "diverged"
        else:
            assert result.diverged_step is None and result.steps == outcome.step
    assert {r.status for r in results} == {"diverged", "done"}
    table = {(r.x, r.y): r.diverged_step for r in results}
    assert table[(3.0, 0.5)] == table[(3.0, 10.0)] == 1 and table[(0.1, 0.5)] is None


def test_a_sweep_over_t_and_hidden_size_equals_its_single_runs(small_corpus: Corpus) -> None:
    base = SMALL.replace(num_epochs=1)
    spec = SweepSpec("num_steps", (5, 10), "hidden_size", (8, 16), base, 1, ("gru", "rnn"))
    job = SweepJob(spec, small_corpus, device="cpu")
    assert len(job.plan.chunks) == 8  # one per (model, T, hidden): shapes never share a core
    snap = job.run_sync()
    assert snap.state == "done"
    for cell, result in zip(spec.cells(), snap.results, strict=True):
        steps, epochs, outcome = single_run(cell.config, small_corpus)
        assert (result.num_steps, result.hidden_size) == (cell.x, cell.y)
        assert result.steps == steps[-1].step == outcome.step
        assert result.max_grad_norm == pytest.approx(max(r.grad_norm for r in steps), rel=1e-5)
        assert result.final_val_perplexity == pytest.approx(epochs[-1].val_perplexity, rel=1e-5)
    table = results_frame(snap.results)
    assert {"num_steps", "hidden_size", "init_std", "clip_threshold", "lr"} <= set(table)
    rows = table[(table["model"] == "rnn") & (table["num_steps"] == 10)]
    assert sorted(rows["hidden_size"]) == [8, 16] and (rows["init_std"] == 0.01).all()


def test_each_cell_gets_its_lambda_and_each_shape_its_edge(
    small_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple] = []
    monkeypatch.setitem(sys.modules, "gru_core.theory", fake_theory(calls))
    base = SMALL.replace(num_epochs=1)
    spec = SweepSpec("init_std", (0.01, 0.5), "hidden_size", (8, 16), base, 2, ("gru", "rnn"))
    snap = SweepJob(spec, small_corpus, device="cpu").run_sync()
    assert snap.state == "done" and not snap.theory_error
    assert snap.edges == {(m, h): (2 if m == "gru" else 1) / math.sqrt(h)
                          for m in ("gru", "rnn") for h in (8, 16)}  # fmt: skip
    # Once per distinct (model, hidden, std) and (model, hidden), not per seed or epoch.
    assert sum(c[0] == "lambda" for c in calls) == 8 and sum(c[0] == "edge" for c in calls) == 4
    train, _ = split_train_val(small_corpus.tokens, base.max_tokens, base.val_tokens)
    assert {c[4:] for c in calls if c[0] == "lambda"} == {(len(train), len(small_corpus.vocab))}
    for r in snap.results:
        want = math.log(r.init_std * math.sqrt(r.hidden_size) / (2 if r.model == "gru" else 1))
        assert r.lyapunov == pytest.approx(want)
    table = results_frame(snap.results)
    assert table["lambda"].tolist() == pytest.approx([r.lyapunov for r in snap.results])
    # The same text and settings again: remembered, not recomputed.
    calls.clear()
    again = SweepJob(spec, small_corpus, device="cpu").run_sync()
    assert not calls and again.edges == snap.edges
    # No init std axis: λ per cell, no edge to draw.
    snap = SweepJob(small_spec(x_axis="lr", x_values=(1.0,)), small_corpus, device="cpu").run_sync()
    assert not snap.edges and all(r.lyapunov is not None for r in snap.results)
    assert not [c for c in calls if c[0] == "edge"]


def test_the_theory_runs_beside_the_training_and_the_map_waits_for_it(
    small_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    calls: list[tuple] = []
    slow = fake_theory(calls)
    quick = slow.lyapunov_exponent

    def lyapunov_exponent(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        assert release.wait(60), "the test never released the theory"
        return quick(*args, **kwargs)

    slow.lyapunov_exponent = lyapunov_exponent  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gru_core.theory", slow)
    spec = small_spec(x_values=(0.013,), base=SMALL.replace(num_epochs=1))  # new: not remembered
    job = SweepJob(spec, small_corpus, device="cpu")
    job.start()
    deadline = time.monotonic() + 60
    while not all(r.finished for r in job.snapshot().results) and time.monotonic() < deadline:
        time.sleep(0.05)
    snap = job.snapshot()
    assert all(r.finished for r in snap.results)  # trained while the theory was busy
    assert snap.state == "running" and all(r.lyapunov is None for r in snap.results)
    release.set()
    job.join(60)
    snap = job.snapshot()
    assert snap.state == "done" and all(r.lyapunov is not None for r in snap.results)


def test_a_sweep_trains_without_its_theory(
    small_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = types.ModuleType("gru_core.theory")  # no functions at all
    monkeypatch.setitem(sys.modules, "gru_core.theory", broken)
    snap = SweepJob(small_spec(x_values=(0.01,)), small_corpus, device="cpu").run_sync()
    assert snap.state == "done" and snap.theory_error.startswith("AttributeError: ")
    assert not snap.edges and all(r.lyapunov is None for r in snap.results)
    assert results_frame(snap.results)["lambda"].isna().all()


def test_batched_validation_equals_the_cores_one_member_validation(small_corpus: Corpus) -> None:
    configs = [SMALL.replace(init_std=s, seed=i) for i, s in enumerate((0.01, 0.3, 1.0))]
    core = StepCore(configs, len(small_corpus.vocab), "cpu")
    _, val = split_train_val(small_corpus.tokens, SMALL.max_tokens, SMALL.val_tokens)
    got = validation_losses(core, [0, 2], val, Workspace())
    assert got is not None and got.shape == (2,) and got.device == core.flat.device
    for i, k in enumerate((0, 2)):
        one = core.validation_loss(k, val)
        assert one is not None and one.dim() == 0
        assert float(got[i]) == pytest.approx(float(one), rel=1e-5)
    assert validation_losses(core, [1], val[:1], Workspace()) is None


# -- chunks and the memory budget ----------------------------------------------------------


def comparable(r: CellResult) -> tuple:
    return (r.key, r.status, r.steps, r.diverged_step, r.verdict, r.clipped_share,
            round(r.final_val_perplexity or 0, 3), round(r.max_grad_norm or 0, 4))  # fmt: skip


def test_chunking_under_a_small_budget_changes_no_result(
    small_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = small_spec(x_values=(0.01, 0.1, 0.5))
    whole = SweepJob(spec, small_corpus, device="cpu")
    assert len(whole.plan.chunks) == 1
    full = whole.run_sync()
    one, two = (sum(whole.plan.estimates) / 6 * k for k in (1, 2))  # about, per member
    monkeypatch.setenv("GRU_LAB_MEMORY_BUDGET_MB", f"{(one + two) / 2 / 2**20:.3f}")
    chunked = SweepJob(spec, small_corpus, device="cpu")
    assert len(chunked.plan.chunks) > 1
    assert all(e <= chunked.plan.budget for e in chunked.plan.estimates)
    assert [comparable(r) for r in chunked.run_sync().results] == [
        comparable(r) for r in full.results
    ]


def test_a_sweep_that_cannot_fit_is_refused_with_estimate_and_budget(
    small_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRU_LAB_MEMORY_BUDGET_MB", "0.01")
    with pytest.raises(ValueError) as info:
        SweepJob(small_spec(), small_corpus, device="cpu")
    text = str(info.value)
    assert "needs about" in text and "budget of 0 MB" in text and "GRU_LAB_MEMORY_BUDGET_MB" in text


# -- the job -------------------------------------------------------------------------------


def wait_state(job: SweepJob, states: set[str], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while (state := job.snapshot().state) not in states:
        assert time.monotonic() < deadline, f"still {state}"
        time.sleep(0.02)
    return state


def test_job_pauses_resumes_and_finishes(small_corpus: Corpus) -> None:
    job = SweepJob(small_spec(), small_corpus, device="cpu", pool=SlotPool(1), start_paused=True)
    assert job.snapshot().state == "ready"
    job.start()
    wait_state(job, {"paused"})
    assert all(r.status == "pending" for r in job.snapshot().results)
    job.resume()
    job.join(60)
    snap = job.snapshot()
    assert snap.state == "done" and snap.finished == snap.total == 4
    assert all(r.status == "done" and r.verdict for r in snap.results)


def test_job_stop_marks_what_did_not_run(small_corpus: Corpus) -> None:
    job = SweepJob(small_spec(seeds=2), small_corpus, device="cpu", pool=SlotPool(1),
                   start_paused=True)  # fmt: skip
    job.start()
    wait_state(job, {"paused"})
    job.stop()
    snap = job.snapshot()
    assert snap.state == "stopped" and not job.alive
    assert {r.status for r in snap.results} == {"stopped"}


def test_a_failing_chunk_is_an_error_and_the_others_still_run(
    small_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sweep_job.run_chunk

    def flaky(cells, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if cells[0].seed == 0:
            raise RuntimeError("device lost")
        return real(cells, *args, **kwargs)

    monkeypatch.setattr(sweep_job, "run_chunk", flaky)
    snap = SweepJob(small_spec(seeds=2), small_corpus, device="cpu").run_sync()
    assert snap.state == "error" and "device lost" in snap.message
    assert {r.status for r in snap.results if r.seed == 0} == {"error"}
    assert {r.status for r in snap.results if r.seed == 1} == {"done"}


def test_ray_backend_without_ray_says_how_to_install(
    small_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ValueError, match=r"pip install -r requirements-ray\.txt"):
        SweepJob(small_spec(backend="ray"), small_corpus, device="cpu")


# -- results -------------------------------------------------------------------------------


def test_curve_is_bounded_and_keeps_geometric_means() -> None:
    curve = Curve(points=10)
    for step in range(1, 1001):
        curve.add(step, math.log(5.0))
    steps, ppl = curve.values()
    assert len(steps) <= 10 and steps == tuple(sorted(steps))
    assert ppl == pytest.approx([5.0] * len(ppl))
    assert 1 <= steps[0] and steps[-1] <= 1000


def test_a_map_cell_shows_its_worst_seed() -> None:
    def run(seed: int, **kw: object) -> CellResult:
        return CellResult("gru", 0.1, 1.0, seed, 0.1, 1.0, 1.0, 35, 256, **kw)  # type: ignore[arg-type]

    ok = run(0, status="done", verdict="learned", final_val_perplexity=4.0)
    ok2 = run(1, status="done", verdict="learned", final_val_perplexity=9.0)
    (cell,) = summarize([ok, ok2])
    assert cell.verdict == "learned" and cell.perplexity == pytest.approx(6.0)
    assert cell_text(cell) == "6.00"
    bad = run(1, status="diverged", verdict="diverged", diverged_step=12)
    assert cell_text(summarize([ok, bad])[0]) == "diverged@12 (1/2 seeds)"
    assert cell_text(summarize([run(0, status="done", verdict="blew up")])[0]) == "blew up"
    assert cell_text(summarize([ok, run(1)])[0]) == "…"


def test_a_map_cell_is_worded_in_the_readers_language_and_the_csv_stays_english() -> None:
    """The worker keeps kinds and numbers; the grid words them where it is printed (发散@12,
    爆炸: the catalogue's words for the map), aligned by terminal columns. The CSV is data:
    its status and verdict columns keep the English identifiers in every language."""

    def run(seed: int, **kw: object) -> CellResult:
        return CellResult("gru", 0.1, 1.0, seed, 0.1, 1.0, 1.0, 35, 256, **kw)  # type: ignore[arg-type]

    ok = run(0, status="done", verdict="learned", final_val_perplexity=4.0)
    bad = run(1, status="diverged", verdict="diverged", diverged_step=12)
    blew = run(0, status="done", verdict="blew up")
    with language_scope("zh_CN"):
        assert cell_text(summarize([bad])[0]) == "发散@12"
        assert cell_text(summarize([ok, bad])[0]) == "发散@12 （1/2 个种子）"
        assert cell_text(summarize([blew])[0]) == "爆炸"
        grid = grid_table(summarize([bad]), [0.1], [1.0], "初始化标准差", "裁剪阈值 θ")
        frame = results_frame([ok, bad, blew])
    head, row = grid.splitlines()
    assert "发散@12" in row and text_width(head) == text_width(row)  # columns line up
    assert text_width("发散@12") == 7
    assert list(frame["verdict"]) == ["learned", "diverged", "blew up"]
    assert list(frame["status"]) == ["done", "diverged", "done"]


# -- the CLI -------------------------------------------------------------------------------

TINY = ["--hidden-size", "16", "--num-steps", "10", "--batch-size", "4", "--max-tokens",
        "2000", "--val-tokens", "500", "--num-epochs", "2", "--device", "cpu"]  # fmt: skip


def test_cli_prints_the_map_and_writes_one_csv_row_per_cell_and_seed(
    corpus_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "map.csv"
    argv = ["--x", "init_std=0.01,3", "--y", "clip_threshold=1,off", "--seeds", "2",
            "--corpus", corpus_path, "--csv", str(out), *TINY, "--hidden-size", "64",
            "--num-steps", "100", "--batch-size", "2", "--lr", "10"]  # fmt: skip
    assert sweep.main(argv) == 0
    text = capsys.readouterr().out
    assert "clip θ \\ init std" in text and "diverged@1" in text and "done in" in text
    table = pd.read_csv(out)
    assert list(table.columns) == list(CSV_COLUMNS)
    needed = {"init_std", "clip_threshold", "lr", "seed", "final_train_perplexity",
              "final_val_perplexity", "diverged_step", "max_grad_norm", "clipped_share",
              "model", "verdict"}  # fmt: skip
    assert needed <= set(table.columns) and len(table) == 8
    assert set(table["clip_threshold"].astype(str)) == {"1", "off"}
    assert set(table["seed"]) == {0, 1}
    diverged = table[table["init_std"] == 3.0]
    assert (diverged["verdict"] == "diverged").all() and (diverged["diverged_step"] == 1).all()


def test_cli_sweeps_sequence_length_with_a_column_per_axis(
    corpus_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "map.csv"
    argv = ["--x", "num_steps=5,10", "--y", "init_std=0.01,0.1", "--corpus", corpus_path,
            "--csv", str(out), *TINY, "--num-epochs", "1"]  # fmt: skip
    assert sweep.main(argv) == 0
    text = capsys.readouterr().out
    assert "init std \\ sequence length T" in text and "4 runs in 2 batch(es)" in text
    table = pd.read_csv(out)
    assert list(table["num_steps"]) == [5, 10, 5, 10] and set(table["hidden_size"]) == {16}
    assert list(table["init_std"]) == [0.01, 0.01, 0.1, 0.1]


@pytest.mark.parametrize(
    "argv",
    [
        ["--x", "depth=1,2", "--y", "lr=1"],
        ["--x", "init_std=0.01", "--y", "lr=abc"],
        ["--x", "init_std=0.01,0.1", "--y", "init_std=1"],
        ["--x", "init_std=0.01", "--y", "lr=0"],
        ["--x", "init_std=0.01", "--y", "lr=1", "--seeds", "4"],
        ["--x", "init_std=0.01", "--y", "lr=off"],
        ["--x", "init_std=0.01", "--y", "num_steps=10,12.5"],
        ["--y", "lr=1"],
    ],
)
def test_cli_bad_arguments_exit_2(argv: list[str], corpus_path: str) -> None:
    with pytest.raises(SystemExit) as info:
        code = sweep.main([*argv, "--corpus", corpus_path, *TINY])
        raise SystemExit(code)
    assert info.value.code == 2


def test_cli_over_budget_exits_2_and_error_exits_4(
    corpus_path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--x", "init_std=0.01", "--y", "lr=1", "--corpus", corpus_path, *TINY]
    monkeypatch.setenv("GRU_LAB_MEMORY_BUDGET_MB", "0.01")
    assert sweep.main(argv) == 2
    assert "budget" in capsys.readouterr().err
    monkeypatch.delenv("GRU_LAB_MEMORY_BUDGET_MB")

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("boom")

    monkeypatch.setattr(sweep_job, "run_chunk", broken)
    assert sweep.main(argv) == 4
    assert "boom" in capsys.readouterr().err


def test_torch_threads_are_left_as_they_were(small_corpus: Corpus) -> None:
    before = torch.get_num_threads()
    SweepJob(small_spec(x_values=(0.01,), y_values=(1.0,)), small_corpus, device="cpu").run_sync()
    assert torch.get_num_threads() == before


def test_the_ray_backend_does_not_import_the_sweep_job() -> None:
    """sweep/job.py imports ray_backend; ray_backend reads the job through chunk.SweepControl,
    so the two form no import cycle (not even under TYPE_CHECKING)."""
    import ast

    from gru_core.sweep import ray_backend

    tree = ast.parse(Path(ray_backend.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "gru_core.sweep.job" not in imported
    assert "gru_core.sweep.chunk" in imported and "gru_core.sweep.results" in imported


def test_the_real_theory_draws_the_map(
    small_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "gru_core.theory")
    import gru_core.theory as theory

    monkeypatch.setitem(sys.modules, "gru_core.theory", theory)
    spec = small_spec(x_axis="lr", x_values=(1.0,), y_axis="hidden_size", y_values=(8, 16),
                      base=SMALL.replace(num_epochs=1), models=("rnn",))  # fmt: skip
    snap = SweepJob(spec, small_corpus, device="cpu").run_sync()
    assert snap.state == "done" and not snap.theory_error
    assert not snap.edges  # no init std axis: no line to draw
    train, _ = split_train_val(small_corpus.tokens, SMALL.max_tokens, SMALL.val_tokens)
    for r in snap.results:
        want = theory.lyapunov_exponent("rnn", r.hidden_size, 0.01, train, len(small_corpus.vocab))
        assert r.lyapunov == pytest.approx(want) and r.lyapunov < 0  # 0.01 vanishes
