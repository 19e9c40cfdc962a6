"""Translation page (encoder-decoder models): a source and a target, given or generated; the
encoder, decoder and cross-attention, the alignment view and each generated step."""

import streamlit as st

from core import BUILTIN_MODELS
from core.policy.errors import AttnScopeError
from ui.sidebar import selected_model_name
from ui.text import show_error, tr
from ui.translation import (
    RESULT_KEY,
    alignment_section,
    attention_section,
    open_in_pages,
    run_translation,
    steps_section,
)
from ui.widgets import sampling_controls

SOURCE_WIDGET = "translation_source"
TARGET_WIDGET = "translation_target"
MODE_WIDGET = "translation_mode"
RUN_BUTTON = "translation_run"
DEFAULT_SOURCE = "The cat sat on the mat."

st.header(tr("translation.header"))
st.caption(tr("translation.caption"))
model_name = selected_model_name()
if model_name in BUILTIN_MODELS:  # the bundled models are text encoders and decoders
    st.info(tr("translation.needs_model"))
    st.stop()

st.session_state.setdefault(SOURCE_WIDGET, DEFAULT_SOURCE)
st.text_area(tr("translation.source"), key=SOURCE_WIDGET, height=80)
modes = {"given": tr("translation.mode_given"), "generate": tr("translation.mode_generate")}
mode = st.radio(
    tr("translation.mode"), list(modes), format_func=modes.get, key=MODE_WIDGET, horizontal=True
)
config = None
if mode == "given":
    st.text_area(tr("translation.target"), key=TARGET_WIDGET, height=80)
else:
    make_config = sampling_controls("translation", max_new=32, greedy=True)

if st.button(tr("translation.run"), key=RUN_BUTTON, type="primary"):
    try:
        if mode == "generate":
            config = make_config()
        target = st.session_state.get(TARGET_WIDGET, "") if mode == "given" else None
        run_translation(model_name, st.session_state[SOURCE_WIDGET], target, config)
    except AttnScopeError as error:  # an option out of range
        show_error(error)

kept = st.session_state.get(RESULT_KEY)
if kept is None or kept[0] != model_name:
    st.caption(tr("translation.hint"))
    st.stop()
result = kept[1]
st.subheader(tr("translation.output"))
st.text(result.target_text)
st.subheader(tr("translation.alignment"))
st.caption(tr("translation.alignment_caption"))
alignment_section(model_name, result)
steps_section(result)
st.subheader(tr("translation.attention"))
attention_section(model_name, result)
open_in_pages(model_name, result)
