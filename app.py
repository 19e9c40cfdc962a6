"""AttnScope's Streamlit entry point: page navigation, the shared sidebar form, then the page.

Run with ``streamlit run app.py`` (or ``make run``). Pages live in ``pages/``; the logic they show
lives in ``core/`` and ``viz/``.
"""

import streamlit as st

from pages import common

st.set_page_config(page_title="AttnScope", page_icon="🔭", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/heatmaps.py", title="Heatmaps", icon="🟦", default=True),
        st.Page("pages/bertviz.py", title="BertViz", icon="🕸️"),
        st.Page("pages/statistics.py", title="Statistics", icon="📊"),
    ]
)
request = common.sidebar()
if request is not None:
    common.run(request)
navigation.run()
