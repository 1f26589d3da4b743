"""The Lab reads its models for the Text and Memory views (``session/reading.py``): which
weights there are, what they say on a passage, samples, and connectivity's preselection.
Plain Python on tiny runs: the views only draw what these return."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
import torch

from dashboard.runs.saved import MIN_STEPS_KEPT
from dashboard.session.lab import Lab
from dashboard.session.reading import Reader, Source, compare_defaults
from gru_core import memory
from gru_core.config import TrainConfig
from gru_core.data import Corpus, split_train_val
from gru_core.model.sampling import generate

from helpers import SyncRunner

TINY = TrainConfig(
    hidden_size=16, num_steps=8, batch_size=4, max_tokens=2000, val_tokens=500, num_epochs=50,
    device="cpu",
)  # fmt: skip
PASSAGE = "the time traveller smiled"


def train(lab: Lab, config: TrainConfig = TINY, save: bool = True) -> None:
    lab.start(config, None).run_sync(MIN_STEPS_KEPT + 2)
    if save:
        lab.stop()


def test_sources_are_the_live_weights_then_saved_runs_newest_first(
    small_corpus: Corpus,
) -> None:
    lab = Lab(corpus=small_corpus, runner=SyncRunner())
    assert lab.sources() == {}
    train(lab)
    train(lab, TINY.replace(model="rnn"), save=False)  # still going: its live weights
    found = lab.sources()
    live, gru = found.values()  # the RNN still runs: no saved copy of it yet
    assert live.label == "this run (its latest weights)"  # the same at every step
    assert live.step is not None and live.step > 0
    assert live.title == f"this run (weights at step {live.step:,})"
    assert gru.title == gru.label and gru.step is None
    assert live.config.model == "rnn" and live.run_id is None and live.job_run == 2
    assert gru.config.model == "gru" and gru.run_id is not None and gru.job_run == 1
    assert gru.label == lab.runs.newest().name  # type: ignore[union-attr]
    lab.close()


def test_analysis_is_memory_analyse_of_the_weights_and_cached(small_corpus: Corpus) -> None:
    lab = Lab(corpus=small_corpus, runner=SyncRunner())
    train(lab)
    source = next(iter(lab.sources().values()))
    result = lab.analysis(source, PASSAGE, 5)
    model = memory.model_from_weights(source.config, len(source.vocab), source.weights)
    expected = memory.analyse(model, source.vocab, PASSAGE, 5)
    assert result.text_seen == expected.text_seen and result.target == 5
    np.testing.assert_allclose(result.activations, expected.activations, rtol=1e-6)
    np.testing.assert_allclose(result.connectivity, expected.connectivity, rtol=1e-6)
    assert result.activations.shape == (len(PASSAGE), TINY.hidden_size)
    assert lab.analysis(source, PASSAGE, 5) is result  # the live redraw reads no model again
    assert lab.analysis(source, PASSAGE, 6) is not result
    with pytest.raises(ValueError, match="no letters"):
        lab.analysis(source, "1234 !!", None)


def test_samples_are_seeded_and_cached(small_corpus: Corpus) -> None:
    lab = Lab(corpus=small_corpus, runner=SyncRunner())
    train(lab)
    source = next(iter(lab.sources().values()))
    first = lab.sample(source, 1.0, seed=0)
    model = memory.model_from_weights(source.config, len(source.vocab), source.weights)
    generator = torch.Generator().manual_seed(0)
    assert first == generate(model, source.vocab, small_corpus.prefix, 100, 1.0, generator)
    assert lab.sample(source, 1.0, seed=0) is first
    assert lab.sample(source, 1.0, seed=1) != first  # "Sample again" draws anew


def test_random_passage_comes_from_the_validation_text(small_corpus: Corpus) -> None:
    lab = Lab(corpus=small_corpus, runner=SyncRunner())
    _, val = split_train_val(small_corpus.tokens, TINY.max_tokens, TINY.val_tokens)
    lab.start(TINY, None)
    text = lab.random_passage(random.Random(3), length=40)
    assert len(text) == 40 and text in small_corpus.vocab.decode(val)
    lab.close()


def test_the_reader_computes_once_for_many_threads(small_corpus: Corpus) -> None:
    """Watchers of a shared lab read in their own threads: one computation, one result."""
    lab = Lab(corpus=small_corpus, runner=SyncRunner())
    train(lab)
    source = next(iter(lab.sources().values()))
    reader, calls = Reader(size=2), []
    real = memory.analyse

    def counting(*args: object, **kwargs: object) -> memory.MemoryAnalysis:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    results: list[memory.MemoryAnalysis] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memory, "analyse", counting)
        threads = [
            threading.Thread(target=lambda: results.append(reader.analysis(source, PASSAGE, 3)))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(calls) == 1 and all(r is results[0] for r in results)
        for target in (4, 5, 3):  # size 2: the oldest is read again
            reader.analysis(source, PASSAGE, target)
    assert len(calls) == 4


# -- connectivity's preselection (issue 18) ----------------------------------------------
def _source(label: str, model: str, job_run: int | None, saved: bool = True) -> Source:
    config = TrainConfig(model=model)
    run_id = label if saved else None
    return Source(label, label, config, None, {}, run_id=run_id, job_run=job_run)  # type: ignore[arg-type]


def test_compare_defaults_are_the_two_newest_runs_of_different_models() -> None:
    live = _source("this run", "gru", 4, saved=False)
    own_copy = _source("#4 GRU", "gru", 4)
    gru3, rnn2 = _source("#3 GRU", "gru", 3), _source("#2 RNN", "rnn", 2)
    rnn1 = _source("#1 RNN", "rnn", 1)
    found = {s.label: s for s in (live, own_copy, gru3, rnn2, rnn1)}
    assert compare_defaults(found) == ["this run", "#2 RNN"]  # never "#4 GRU", its own copy
    del found["this run"]
    assert compare_defaults(found) == ["#4 GRU", "#2 RNN"]
    one_kind = {s.label: s for s in (live, own_copy, gru3)}
    assert compare_defaults(one_kind) == ["this run", "#3 GRU"]  # one kind: two distinct runs
    assert compare_defaults({s.label: s for s in (live, own_copy)}) == ["this run"]


def test_compare_defaults_on_a_real_bench(small_corpus: Corpus) -> None:
    """A GRU run, then an RNN run that ended and was saved: the live RNN weights and its own
    saved copy are one run; the GRU is the other."""
    lab = Lab(corpus=small_corpus, runner=SyncRunner(), keep_short=True)
    train(lab)
    train(lab, TINY.replace(model="rnn"))
    found = lab.sources()
    assert len(found) == 3  # this run (the RNN's final weights), #2 RNN, #1 GRU
    chosen = [found[name] for name in compare_defaults(found)]
    assert [s.config.model for s in chosen] == ["rnn", "gru"]
    assert chosen[0].job_run != chosen[1].job_run
