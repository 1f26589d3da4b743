"""The run stored in ``tests/data/runs_glf1.sqlite3``: a database written by the GLF1 frame
codec that Arrow IPC replaced (``dashboard.runs.legacy``). The file was written once with the
old encoder; these constants are what it must still read back as."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.runs.records import StoredRun

LEGACY_TOKEN = "legacy-token-0123456789abcdef"
LEGACY_STEPS = pd.DataFrame(
    {
        "step": np.array([1, 2, 3], dtype=np.int64),
        "epoch": np.array([1, 1, 1], dtype=np.int32),
        "perplexity": [1e300, np.nan, np.inf],
        "grad_norm": [-0.0, 5e-324, -np.inf],
        "Z:p5": np.array([0.25, 0.5, 0.75], dtype=np.float32),
        "clipped": [True, False, True],
    }
)
LEGACY_EPOCHS = pd.DataFrame(
    {
        "epoch": np.array([1], dtype=np.int64),
        "val_perplexity": [np.nan],
        "greedy_text": pd.Series(["time traveller é🙂"], dtype="str"),
        "sampled_text": pd.Series([None], dtype="str"),
    }
)
LEGACY_RUN = StoredRun(
    run_id="legacyrun0001",
    name="GRU run 1 (GLF1)",
    created=1_700_000_000.0,
    pinned=True,
    start_config={"model": "gru", "hidden_size": 16, "lr": 1.0},
    end_config={"model": "gru", "hidden_size": 16, "lr": 0.5},
    corpus_name="filler.txt",
    outcome={"status": "stopped", "step": 3},
    steps=LEGACY_STEPS,
    epochs=LEGACY_EPOCHS,
)
