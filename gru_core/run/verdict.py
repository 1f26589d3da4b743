"""How a run went, in one honest word: learned, did not learn, blew up, diverged, stopped, out
of memory, error.

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
4. **learned** otherwise.

"Final perplexity" is the last epoch's training perplexity (d2l's definition) when an epoch
finished, else the mean batch perplexity of the last steps. Everything is read from the
telemetry frames, so the status line, the advice, the charts and the saved runs agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

BLOW_UP_PERPLEXITY = 1e6
BLOW_UP_NORM = 1e6
BLOW_UP_STEPS = 5
LAST_STEPS = 10  # batch perplexities averaged when no epoch has finished

VERDICTS = (
    "learned",
    "did not learn",
    "blew up",
    "diverged",
    "stopped",
    "out of memory",
    "error",
)
_ENDINGS = {"diverged": "diverged", "out_of_memory": "out of memory", "error": "error"}
FAILURES = frozenset({"did not learn", "blew up", "diverged", "out of memory", "error"})


@dataclass(frozen=True)
class Verdict:
    kind: str  # one of VERDICTS
    headline: str  # one sentence with the numbers behind it
    start_perplexity: float | None  # the first step's batch perplexity
    final_perplexity: float | None  # see the module docstring

    @property
    def failed(self) -> bool:
        return self.kind in FAILURES


def final_perplexity(steps: pd.DataFrame, epochs: pd.DataFrame) -> float | None:
    """The last epoch's training perplexity, else the mean of the last batch perplexities."""
    if len(epochs) and "train_perplexity" in epochs:
        value = float(epochs["train_perplexity"].iloc[-1])
        if not math.isnan(value):
            return value
    if len(steps) and "perplexity" in steps:
        tail = steps["perplexity"].tail(LAST_STEPS).to_numpy(dtype=np.float64)
        tail = tail[~np.isnan(tail)]
        if tail.size:
            return float(np.exp(np.mean(np.log(np.maximum(tail, 1e-300)))))
    return None


def judge(status: str, steps: pd.DataFrame, epochs: pd.DataFrame, vocab_size: int) -> Verdict:
    """The verdict on a run that ended with job state ``status`` (see the module docstring)."""
    start = float(steps["perplexity"].iloc[0]) if len(steps) and "perplexity" in steps else None
    final = final_perplexity(steps, epochs)
    trip = _fmt_trip(start, final, vocab_size)
    if status in _ENDINGS:
        return Verdict(_ENDINGS[status], f"It {_ENDINGS[status]}.", start, final)
    if status == "stopped":
        return Verdict("stopped", f"Stopped: {trip}." if trip else "Stopped.", start, final)
    norms = steps["grad_norm"].tail(BLOW_UP_STEPS).to_numpy(dtype=np.float64) if len(steps) else []
    exploding = len(norms) == BLOW_UP_STEPS and bool(np.all(norms > BLOW_UP_NORM))
    if (final is not None and final > BLOW_UP_PERPLEXITY) or exploding:
        why = (
            f"the gradient norm stayed over {BLOW_UP_NORM:.0e} for the last {BLOW_UP_STEPS} steps"
            if exploding
            else f"the final perplexity is over {BLOW_UP_PERPLEXITY:.0e}"
        )
        return Verdict("blew up", f"It blew up: {why} ({trip}).", start, final)
    if final is None or final >= vocab_size or (start is not None and final >= start):
        return Verdict(
            "did not learn",
            f"It did not learn: {trip}." if trip else "It did not learn.",
            start,
            final,
        )
    return Verdict("learned", f"It learned: {trip}.", start, final)


def _fmt_trip(start: float | None, final: float | None, vocab_size: int) -> str:
    if start is None or final is None:
        return ""
    return f"perplexity {_num(start)} → {_num(final)}; guessing uniformly gives {vocab_size}"


def _num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.2f}" if x < 1e4 else f"{x:.3g}"
