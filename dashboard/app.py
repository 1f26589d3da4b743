"""GRU Lab: d2l's GRU chapter, live. ``streamlit run dashboard/app.py`` (optionally
``-- --corpus PATH``).

Two pages: the lab (the first: one run, live) and the trainability map (many runs at once).
"""

from __future__ import annotations

import streamlit as st

from dashboard.lab_page import lab_page
from dashboard.map_page import map_page

st.set_page_config(page_title="GRU Lab", page_icon="🔁", layout="wide")
LAB = st.Page(lab_page, title="Lab", icon=":material/monitoring:", default=True)  # at /
MAP = st.Page(map_page, title="Trainability map", icon=":material/grid_on:", url_path="map")
st.session_state["_pages"] = {"lab": LAB, "map": MAP}  # for st.switch_page from a page
st.navigation([LAB, MAP]).run()
