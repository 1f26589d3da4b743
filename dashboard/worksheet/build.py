"""A worksheet's runs and maps from what the lab saved: the existing chart builders draw the
figures (``charts.training``, ``charts.map``), and each chart gets the table of its key
numbers that the Markdown copy shows in its place.

Figures are sent in the narrowest exact dtype (``charts.thinning.wire_arrays``): plotly writes
numpy arrays as base64 typed arrays, so a 4,000-step run costs a few kilobytes per line.
Words are in the language in force (``gru_core.i18n``): build under the sheet's language.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dashboard.charts.map import Edges, maps_figure
from dashboard.charts.map_cells import category, cell_label, shown_value
from dashboard.charts.thinning import wire_arrays
from dashboard.charts.training import clipped_share, grad_norm_figure, perplexity_figure
from dashboard.runs.saved import SavedRun
from dashboard.worksheet.model import Chart, Setting, Table, WorksheetMap, WorksheetRun
from gru_core.config import MODEL_TITLES, TrainConfig
from gru_core.i18n import N_, _
from gru_core.step.stats import GRAD_NORM, STEP
from gru_core.sweep.results import CellResult, summarize
from gru_core.sweep.spec import AXIS_TITLES, SweepSpec

# The settings a worksheet lists for a run, by TrainConfig field, with their labels.
SETTINGS: tuple[tuple[str, str], ...] = (
    ("model", N_("model")),
    ("gru_variant", N_("convention")),
    ("hidden_size", N_("hidden units")),
    ("init_std", N_("init std")),
    ("clip_threshold", N_("clip threshold θ")),
    ("lr", N_("learning rate")),
    ("num_steps", N_("sequence length T")),
    ("batch_size", N_("batch size")),
    ("num_epochs", N_("epochs")),
    ("max_tokens", N_("training tokens")),
    ("seed", N_("seed")),
)
EPOCH_ROWS = 12  # most rows of a run's perplexity table (evenly spaced, the last included)


def fmt(value: float | None, spec: str = ".4g") -> str:
    """A number as a worksheet writes it ('–' for none, 'off' for clipping off is the
    caller's)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return format(value, spec)


def config_settings(config: TrainConfig, skip: Sequence[str] = ()) -> dict[str, Setting]:
    """A config's teaching settings by label: {'model': 'GRU', 'init std': 0.01, ...}."""
    out: dict[str, Setting] = {}
    for name, label in SETTINGS:
        if name in skip:
            continue
        value = getattr(config, name)
        if name == "model":
            value = MODEL_TITLES[value]
        elif name == "clip_threshold" and value is None:
            value = _("off")
        out[_(label)] = value
    return out


def _epoch_table(epochs: pd.DataFrame) -> Table:
    """The per-epoch perplexities, at most EPOCH_ROWS rows (the last always)."""
    rows: list[tuple[str, ...]] = []
    if len(epochs):
        picks = np.unique(np.linspace(0, len(epochs) - 1, EPOCH_ROWS).round().astype(int))
        for i in picks:
            row = epochs.iloc[int(i)]
            rows.append(
                (
                    str(int(row["epoch"])) if "epoch" in row else str(i + 1),
                    str(int(row[STEP])),
                    fmt(_number(row.get("train_perplexity"))),
                    fmt(_number(row.get("val_perplexity"))),
                )
            )
    header = (_("epoch"), _("step"), _("train perplexity"), _("validation perplexity"))
    return Table(_("Perplexity per epoch"), header, tuple(rows))


def _number(value: object) -> float | None:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


def _gradient_table(steps: pd.DataFrame) -> Table:
    norms = pd.to_numeric(steps.get(GRAD_NORM, pd.Series(dtype=float)), errors="coerce")
    finite = norms[np.isfinite(norms)]
    rows = (
        (_("largest gradient norm before clipping"), fmt(finite.max() if len(finite) else None)),
        (_("median gradient norm before clipping"), fmt(finite.median() if len(finite) else None)),
        (_("share of steps clipped"), f"{clipped_share(steps):.0%}"),
    )
    return Table(_("Gradient norm"), (_("quantity"), _("value")), rows)


def worksheet_run(run: SavedRun) -> WorksheetRun:
    """A saved run as a worksheet shows it: settings at start, verdict, numbers, charts."""
    steps, epochs = run.steps, run.epochs
    charts = (
        Chart(wire_arrays(perplexity_figure(steps, epochs)), (_epoch_table(epochs),)),
        Chart(wire_arrays(grad_norm_figure(steps)), (_gradient_table(steps),)),
    )
    taken = int(pd.to_numeric(steps[STEP]).max()) if len(steps) else 0
    return WorksheetRun(
        name=run.name,
        model=MODEL_TITLES[run.start_config.model],
        settings=config_settings(run.start_config),
        final_train_perplexity=run.verdict.final_perplexity,
        final_val_perplexity=run.verdict.final_val_perplexity,
        verdict=run.verdict.kind,
        headline=run.verdict.headline,
        steps=max(taken, 0),
        epochs=len(epochs),
        charts=charts,
    )


def _cells_table(results: Sequence[CellResult], spec: SweepSpec, model: str) -> Table:
    """One model's map as a table: a row per y value, a column per x value, each cell's word
    (its perplexity, or 'diverged @ step 12', 'memorised', ...)."""
    cells = {(c.x, c.y): c for c in summarize(r for r in results if r.model == model)}
    rows = []
    for y in spec.y_values:
        words = []
        for x in spec.x_values:
            cell = cells.get((x, y))
            words.append(cell_label(cell, category(cell)).replace("<br>", " ") if cell else "…")
        rows.append((shown_value(y), *words))
    corner = f"{_(AXIS_TITLES[spec.y_axis])} \\ {_(AXIS_TITLES[spec.x_axis])}"
    header = (corner, *(shown_value(x) for x in spec.x_values))
    caption = _("{model}: final perplexity per cell").format(model=MODEL_TITLES[model])
    return Table(caption, header, tuple(rows))


def worksheet_map(
    results: Sequence[CellResult], spec: SweepSpec, edges: Edges | None = None, title: str = ""
) -> WorksheetMap:
    """A trainability map as a worksheet shows it: its axes, base settings, figure, cells."""
    figure = wire_arrays(maps_figure(results, spec, edges=edges))
    tables = tuple(_cells_table(results, spec, m) for m in spec.models)
    x_name, y_name = _(AXIS_TITLES[spec.x_axis]), _(AXIS_TITLES[spec.y_axis])
    settings: dict[str, Setting] = {
        _("x axis: {axis}").format(axis=x_name): ", ".join(map(shown_value, spec.x_values)),
        _("y axis: {axis}").format(axis=y_name): ", ".join(map(shown_value, spec.y_values)),
        _("seeds per cell"): spec.seeds,
    }
    settings.update(config_settings(spec.base, skip=("model", spec.x_axis, spec.y_axis)))
    models = tuple(MODEL_TITLES[m] for m in spec.models)
    if not title:
        title = _("Map of {x} × {y}: {models}").format(x=x_name, y=y_name, models=", ".join(models))
    return WorksheetMap(title, models, settings, (Chart(figure, tables),))
