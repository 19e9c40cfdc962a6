"""Head view and model view: AttnScope's own (any length, drawn on canvas from compact binary
data), and BertViz's originals where the input is short enough for them."""

import streamlit as st

from core.policy.i18n import t
from ui.derived import cached_payload, display_key, display_result, ensure_layers
from ui.state import BERTVIZ_HEADS_KEY, BERTVIZ_LAYERS_KEY, HEAD_KEY, LAYER_KEY, VIEW_KIND_KEY
from ui.text import lang, tr
from ui.widgets import (
    attention_view,
    effective_caption,
    effective_selector,
    layer_selector,
    require_result,
)
from viz import bertviz_budget, bertviz_html, estimate_bertviz_bytes, view_height
from viz.attention_view import encode_head_view, encode_model_view

LAYER_WIDGET = "views_layer"
EFFECTIVE_WIDGET = "views_effective"
LABEL_KEYS = {
    "head": "views.head",
    "model": "views.model",
    "bertviz-head": "views.bertviz_head",
    "bertviz-model": "views.bertviz_model",
}

language = lang()
st.header(tr("views.header"))
result = require_result()
mode = effective_selector(EFFECTIVE_WIDGET, result.n_layers)
base = display_result(result, mode)  # raw, rollout or norm-based; tokens or words
bertviz_fits = not bertviz_budget(base).reduced
kinds = ["head", "model"] + (["bertviz-head", "bertviz-model"] if bertviz_fits else [])
if st.session_state.get(VIEW_KIND_KEY) not in kinds:
    st.session_state[VIEW_KIND_KEY] = "head"
kind = st.segmented_control(
    tr("views.view"),
    kinds,
    key=VIEW_KIND_KEY,
    format_func=lambda k, language=language: t(LABEL_KEYS[k], language),
    width="stretch",
)
kind = kind or "head"
if not bertviz_fits:
    size = estimate_bertviz_bytes(base.seq_len, base.n_layers, base.n_heads) / 1e6
    st.caption(tr("views.bertviz_not_offered", megabytes=f"{size:.0f}"))
view_key = display_key(result, mode)

if kind == "head":
    layer = layer_selector(base, LAYER_WIDGET)
    shown = ensure_layers(base, [layer])
    payload = cached_payload(
        ("head", view_key, layer, language),
        lambda: encode_head_view(shown, layer, lang=language).data,
    )
    attention_view(payload)
    st.caption(tr("views.head_caption"))
elif kind == "model":
    head = st.session_state[HEAD_KEY] or 0
    selected = (st.session_state[LAYER_KEY], min(head, base.n_heads - 1))
    shown = ensure_layers(base, [selected[0]])
    payload = cached_payload(
        ("model", view_key, selected, language),
        lambda: encode_model_view(shown, selected, lang=language).data,
    )
    attention_view(payload)
    st.caption(tr("views.model_caption"))
else:
    view = "head" if kind == "bertviz-head" else "model"
    for key, count in (
        (BERTVIZ_LAYERS_KEY, base.n_layers),
        (BERTVIZ_HEADS_KEY, base.n_heads),
    ):
        if key in st.session_state:  # a choice from another view kind may not fit this one
            st.session_state[key] = [i for i in st.session_state[key] if i < count]
    left, right = st.columns(2)
    with left:
        layers = st.multiselect(
            tr("views.layers"),
            range(base.n_layers),
            default=list(range(base.n_layers)),
            key=BERTVIZ_LAYERS_KEY,
        )
    with right:
        heads = st.multiselect(
            tr("views.heads"),
            range(base.n_heads),
            default=list(range(base.n_heads)),
            key=BERTVIZ_HEADS_KEY,
        )
    if not layers or not heads:
        st.info(tr("views.pick_one"))
        st.stop()
    # BertViz is only offered when every layer and head fits its byte budget, so any selection
    # does too. Built once per selection: a new page (and nonce) each rerun reloads the frame.
    shown = ensure_layers(base, layers)
    html = cached_payload(
        ("bertviz", view_key, view, tuple(layers), tuple(heads)),
        lambda: bertviz_html(shown, view, layers=tuple(layers), heads=tuple(heads)),
    )
    st.iframe(html, height=view_height(view, base.seq_len, len(layers), base.n_heads))
    st.caption(tr("views.bertviz_caption"))
effective_caption(mode, base)
