"""How a run went, in one honest word: learned, memorised, did not learn, blew up, diverged,
stopped, out of memory, error.

A run that finishes its epochs is not automatically a success. The rule, applied in order:

1. The job's own ending decides first: 'diverged' (a loss or gradient norm became NaN or
   infinite; nothing from that step was applied), 'out_of_memory', 'error', 'stopped'.
2. **blew up**: the run ended finite but exploded. Its final training perplexity is over
   ``BLOW_UP_PERPLEXITY`` (1e6: the model is sure of the wrong characters), or the gradient
   norm before clipping stayed over ``BLOW_UP_NORM`` (1e6) for the last ``BLOW_UP_STEPS`` (5)
   steps in a row.
3. **did not learn**: the final perplexity is not below the uniform baseline |V| (guessing
   every character equally likely) or not below where it started (the first step's
   perplexity).
4. **memorised**: it learned its training text but not the language. Its final validation
   perplexity (held-out text) is at or above the uniform guess |V|, or over
   ``MEMORISED_RATIO`` (2) times its own best validation perplexity. d2l's default run
   (hidden 256, 500 epochs, lr 1, 10,000 training characters) ends with training perplexity
   about 1.05 and validation about 77 > |V| = 28 (its best, about 7, came near step 2,000):
   memorised. A run without a validation slice cannot be judged so.
5. **learned** otherwise.

"Final perplexity" is the last epoch's training perplexity (d2l's definition) when an epoch
finished, else the geometric mean of the last ``LAST_STEPS`` batch perplexities. The rule reads
an ``Evidence``: a few arrays in step or epoch order, built from records
(``Evidence.from_records``), from any columns by name (``Evidence.from_columns``: the
telemetry's, the saved runs') or from the arrays a sweep chunk keeps, so the status line,
the advice, the charts, the saved runs and the map agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gru_core.i18n import DEFAULT, N_, _, language_scope
from gru_core.run.records import EpochRecord, StepRecord
from gru_core.step import stats

BLOW_UP_PERPLEXITY = 1e6
BLOW_UP_NORM = 1e6
BLOW_UP_STEPS = 5
LAST_STEPS = 10  # batch perplexities averaged when no epoch has finished
MEMORISED_RATIO = 2.0  # final validation perplexity over its best that counts as memorised

VERDICTS = (  # identifiers; N_ marks them so that kind_words can say them on screen
    N_("learned"),
    N_("memorised"),
    N_("did not learn"),
    N_("blew up"),
    N_("diverged"),
    N_("stopped"),
    N_("out of memory"),
    N_("error"),
)
_ENDINGS = {"diverged": "diverged", "out_of_memory": "out of memory", "error": "error"}
FAILURES = frozenset(
    {"memorised", "did not learn", "blew up", "diverged", "out of memory", "error"}
)


def _array(values: Any) -> np.ndarray:
    """A float64 array of ``values`` (None -> NaN)."""
    if values is None:
        return np.empty(0)
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


@dataclass(frozen=True)
class Evidence:
    """What the rule reads. Step arrays are in step order: the first element is step 1's
    (a thinned store keeps it), the last ones the run's last steps; NaN is 'not recorded'."""

    step_perplexity: np.ndarray  # batch perplexity exp(loss) per recorded step
    grad_norm: np.ndarray  # pre-clip global gradient norm, aligned with step_perplexity
    train_perplexity: np.ndarray  # per finished epoch (d2l's definition)
    val_perplexity: np.ndarray  # per finished epoch; NaN where not evaluated

    @classmethod
    def of(
        cls,
        step_perplexity: Any = None,
        grad_norm: Any = None,
        train_perplexity: Any = None,
        val_perplexity: Any = None,
    ) -> Evidence:
        """From any sequences of numbers (None entries read as NaN); missing ones empty."""
        ppl = _array(step_perplexity)
        norms = _array(grad_norm) if grad_norm is not None else np.full(len(ppl), np.nan)
        return cls(ppl, norms, _array(train_perplexity), _array(val_perplexity))

    @classmethod
    def from_records(
        cls, steps: Sequence[StepRecord], epochs: Sequence[EpochRecord] = ()
    ) -> Evidence:
        return cls.of(
            [s.perplexity for s in steps],
            [s.grad_norm for s in steps],
            [e.train_perplexity for e in epochs],
            [e.val_perplexity for e in epochs],
        )

    @classmethod
    def from_columns(cls, steps: Mapping[str, Any], epochs: Mapping[str, Any]) -> Evidence:
        """From columns by name ('perplexity', 'grad_norm'; 'train_perplexity',
        'val_perplexity'): a DataFrame or a dict of arrays; a missing column is empty."""

        def col(table: Mapping[str, Any], name: str) -> Any:
            return np.asarray(table[name], dtype=np.float64) if name in table else None

        return cls.of(
            col(steps, stats.PERPLEXITY),
            col(steps, stats.GRAD_NORM),
            col(epochs, "train_perplexity"),
            col(epochs, "val_perplexity"),
        )


