"""Lab page: train a SentencePiece tokenizer and a small GPT of your own shape on the CPU, watch
its attention heads form checkpoint by checkpoint (the slider drives every page), bring your
own PyTorch model, and profile the current model.

The tabs keep their choice in the session (``lab_tab``) and only the open one runs: a Train click
that reruns the page stays on Train (an element appearing above the tabs would otherwise reset
them to the first), and a hidden Watch or Profile tab costs nothing. Switching tabs reruns the
page, which stops a training run the way Stop does (its checkpoint is kept)."""

import streamlit as st

from core.policy.errors import AttnScopeError
from ui.lab import TAB_KEY, train_tab, vocabulary_tab
from ui.lab_watch import watch_tab
from ui.services import app_settings, model_of
from ui.state import RESULT_KEY
from ui.text import lang, show_error, tr

settings = app_settings()
st.header(tr("lab.header"))
st.caption(tr("lab.intro"))
if settings.demo:
    st.info(tr("lab.demo_limits", limits=", ".join(f"{k} ≤ {v}" for k, v in settings.lab_limits)))
TAB_LABELS = {
    "tokenizer": "lab.tab_tokenizer",
    "train": "lab.tab_train",
    "watch": "lab.tab_watch",
    "byo": "lab.tab_byo",
    "profile": "lab.tab_profile",
}
names = list(TAB_LABELS)
labels = [tr(key) for key in TAB_LABELS.values()]
if st.session_state.get(TAB_KEY) not in labels:  # first visit, or another language's label
    st.session_state.pop(TAB_KEY, None)
tabs = dict(zip(names, st.tabs(labels, key=TAB_KEY, on_change="rerun"), strict=True))
if tabs["tokenizer"].open:
    with tabs["tokenizer"]:
        vocabulary_tab(settings)
if tabs["train"].open:
    with tabs["train"]:
        train_tab(settings)
if tabs["watch"].open:
    with tabs["watch"]:
        watch_tab()
if tabs["byo"].open:
    with tabs["byo"]:
        from ui.byo import render_byo

        render_byo(lang())
if tabs["profile"].open:
    with tabs["profile"]:
        result = st.session_state.get(RESULT_KEY)
        if result is None:
            st.info(tr("lab.profile_no_result"))
        else:
            from ui.profile import render_profile

            try:
                render_profile(model_of(result), result, lang())
            except AttnScopeError as error:
                show_error(error)
