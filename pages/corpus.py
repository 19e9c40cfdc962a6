"""Corpus page: run the model over many texts (the bundled sample, an upload or, outside demo
mode, a file or dataset on this machine) with a progress bar, Stop and Resume, or open a run
folder; then every head's statistics averaged over the texts, and the views of the run: head
distributions, where a head fires, the head atlas, detector scores, a head's query-key map and
the tables' downloads."""

import streamlit as st

from ui.corpus import choose_corpus, open_controls, run_controls, show_run
from ui.corpus_detectors import corpus_detectors_view, corpus_qk_view
from ui.corpus_fires import atlas_opened, exports_view, fires_view, follow_open
from ui.corpus_views import atlas_view, distributions_view, shown_run
from ui.services import app_settings
from ui.sidebar import selected_model_name
from ui.text import md, tr

follow_open()  # a "where it fires" hit was opened: its text is being analysed for Heatmaps
settings = app_settings()
st.header(tr("corpus.header"))
st.caption(tr("corpus.intro"))
if settings.demo:
    st.info(tr("corpus.demo_limits", texts=settings.max_corpus_texts, tokens=settings.max_tokens))

tabs = st.tabs(
    [
        tr("corpus.view_tab_run"),
        tr("corpus.view_tab_distributions"),
        tr("corpus.view_tab_fires"),
        tr("corpus.view_tab_atlas"),
        tr("corpus.view_tab_detectors"),
        tr("corpus.view_tab_qk"),
        tr("corpus.view_tab_export"),
    ]
)
with tabs[0]:
    start, reopen = st.tabs([tr("corpus.mode_new"), tr("corpus.mode_open")])
    with start:
        model = selected_model_name()
        st.caption(tr("corpus.model", model=md(model)))
        corpus = choose_corpus(settings)
        run_controls(corpus, model, settings)
    with reopen:
        open_controls(settings)
    show_run(settings)
run = shown_run()
views = {
    1: distributions_view,
    2: fires_view,
    3: lambda r: atlas_view(r, atlas_opened),
    4: corpus_detectors_view,
    5: corpus_qk_view,
    6: exports_view,
}
for index, view in views.items():
    with tabs[index]:
        if run is None:
            st.info(tr("corpus.view_no_run"))
        else:
            view(run)
