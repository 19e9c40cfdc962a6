"""AttnScope's Streamlit entry point: language, page navigation, the shared sidebar form, then
the page.

Run with ``streamlit run app.py`` (or ``make run``). Pages live in ``pages/``; the logic they show
lives in ``core/`` and ``viz/``.
"""

from pathlib import Path

import streamlit as st

from pages import common

# A local favicon: a Material or emoji icon would be fetched from Google's servers.
st.set_page_config(
    page_title="AttnScope",
    page_icon=str(Path(__file__).parent / "assets" / "favicon.png"),
    layout="wide",
)

navigation = st.navigation(
    [
        st.Page(
            "pages/heatmaps.py",
            title=common.tr("nav.heatmaps"),
            icon=":material/grid_on:",
            url_path="heatmaps",
            default=True,
        ),
        st.Page(
            "pages/views.py",
            title=common.tr("nav.views"),
            icon=":material/hub:",
            url_path="views",
        ),
        st.Page(
            "pages/statistics.py",
            title=common.tr("nav.statistics"),
            icon=":material/bar_chart:",
            url_path="statistics",
        ),
    ]
)
request = common.sidebar()
if request is not None:
    common.run(request)
navigation.run()
