"""GRU Lab: d2l's GRU chapter, live. ``streamlit run dashboard/app.py`` (optionally
``-- --corpus PATH``).

Three pages: the lab (the first: one run, live), the trainability map (many runs at once)
and the investigations (the study note's questions, step by step).
"""

from __future__ import annotations

import sys

import streamlit as st

from dashboard.screens.investigate import investigate_page
from dashboard.screens.lab import lab_page
from dashboard.screens.map import map_page
from dashboard.sidebar.language import language_switch, page_language
from gru_core.i18n import _

# One process serves every page and trains every job. A training thread holds the GIL for
# most of a small step; with CPython's default 5 ms switch interval a page's rerun, which
# gives the GIL up and asks for it again at each wait, queues behind the jobs for up to 5 ms
# every time. A shorter interval lets it in sooner (benchmarks/README.md: the classroom
# load test at 5 ms and at 1 ms).
SWITCH_INTERVAL_S = 0.001
sys.setswitchinterval(SWITCH_INTERVAL_S)
page_language()  # first: everything below speaks the page's language (fragments set it again)
# Titles in the reader's language; a page's address comes from its function's name, never its
# title, so a language switch keeps every page where it is.
st.set_page_config(page_title=_("GRU Lab"), page_icon="🔁", layout="wide")
LAB = st.Page(lab_page, title=_("Lab"), icon=":material/monitoring:", default=True)  # at /
MAP = st.Page(map_page, title=_("Trainability map"), icon=":material/grid_on:", url_path="map")
GUIDE = st.Page(
    investigate_page, title=_("Investigations"), icon=":material/school:", url_path="investigate"
)
st.session_state["_pages"] = {"lab": LAB, "map": MAP, "investigate": GUIDE}  # st.switch_page
language_switch(st.sidebar)
st.navigation([LAB, MAP, GUIDE]).run()
