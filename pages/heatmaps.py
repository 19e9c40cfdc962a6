"""Heatmaps page: one head's attention or a layer's head average, query x key; raw weights,
attention rollout or norm-based attention, over tokens or words."""

import streamlit as st

from ui.derived import display_result, ensure_layers
from ui.figures import show_figure
from ui.long_context import LONG_HEATMAP_TOKENS, long_heatmap
from ui.text import lang, tr
from ui.widgets import (
    effective_caption,
    effective_selector,
    head_selector,
    layer_selector,
    require_result,
)
from viz import head_heatmap, layer_heatmap, tokens_table

LAYER_WIDGET = "heatmaps_layer"
HEAD_WIDGET = "heatmaps_head"
EFFECTIVE_WIDGET = "heatmaps_effective"

language = lang()
st.header(tr("heatmaps.header"))
result = require_result()
mode = effective_selector(EFFECTIVE_WIDGET, result.n_layers)
left, right = st.columns(2)
with left:
    layer = layer_selector(result, LAYER_WIDGET)
if mode == "raw" and result.seq_len > LONG_HEATMAP_TOKENS and result.layer_weights[layer] is None:
    # thousands of tokens: a max-pooled overview and an exact window, never the T x T layer
    with right:
        head = head_selector(result, HEAD_WIDGET)
    long_heatmap(result, layer, head, key="heatmap_long")
    st.stop()
# The chosen kind of attention (over words if asked); a long input's raw layer is recomputed.
shown = ensure_layers(display_result(result, mode), [layer])
with right:
    # rollout has one map per layer: no heads to pick
    head = head_selector(shown, HEAD_WIDGET) if shown.n_heads > 1 else 0
if head is None:
    figure = layer_heatmap(shown, layer, effective=mode, lang=language)
else:
    figure = head_heatmap(shown, layer, head, effective=mode, lang=language)
show_figure(figure, key="heatmap")
st.caption(tr("heatmaps.caption"))
effective_caption(mode, shown)
with st.expander(tr("heatmaps.tokens")):
    st.dataframe(tokens_table(shown, lang=language), hide_index=True)
