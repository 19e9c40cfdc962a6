"""Predictions page (decoders): the top next tokens at every position, and the logit lens: what
each layer would predict if it were the last."""

import streamlit as st

from ui.derived import predictions
from ui.figures import show_figure
from ui.text import lang, show_error, tr
from ui.widgets import csv_download, require_result, table_with_csv
from viz.heatmaps import logit_lens_heatmap
from viz.tables import logit_lens_frame, predictions_frame

TOP_K_WIDGET = "predict_top_k"

language = lang()
st.header(tr("predict.header"))
result = require_result(in_words=False)  # a prediction per token
if result.kind != "decoder":
    st.info(tr("predict.decoders_only"))
    st.stop()
top_k = st.slider(tr("predict.top_k"), 1, 10, value=5, key=TOP_K_WIDGET)
try:
    predicted = predictions(result, top_k)  # next tokens and logit lens from one pass
except Exception as error:
    show_error(error)
    st.stop()

st.subheader(tr("predict.next_tokens"))
st.caption(tr("predict.next_caption"))
table = predictions_frame(predicted.next_tokens, lang=language)
table_with_csv(table, tr("predict.download_next"), "predictions.csv")

st.subheader(tr("predict.lens"))
st.caption(tr("predict.lens_caption"))
show_figure(logit_lens_heatmap(predicted.lens, lang=language), key="logit_lens")
csv_download(
    tr("predict.download_lens"), logit_lens_frame(predicted.lens, lang=language), "logit_lens.csv"
)
