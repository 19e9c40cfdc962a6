"""Long context page: where each layer's attention goes along the text (sink, local window, far
context), the mean attention against distance, a simulated KV-cache eviction, and the heatmap
of a long text as an overview and a window."""

import streamlit as st

from ui.figures import show_figure
from ui.long_context import eviction_section, long_heatmap
from ui.text import lang, tr
from ui.widgets import head_selector, layer_selector, require_result, table_with_csv
from viz.long_context import distance_figure, split_figure, split_frame

HEAD_WIDGET = "long_head"
LAYERS_WIDGET = "long_layers"
LAYER_WIDGET = "long_layer"

language = lang()
st.header(tr("long.header"))
result = require_result(in_words=False)
long_range = result.long_range
if long_range is None:
    st.info(tr("long.unavailable"))
    st.stop()
st.caption(tr("long.caption", sink=long_range.sink_tokens, window=long_range.window))
head = head_selector(result, HEAD_WIDGET)
show_figure(split_figure(long_range, head, lang=language), key="long_split")
with st.expander(tr("long.split_table")):
    table_with_csv(split_frame(long_range, lang=language), tr("long.download"), "long_range.csv")

st.subheader(tr("long.distance_header"))
st.caption(tr("long.distance_caption"))
last = result.n_layers - 1
layers = st.multiselect(
    tr("long.layers"),
    list(range(result.n_layers)),
    default=sorted({0, last // 2, last}),
    key=LAYERS_WIDGET,
)
show_figure(distance_figure(long_range, layers, head, lang=language), key="long_distance")

eviction_section(result)

st.subheader(tr("long.map_header"))
layer = layer_selector(result, LAYER_WIDGET)
long_heatmap(result, layer, head, key="long_map")
