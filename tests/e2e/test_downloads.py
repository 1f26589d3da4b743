"""A saved run's downloads: the metrics CSV and the config JSON, each made once per saved run
(``SavedRun.metrics_csv``), downloaded by a click that does not rerun the page."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

QUICK_RUN = "hidden=16&steps=10&batch=8&epochs=2"  # 250 steps: it ends in seconds


def _download(lab, label: str) -> tuple[str, str]:
    button = lab.page.get_by_role("button", name=label, exact=True)
    expect(button).to_be_visible(timeout=60_000)
    with lab.page.expect_download(timeout=30_000) as info:
        button.click()
    download = info.value
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8")


def test_a_finished_runs_csv_and_config_download_on_click(lab) -> None:
    lab.open(QUICK_RUN)
    lab.press("Start")
    lab.wait_for_step(1)
    expect(lab.button("Stop")).to_be_disabled(timeout=120_000)  # ended: saved by its end
    last_step = lab.step()

    name, text = _download(lab, "Metrics CSV")
    assert name.endswith("-metrics.csv")
    rows = list(csv.DictReader(text.splitlines()))
    steps = [int(row["step"]) for row in rows]
    assert steps == sorted(steps) and steps[-1] == last_step, (steps[:3], steps[-3:], last_step)
    assert {"perplexity", "grad_norm"} <= set(rows[0]), sorted(rows[0])
    assert all(float(row["perplexity"]) > 0 for row in rows)
    epochs = [row for row in rows if row.get("train_perplexity")]  # each epoch's last step
    assert len(epochs) == 2, [row["step"] for row in epochs]

    name, text = _download(lab, "Config JSON")
    assert name.endswith("-config.json")
    body = json.loads(text)
    assert body["start_config"]["hidden_size"] == 16 and body["start_config"]["num_epochs"] == 2
    assert body["outcome"]["status"] == "done" and body["outcome"]["step"] == last_step
    assert lab.exceptions() == 0
