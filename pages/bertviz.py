"""BertViz page: BertViz's head view and model view, offline, with layer and head filters."""

import streamlit as st

from pages import common
from viz import bertviz_budget, bertviz_html, estimate_bertviz_bytes, view_height
from viz.bertviz_views import BERTVIZ_BYTE_BUDGET

# Past this many bytes the page would take minutes to draw or never draw at all: refuse.
HARD_LIMIT = 4 * BERTVIZ_BYTE_BUDGET

st.header("BertViz views")
result = common.require_result()
view = st.segmented_control(
    "View",
    ["head", "model"],
    key=common.BERTVIZ_VIEW_KEY,
    format_func=lambda v: {"head": "Head view", "model": "Model view"}[v],
    default="head",
)
view = view or "head"
default = bertviz_budget(result, layer=st.session_state[common.LAYER_KEY])
if default.reduced:
    full_mb = estimate_bertviz_bytes(result.seq_len, result.n_layers, result.n_heads) / 1e6
    st.warning(
        f"{result.seq_len} tokens: BertViz would send every weight as text (about "
        f"{full_mb:.0f} MB) and freeze the browser tab. Showing layer {default.layers[0]} with "
        f"{len(default.heads)} of {result.n_heads} heads instead; add layers or heads below "
        "with care, or use the Heatmaps page."
    )
left, right = st.columns(2)
with left:
    layers = st.multiselect(
        "Layers",
        range(result.n_layers),
        default=list(default.layers),
        key=common.BERTVIZ_LAYERS_KEY,
    )
with right:
    heads = st.multiselect(
        "Heads", range(result.n_heads), default=list(default.heads), key=common.BERTVIZ_HEADS_KEY
    )
if not layers or not heads:
    st.info("Pick at least one layer and one head.")
    st.stop()
size = estimate_bertviz_bytes(result.seq_len, len(layers), len(heads))
if size > HARD_LIMIT:
    st.error(
        f"That selection would be about {size / 1e6:.0f} MB of BertViz data, too much to draw. "
        "Pick fewer layers or heads."
    )
    st.stop()
html = bertviz_html(result, view, layers=tuple(layers), heads=tuple(heads))
height = view_height(view, result.seq_len, len(layers), result.n_heads)
st.iframe(html, height=height)
st.caption(
    "Head view: hover a token to see what it attends to; click the coloured squares to "
    "toggle heads. Model view: every layer x head as a thumbnail; click one to enlarge it."
)
