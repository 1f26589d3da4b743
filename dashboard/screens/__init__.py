"""The pages: lab, map and watch, top to bottom, and the resources they share.

Not named pages/: Streamlit runs a pages/ folder beside the entry script as an old-style
multipage app (every module there a page), whatever st.navigation says.
"""