@dataclass(frozen=True)
class Verdict:
    kind: str  # one of VERDICTS
    judged: str  # the headline as worded when judged (kept by stored runs; not shown)
    start_perplexity: float | None  # the first step's batch perplexity
    final_perplexity: float | None  # see the module docstring
    final_val_perplexity: float | None = None  # the last evaluated validation perplexity
    best_val_perplexity: float | None = None  # the lowest one
    vocab_size: int | None = None  # |V|: uniform guessing's perplexity

    @property
    def failed(self) -> bool:
        return self.kind in FAILURES

    @property
    def headline(self) -> str:
        """One sentence with the numbers behind the verdict, in the language in force."""
        return _headline(self)


def kind_words(kind: str) -> str:
    """A verdict's kind (or a job's state, or how a run ended: 'out_of_memory') as the page
    says it: 'did not learn', '没有学会'."""
    return _(_ENDINGS.get(kind, kind))


def _headline(v: Verdict) -> str:
    """The verdict's sentence from its facts (``judge``'s rule, in words)."""
    trip = _trip(v.start_perplexity, v.final_perplexity, v.vocab_size)
    if v.kind == "diverged":
        return _("It diverged.")
    if v.kind == "out of memory":
        return _("It ran out of memory.")
    if v.kind == "error":
        return _("It stopped with an error.")
    if v.kind == "stopped":
        return _("Stopped: {trip}.").format(trip=trip) if trip else _("Stopped.")
    if v.kind == "blew up":
        # Rule 2 in words: the perplexity when it ended over its bound, else the norm.
        final = v.final_perplexity
        why = (
            _("the final perplexity is over {bound}").format(bound=f"{BLOW_UP_PERPLEXITY:.0e}")
            if final is not None and final > BLOW_UP_PERPLEXITY
            else _("the gradient norm stayed over {bound} for the last {n} steps").format(
                bound=f"{BLOW_UP_NORM:.0e}", n=BLOW_UP_STEPS
            )
        )
        if trip:
            return _("It blew up: {why} ({trip}).").format(why=why, trip=trip)
        return _("It blew up: {why}.").format(why=why)
    if v.kind == "did not learn":
        return _("It did not learn: {trip}.").format(trip=trip) if trip else _("It did not learn.")
    if v.kind == "memorised":
        final_val, best_val = v.final_val_perplexity, v.best_val_perplexity
        if final_val is None or best_val is None:
            return _("It memorised its training text: {trip}.").format(trip=trip)
        return _(
            "It memorised its training text: {trip}; but on held-out text its perplexity "
            "ended at {final} (its best was {best})."
        ).format(trip=trip, final=_num(final_val), best=_num(best_val))
    if v.kind == "learned":
        return _("It learned: {trip}.").format(trip=trip) if trip else _("It learned.")
    return v.judged


def final_perplexity(evidence: Evidence) -> float | None:
    """The last epoch's training perplexity, else the mean of the last batch perplexities."""
    if evidence.train_perplexity.size:
        value = float(evidence.train_perplexity[-1])
        if not math.isnan(value):
            return value
    tail = evidence.step_perplexity[-LAST_STEPS:]
    tail = tail[~np.isnan(tail)]
    if tail.size:
        return float(np.exp(np.mean(np.log(np.maximum(tail, 1e-300)))))
    return None


def memorised(final_val: float | None, best_val: float | None, vocab_size: int) -> bool:
    """Rule 4: validation ends at or above |V|, or over MEMORISED_RATIO times its best."""
    if final_val is None or best_val is None:
        return False
    return final_val >= vocab_size or final_val > MEMORISED_RATIO * best_val


def judge(status: str, evidence: Evidence, vocab_size: int) -> Verdict:
    """The verdict on a run that ended with job state ``status`` (see the module docstring)."""
    ppl = evidence.step_perplexity
    start = float(ppl[0]) if ppl.size and not math.isnan(ppl[0]) else None
    final = final_perplexity(evidence)
    vals = evidence.val_perplexity[~np.isnan(evidence.val_perplexity)]
    final_val = float(vals[-1]) if vals.size else None
    best_val = float(vals.min()) if vals.size else None

    def verdict(kind: str) -> Verdict:
        facts = Verdict(kind, "", start, final, final_val, best_val, vocab_size)
        with language_scope(DEFAULT):
            return replace(facts, judged=facts.headline)

    if status in _ENDINGS:
        return verdict(_ENDINGS[status])
    if status == "stopped":
        return verdict("stopped")
    norms = evidence.grad_norm[-BLOW_UP_STEPS:]
    exploding = len(norms) == BLOW_UP_STEPS and bool(np.all(norms > BLOW_UP_NORM))
    if (final is not None and final > BLOW_UP_PERPLEXITY) or exploding:
        return verdict("blew up")
    if final is None or final >= vocab_size or (start is not None and final >= start):
        return verdict("did not learn")
    if memorised(final_val, best_val, vocab_size):
        return verdict("memorised")
    return verdict("learned")


def _trip(start: float | None, final: float | None, vocab_size: int | None) -> str:
    if start is None or final is None or vocab_size is None:
        return ""
    return _("perplexity {start} → {final}; guessing uniformly gives {vocab}").format(
        start=_num(start), final=_num(final), vocab=vocab_size
    )


def _num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.2f}" if x < 1e4 else f"{x:.3g}"
