"""Heatmaps page: one head's attention or a layer's head average, query x key."""

import streamlit as st

from pages import common
from viz import head_heatmap, layer_heatmap, tokens_table

LAYER_WIDGET = "heatmaps_layer"
HEAD_WIDGET = "heatmaps_head"

lang = common.lang()
st.header(common.tr("heatmaps.header"))
result = common.require_result()
left, right = st.columns(2)
with left:
    layer = common.layer_selector(result, LAYER_WIDGET)
with right:
    head = common.head_selector(result, HEAD_WIDGET)
shown = common.ensure_layers(result, [layer])  # long inputs keep statistics only
if head is None:
    figure = layer_heatmap(shown, layer, lang=lang)
else:
    figure = head_heatmap(shown, layer, head, lang=lang)
st.plotly_chart(figure, key="heatmap")
st.caption(common.tr("heatmaps.caption"))
with st.expander(common.tr("heatmaps.tokens")):
    st.dataframe(tokens_table(result, lang=lang), hide_index=True)
