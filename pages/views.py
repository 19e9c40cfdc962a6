"""Head view, model view and neuron view: AttnScope's own (any length, drawn on canvas from
compact binary data), BertViz's originals through their layer and head filters, and the attention
weights as a file."""

import streamlit as st

from core.policy.i18n import t
from ui.derived import cached_payload, display_key, display_result, ensure_layers
from ui.long_context import LONG_HEATMAP_TOKENS, long_head_view, long_model_view
from ui.state import HEAD_KEY, LAYER_KEY, VIEW_KIND_KEY, WORDS_KEY
from ui.text import lang, tr
from ui.views import (
    bertviz_not_offered_caption,
    bertviz_offered,
    bertviz_section,
    neuron_section,
    report_download,
    weights_download,
)
from ui.widgets import (
    attention_view,
    effective_caption,
    effective_selector,
    layer_selector,
    require_result,
)
from viz.attention_view import encode_head_view, encode_model_view

LAYER_WIDGET = "views_layer"
EFFECTIVE_WIDGET = "views_effective"
LABEL_KEYS = {
    "head": "views.head",
    "model": "views.model",
    "neuron": "views.neuron",
    "bertviz-head": "views.bertviz_head",
    "bertviz-model": "views.bertviz_model",
}

language = lang()
st.header(tr("views.header"))
result = require_result()
mode = effective_selector(EFFECTIVE_WIDGET, result.n_layers)
base = display_result(result, mode)  # raw, rollout or norm-based; tokens or words
bertviz = bertviz_offered(base)  # BertViz's filters bring any length it can draw one head of
kinds = ["head", "model", "neuron"] + (["bertviz-head", "bertviz-model"] if bertviz else [])
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
if not bertviz:
    bertviz_not_offered_caption(base)
view_key = display_key(result, mode)

# thousands of tokens, layers not held: each row's strongest keys gathered in blocks, and the
# model view's thumbnails without a full-resolution detail (a T x T head is 134 MB at 8192)
long = (
    mode == "raw"
    and base.seq_len > LONG_HEATMAP_TOKENS
    and all(w is None for w in base.layer_weights)
)
if kind == "head":
    layer = layer_selector(base, LAYER_WIDGET)
    if long:
        payload = cached_payload(
            ("head-top", view_key, layer, language), lambda: long_head_view(base, layer)
        )
    else:
        shown = ensure_layers(base, [layer])
        payload = cached_payload(
            ("head", view_key, layer, language),
            lambda: encode_head_view(shown, layer, lang=language).data,
        )
    attention_view(payload)
    st.caption(tr("views.head_caption"))
elif kind == "model" and long:
    attention_view(
        cached_payload(("model", view_key, None, language), lambda: long_model_view(base))
    )
    st.caption(tr("long.model_view_note", tokens=base.seq_len))
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
elif kind == "neuron":  # the model's own tokens and scores, whatever the views show
    derived = mode != "raw" or bool(st.session_state.get(WORDS_KEY))
    neuron_section(result, language, derived_shown=derived)
else:
    bertviz_section(base, view_key, "head" if kind == "bertviz-head" else "model")
effective_caption(mode, base)
weights_download(base)
report_download(base, language)
