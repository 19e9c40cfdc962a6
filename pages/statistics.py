"""Statistics page: head and layer entropy, most-attended tokens, CSV and JSON downloads."""

import streamlit as st

from pages import common
from viz import (
    analysis_json,
    entropy_heatmap,
    head_entropy_matrix,
    head_stats_table,
    layer_entropy_chart,
    layer_entropy_table,
    most_attended_table,
    to_csv_bytes,
)

NORMALIZED_WIDGET = "stats_normalized"
TOP_K_WIDGET = "stats_top_k"
PER_HEAD_WIDGET = "stats_per_head"

lang = common.lang()
tr = common.tr
st.header(tr("stats.header"))
result = common.display_result(common.require_result())  # tokens or words

st.subheader(tr("stats.head_entropy"))
normalized = st.toggle(tr("stats.normalized_toggle"), key=NORMALIZED_WIDGET)
st.plotly_chart(entropy_heatmap(result, normalized=normalized, lang=lang), key="entropy_heatmap")
matrix = head_entropy_matrix(result, normalized=normalized, lang=lang)
st.dataframe(matrix.style.format("{:.4f}"))
st.download_button(
    tr("stats.download_heads"),
    to_csv_bytes(head_stats_table(result, lang=lang)),
    file_name="head_entropy.csv",
    mime="text/csv",
)

st.subheader(tr("stats.layer_entropy"))
st.plotly_chart(layer_entropy_chart(result, lang=lang), key="layer_entropy_chart")
layer_table = layer_entropy_table(result, lang=lang)
st.dataframe(layer_table, hide_index=True)
st.download_button(
    tr("stats.download_layers"),
    to_csv_bytes(layer_table),
    file_name="layer_entropy.csv",
    mime="text/csv",
)

st.subheader(tr("stats.most_attended"))
top_limit = max(2, min(20, result.seq_len))
top_k = st.slider(tr("stats.top_k"), 1, top_limit, value=min(5, top_limit), key=TOP_K_WIDGET)
per_head = st.toggle(tr("stats.per_head"), key=PER_HEAD_WIDGET)
attended = most_attended_table(result, top_k, per_head=per_head, lang=lang)
st.dataframe(attended, hide_index=True)
st.download_button(
    tr("stats.download_attended"),
    to_csv_bytes(attended),
    file_name="most_attended.csv",
    mime="text/csv",
)
st.download_button(
    tr("stats.download_json"),
    analysis_json(result, top_k),
    file_name="attnscope.json",
    mime="application/json",
)

with st.expander(tr("stats.definitions")):
    st.markdown(tr("stats.definitions_text"))
