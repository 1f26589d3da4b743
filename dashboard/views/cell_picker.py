"""The map's cells from the keyboard: a map cell is a plotly heatmap cell, which takes no
focus, so the same action (open that cell's settings in the lab) is also three choices and
a button: the model, the x value and the y value. Script thread only.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from gru_core.config import MODEL_TITLES
from gru_core.i18n import _
from gru_core.sweep.spec import AXIS_TITLES, SweepSpec, axis_label

KEY = "map_pick"  # widget keys: map_pick_model, map_pick_x, map_pick_y, map_pick_open


def cell_picker(spec: SweepSpec) -> dict[str, Any] | None:
    """A cell chosen from the keyboard, as a click on it reads (``{"customdata": [x, y,
    model]}``), when its button is pressed; else None."""
    with st.container(horizontal=True, key=KEY):
        models = list(spec.models)
        model = (
            st.selectbox(
                _("Model"),
                models,
                format_func=lambda m: MODEL_TITLES.get(m, m),
                key=f"{KEY}_model",
            )
            if len(models) > 1
            else models[0]
        )
        x = st.selectbox(
            _(AXIS_TITLES[spec.x_axis]),
            list(spec.x_values),
            format_func=axis_label,
            key=f"{KEY}_x_{spec.x_axis}",
        )
        y = st.selectbox(
            _(AXIS_TITLES[spec.y_axis]),
            list(spec.y_values),
            format_func=axis_label,
            key=f"{KEY}_y_{spec.y_axis}",
        )
        pressed = st.button(
            _("Open this cell in the lab"),
            key=f"{KEY}_open",
            help=_("The same as a click on the cell: its settings, in the lab."),
        )
    return {"customdata": [x, y, model]} if pressed else None
