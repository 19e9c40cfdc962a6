"""Heatmaps page: one head's attention or a layer's head average, query x key."""

import streamlit as st

from pages import common
from viz import head_heatmap, layer_heatmap, tokens_table

LAYER_WIDGET = "heatmaps_layer"
HEAD_WIDGET = "heatmaps_head"

st.header("Attention heatmaps")
result = common.require_result()
left, right = st.columns(2)
with left:
    layer = common.layer_selector(result, LAYER_WIDGET)
with right:
    head = common.head_selector(result, HEAD_WIDGET)
shown = common.ensure_layers(result, [layer])  # long inputs keep statistics only
figure = layer_heatmap(shown, layer) if head is None else head_heatmap(shown, layer, head)
st.plotly_chart(figure, key="heatmap")
st.caption(
    "Row i shows how query token i spreads its attention over the key tokens (each row sums "
    "to 1). Hover a cell for the exact weight."
)
with st.expander("Tokens"):
    st.dataframe(tokens_table(result), hide_index=True)
