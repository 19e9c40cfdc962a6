"""Head view and model view: AttnScope's own (any length, drawn on canvas from compact binary
data), and BertViz's originals where the input is short enough for them."""

import streamlit as st

from core.i18n import t
from pages import common
from viz import bertviz_budget, bertviz_html, estimate_bertviz_bytes, view_height
from viz.attention_view import encode_head_view, encode_model_view
from viz.bertviz_views import BERTVIZ_BYTE_BUDGET

LAYER_WIDGET = "views_layer"
# Past this many bytes a BertViz page would take minutes to draw or never draw at all: refuse.
HARD_LIMIT = 4 * BERTVIZ_BYTE_BUDGET
LABEL_KEYS = {
    "head": "views.head",
    "model": "views.model",
    "bertviz-head": "views.bertviz_head",
    "bertviz-model": "views.bertviz_model",
}

lang = common.lang()
tr = common.tr
st.header(tr("views.header"))
result = common.require_result()
bertviz_fits = not bertviz_budget(result).reduced
kinds = ["head", "model"] + (["bertviz-head", "bertviz-model"] if bertviz_fits else [])
if st.session_state.get(common.VIEW_KIND_KEY) not in kinds:
    st.session_state[common.VIEW_KIND_KEY] = "head"
kind = st.segmented_control(
    tr("views.view"),
    kinds,
    key=common.VIEW_KIND_KEY,
    format_func=lambda k, language=lang: t(LABEL_KEYS[k], language),
    width="stretch",
)
kind = kind or "head"
if not bertviz_fits:
    size = estimate_bertviz_bytes(result.seq_len, result.n_layers, result.n_heads) / 1e6
    st.caption(tr("views.bertviz_not_offered", megabytes=f"{size:.0f}"))

if kind == "head":
    layer = common.layer_selector(result, LAYER_WIDGET)
    shown = common.ensure_layers(result, [layer])
    payload = common.cached_payload(
        ("head", id(result), layer, lang), lambda: encode_head_view(shown, layer, lang=lang).data
    )
    common.attention_view(payload)
    st.caption(tr("views.head_caption"))
elif kind == "model":
    selected = (st.session_state[common.LAYER_KEY], st.session_state[common.HEAD_KEY] or 0)
    shown = common.ensure_layers(result, [selected[0]])
    payload = common.cached_payload(
        ("model", id(result), selected, lang),
        lambda: encode_model_view(shown, selected, lang=lang).data,
    )
    common.attention_view(payload)
    st.caption(tr("views.model_caption"))
else:
    view = "head" if kind == "bertviz-head" else "model"
    left, right = st.columns(2)
    with left:
        layers = st.multiselect(
            tr("views.layers"),
            range(result.n_layers),
            default=list(range(result.n_layers)),
            key=common.BERTVIZ_LAYERS_KEY,
        )
    with right:
        heads = st.multiselect(
            tr("views.heads"),
            range(result.n_heads),
            default=list(range(result.n_heads)),
            key=common.BERTVIZ_HEADS_KEY,
        )
    if not layers or not heads:
        st.info(tr("views.pick_one"))
        st.stop()
    size = estimate_bertviz_bytes(result.seq_len, len(layers), len(heads))
    if size > HARD_LIMIT:
        st.error(tr("views.too_big", megabytes=f"{size / 1e6:.0f}"))
        st.stop()
    shown = common.ensure_layers(result, layers)
    html = bertviz_html(shown, view, layers=tuple(layers), heads=tuple(heads))
    st.iframe(html, height=view_height(view, result.seq_len, len(layers), result.n_heads))
    st.caption(tr("views.bertviz_caption"))
