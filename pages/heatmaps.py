"""Heatmaps page: one head's attention or a layer's head average, query x key; raw weights,
attention rollout or norm-based attention, over tokens or words."""

import streamlit as st

from pages import common
from viz import head_heatmap, layer_heatmap, tokens_table

LAYER_WIDGET = "heatmaps_layer"
HEAD_WIDGET = "heatmaps_head"
EFFECTIVE_WIDGET = "heatmaps_effective"

lang = common.lang()
st.header(common.tr("heatmaps.header"))
result = common.require_result()
mode = common.effective_selector(EFFECTIVE_WIDGET)
left, right = st.columns(2)
with left:
    layer = common.layer_selector(result, LAYER_WIDGET)
# The chosen kind of attention (over words if asked); a long input's raw layer is recomputed.
shown = common.ensure_layers(common.display_result(result, mode), [layer])
with right:
    # rollout has one map per layer: no heads to pick
    head = common.head_selector(shown, HEAD_WIDGET) if shown.n_heads > 1 else 0
if head is None:
    figure = layer_heatmap(shown, layer, lang=lang)
else:
    figure = head_heatmap(shown, layer, head, lang=lang)
st.plotly_chart(figure, key="heatmap")
st.caption(common.tr("heatmaps.caption"))
if mode != "raw":
    st.caption(common.tr(common.EFFECTIVE_CAPTIONS[mode]))
with st.expander(common.tr("heatmaps.tokens")):
    st.dataframe(tokens_table(shown, lang=lang), hide_index=True)
