"""Predictions page (decoders): the top next tokens at every position, and the logit lens: what
each layer would predict if it were the last."""

import streamlit as st

from core.methods.predictions import logit_lens, next_token_predictions
from pages import common
from viz.heatmaps import logit_lens_heatmap
from viz.tables import logit_lens_frame, predictions_frame

TOP_K_WIDGET = "predict_top_k"

lang = common.lang()
tr = common.tr
st.header(tr("predict.header"))
result = common.require_result()
if result.kind != "decoder":
    st.info(tr("predict.decoders_only"))
    st.stop()
top_k = st.slider(tr("predict.top_k"), 1, 10, value=5, key=TOP_K_WIDGET)
key = (id(result), top_k)
if st.session_state.get(common.PREDICTIONS_KEY, (None,))[0] != key:
    try:
        with common.heavy_work(), st.spinner(tr("predict.computing")):
            model = common.model_of(result)
            preds = next_token_predictions(
                model, result.text, top_k=top_k, max_tokens=result.max_tokens
            )
            lens = logit_lens(model, result.text, max_tokens=result.max_tokens)
    except Exception as error:
        common.show_error(error)
        st.stop()
    st.session_state[common.PREDICTIONS_KEY] = (key, preds, lens)
_, preds, lens = st.session_state[common.PREDICTIONS_KEY]

st.subheader(tr("predict.next_tokens"))
st.caption(tr("predict.next_caption"))
table = predictions_frame(preds, lang=lang)
common.table_with_csv(table, tr("predict.download_next"), "predictions.csv")

st.subheader(tr("predict.lens"))
st.caption(tr("predict.lens_caption"))
st.plotly_chart(logit_lens_heatmap(lens, lang=lang), key="logit_lens")
common.csv_download(
    tr("predict.download_lens"), logit_lens_frame(lens, lang=lang), "logit_lens.csv"
)
