"""Corpus page: run the model over many texts (the bundled sample, an upload or, outside demo
mode, a file or dataset on this machine) with a progress bar, Stop and Resume, or open a run
folder; then every head's statistics averaged over the texts."""

import streamlit as st

from ui.corpus import choose_corpus, open_controls, run_controls, show_run
from ui.services import app_settings
from ui.sidebar import selected_model_name
from ui.text import md, tr

settings = app_settings()
st.header(tr("corpus.header"))
st.caption(tr("corpus.intro"))
if settings.demo:
    st.info(tr("corpus.demo_limits", texts=settings.max_corpus_texts, tokens=settings.max_tokens))

start, reopen = st.tabs([tr("corpus.mode_new"), tr("corpus.mode_open")])
with start:
    model = selected_model_name()
    st.caption(tr("corpus.model", model=md(model)))
    corpus = choose_corpus(settings)
    run_controls(corpus, model, settings)
with reopen:
    open_controls(settings)
show_run(settings)
