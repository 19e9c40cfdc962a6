"""Head view and model view: AttnScope's own (any length, drawn on canvas from compact binary
data), and BertViz's originals where the input is short enough for them."""

import streamlit as st

from pages import common
from viz import bertviz_budget, bertviz_html, estimate_bertviz_bytes, view_height
from viz.attention_view import encode_head_view, encode_model_view
from viz.bertviz_views import BERTVIZ_BYTE_BUDGET

LAYER_WIDGET = "views_layer"
# Past this many bytes a BertViz page would take minutes to draw or never draw at all: refuse.
HARD_LIMIT = 4 * BERTVIZ_BYTE_BUDGET
LABELS = {
    "head": "Head view",
    "model": "Model view",
    "bertviz-head": "BertViz head view",
    "bertviz-model": "BertViz model view",
}

st.header("Head view and model view")
result = common.require_result()
bertviz_fits = not bertviz_budget(result).reduced
kinds = ["head", "model"] + (["bertviz-head", "bertviz-model"] if bertviz_fits else [])
if st.session_state.get(common.VIEW_KIND_KEY) not in kinds:
    st.session_state[common.VIEW_KIND_KEY] = "head"
kind = st.segmented_control(
    "View", kinds, key=common.VIEW_KIND_KEY, format_func=LABELS.__getitem__, width="stretch"
)
kind = kind or "head"
if not bertviz_fits:
    size = estimate_bertviz_bytes(result.seq_len, result.n_layers, result.n_heads) / 1e6
    st.caption(
        f"BertViz's own views are offered up to a few hundred thousand weights; this input "
        f"would send about {size:.0f} MB to the browser that way."
    )

if kind == "head":
    layer = common.layer_selector(result, LAYER_WIDGET)
    shown = common.ensure_layers(result, [layer])
    payload = common.cached_payload(
        ("head", id(result), layer), lambda: encode_head_view(shown, layer).data
    )
    common.attention_view(payload)
    st.caption(
        "Lines join each query token (left) to the keys it attends to (right), one colour per "
        "head; only each row's strongest keys above the threshold are drawn. Hover a token for "
        "all its weights; click a colour to show or hide a head (it also selects that head)."
    )
elif kind == "model":
    selected = (st.session_state[common.LAYER_KEY], st.session_state[common.HEAD_KEY] or 0)
    shown = common.ensure_layers(result, [selected[0]])
    payload = common.cached_payload(
        ("model", id(result), selected), lambda: encode_model_view(shown, selected).data
    )
    common.attention_view(payload)
    st.caption(
        "Every layer x head as a thumbnail (query down, key across, each scaled to its own "
        "maximum). Click one to open it beside the grid; the Heatmaps page follows."
    )
else:
    view = "head" if kind == "bertviz-head" else "model"
    left, right = st.columns(2)
    with left:
        layers = st.multiselect(
            "Layers",
            range(result.n_layers),
            default=list(range(result.n_layers)),
            key=common.BERTVIZ_LAYERS_KEY,
        )
    with right:
        heads = st.multiselect(
            "Heads",
            range(result.n_heads),
            default=list(range(result.n_heads)),
            key=common.BERTVIZ_HEADS_KEY,
        )
    if not layers or not heads:
        st.info("Pick at least one layer and one head.")
        st.stop()
    size = estimate_bertviz_bytes(result.seq_len, len(layers), len(heads))
    if size > HARD_LIMIT:
        st.error(
            f"That selection would be about {size / 1e6:.0f} MB of BertViz data, too much to "
            "draw. Pick fewer layers or heads."
        )
        st.stop()
    shown = common.ensure_layers(result, layers)
    html = bertviz_html(shown, view, layers=tuple(layers), heads=tuple(heads))
    st.iframe(html, height=view_height(view, result.seq_len, len(layers), result.n_heads))
    st.caption(
        "BertViz's own views, drawn offline. Head view: hover a token; click the coloured squares "
        "to toggle heads. Model view: click a thumbnail to enlarge it."
    )
