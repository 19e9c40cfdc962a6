"""AttnScope's Streamlit entry point: language, page navigation, the shared sidebar form, then
the page.

Run with ``streamlit run app.py`` (or ``make run``). Page scripts live in ``pages/``, the
Streamlit glue they share in ``ui/``; the logic they show lives in ``core/`` and ``viz/``.

``streamlit run`` first imports this file to find the web server: ``app`` (a ``st.App`` with
:class:`ui.routes.UnknownPageRedirect`, which sends an address that is no page to the start
page instead of a blank one). Each session then runs the file as a script, which draws the app.
"""

from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ui.analyze import resume
from ui.links import sync_link
from ui.sidebar import SIDEBAR_WIDTH, input_notice, sidebar
from ui.text import tr


def page(path: str, title_key: str, icon: str, url_path: str, **options) -> st.Page:
    return st.Page(path, title=tr(title_key), icon=icon, url_path=url_path, **options)


def main() -> None:
    # A local favicon: a Material or emoji icon would be fetched from Google's servers.
    st.set_page_config(
        page_title="AttnScope",
        page_icon=str(Path(__file__).parent / "assets" / "favicon.png"),
        layout="wide",
        initial_sidebar_state=SIDEBAR_WIDTH,
    )
    navigation = st.navigation(
        {
            tr("nav.section_attention"): [
                page(
                    "pages/heatmaps.py",
                    "nav.heatmaps",
                    ":material/grid_on:",
                    "heatmaps",
                    default=True,
                ),
                page("pages/views.py", "nav.views", ":material/hub:", "views"),
                page("pages/statistics.py", "nav.statistics", ":material/bar_chart:", "statistics"),
                page(
                    "pages/long_context.py",
                    "nav.long_context",
                    ":material/straighten:",
                    "long_context",
                ),
            ],
            tr("nav.section_analysis"): [
                page("pages/heads.py", "nav.heads", ":material/category:", "heads"),
                page("pages/ablation.py", "nav.ablation", ":material/content_cut:", "ablation"),
                page(
                    "pages/predictions.py", "nav.predictions", ":material/lightbulb:", "predictions"
                ),
                page("pages/compare.py", "nav.compare", ":material/compare_arrows:", "compare"),
                page(
                    "pages/attribution.py", "nav.attribution", ":material/insights:", "attribution"
                ),
            ],
            tr("nav.section_generation"): [
                page("pages/generate.py", "nav.generate", ":material/edit_note:", "generate"),
                page("pages/lab.py", "nav.lab", ":material/science:", "lab"),
            ],
            tr("nav.section_beyond"): [
                page(
                    "pages/translation.py", "nav.translation", ":material/translate:", "translation"
                ),
                page("pages/vision.py", "nav.vision", ":material/image:", "vision"),
            ],
            tr("nav.section_corpus"): [
                page("pages/corpus.py", "nav.corpus", ":material/library_books:", "corpus"),
            ],
        },
        expanded=True,  # every page's link shows: the last ones were folded under "View more"
    )
    sidebar()
    resume()  # what the sidebar asked for, or a run a click interrupted: never dropped
    input_notice()
    sync_link()
    navigation.run()


if get_script_run_ctx(suppress_warning=True) is None:  # imported by the server, not run
    from starlette.middleware import Middleware
    from streamlit.runtime.pages_manager import PagesManager

    # pages/ holds the scripts st.navigation runs, not Streamlit's older automatic pages. Streamlit
    # decides which once per process, at its first session: had that session opened a page's
    # address (/heatmaps, a shared link), it would run pages/heatmaps.py alone, without this file
    # (no sidebar, no navigation), for every session until someone opened the start page.
    PagesManager.uses_pages_directory = False

    from ui.routes import UnknownPageRedirect

    app = st.App(__file__, middleware=[Middleware(UnknownPageRedirect)])
else:
    main()
