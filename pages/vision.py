"""Vision page (ViT, DeiT, DINOv2, CLIP's vision tower): upload an image, see the patch grid and
any token's attention laid over the picture, and per-head statistics over the patches."""

import streamlit as st

from core import BUILTIN_MODELS
from core.engine.vision import MAX_IMAGE_BYTES
from ui.sidebar import selected_model_name
from ui.text import tr
from ui.vision import EXAMPLE_IMAGE, RESULT_KEY, overlay_section, run_image, statistics_section

UPLOAD_WIDGET = "vision_upload"
RUN_BUTTON = "vision_run"
EXAMPLE_BUTTON = "vision_example"

st.header(tr("vision.header"))
st.caption(tr("vision.caption", limit=MAX_IMAGE_BYTES // 2**20))
model_name = selected_model_name()
if model_name in BUILTIN_MODELS:  # the bundled models read text
    st.info(tr("vision.needs_model"))
    st.stop()

# Any file type is accepted here so that a wrong one gets our message, not a silent refusal.
upload = st.file_uploader(tr("vision.upload"), key=UPLOAD_WIDGET)
left, right = st.columns(2)
if left.button(tr("vision.run"), key=RUN_BUTTON, type="primary", disabled=upload is None):
    run_image(model_name, upload.getvalue(), upload.name)
if right.button(tr("vision.example"), key=EXAMPLE_BUTTON):
    run_image(model_name, EXAMPLE_IMAGE.read_bytes(), EXAMPLE_IMAGE.name)

kept = st.session_state.get(RESULT_KEY)
if kept is None or kept[0] != model_name:
    st.caption(tr("vision.hint"))
    st.stop()
result = kept[3]
for key, values in kept[2]:
    st.caption(tr(key, **dict(values)))
st.subheader(tr("vision.overlay"))
overlay_section(result)
st.subheader(tr("vision.statistics"))
st.caption(tr("vision.statistics_caption"))
statistics_section(result)
