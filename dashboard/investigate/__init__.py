"""Guided investigations: definitions, completion checks and progress (no st.*)."""
