"""Translation page glue for cross-attention beyond its heatmap: the head view and the model view
drawn rectangular (target tokens left, source tokens right), and every head's statistics as a
layer x head heatmap and a table with a CSV download."""

from __future__ import annotations

import streamlit as st

from core.methods.cross_words import CrossUnits
from core.methods.head_metrics import CROSS_NOT_APPLICABLE, HEAD_METRICS
from core.methods.head_stats import HeadStats
from core.policy.i18n import t
from ui.figures import show_figure
from ui.text import lang, tr
from ui.widgets import attention_view, table_with_csv
from viz.attention_view import encode_cross_head_view, encode_cross_model_view
from viz.heatmaps import metric_heatmap
from viz.labels import METRIC_KEYS, metric_caption
from viz.tables import head_stats_frame

__all__ = ["CROSS_VIEW_KEY", "cross_head_stats_section", "cross_views_section"]

CROSS_VIEW_KEY = "translation_cross_view"  # the component's state: the clicked head
VIEW_WIDGET = "translation_cross_view_kind"
METRIC_WIDGET = "translation_cross_metric"
VIEW_KINDS = ("head", "model")
VIEW_LABELS = {"head": "views.head", "model": "views.model"}
# Metrics that mean something across two sequences, in the order of HEAD_METRICS.
CROSS_METRICS = tuple(m for m in HEAD_METRICS if m not in CROSS_NOT_APPLICABLE)


def _follow_click(layer_key: str, head_key: str) -> None:
    """A head clicked in the view (a swatch or a thumbnail) becomes the section's layer and head."""
    state = st.session_state.get(CROSS_VIEW_KEY) or {}
    selected = state.get("selected") if hasattr(state, "get") else None
    if selected:
        st.session_state[layer_key] = int(selected["layer"])
        st.session_state[head_key] = int(selected["head"])


def cross_views_section(
    units: CrossUnits, layer: int, head: int | None, layer_key: str, head_key: str
) -> None:
    """The head view of ``layer`` or the model view (``head`` of ``layer`` opened, the first head
    when the head average is chosen) of cross-attention; a click chooses the layer and head
    through ``layer_key`` and ``head_key``."""
    language = lang()
    kind = st.segmented_control(
        tr("views.view"),
        VIEW_KINDS,
        key=VIEW_WIDGET,
        default="head",
        format_func=lambda k: t(VIEW_LABELS[k], language),
    )
    if kind == "model":
        opened = (layer, head if head is not None else 0)
        payload = encode_cross_model_view(units.cross, opened, lang=language)
    else:
        payload = encode_cross_head_view(units.cross, layer, selected_head=head, lang=language)
    attention_view(
        payload.data, key=CROSS_VIEW_KEY, on_select=lambda: _follow_click(layer_key, head_key)
    )
    st.caption(tr("translation.view_caption"))


def cross_head_stats_section(units: CrossUnits) -> None:
    """Every head of cross-attention: one metric as a layer x head heatmap, all of them in a
    sortable table with a CSV download; the position metrics are left out (N/A)."""
    language = lang()
    st.subheader(tr("translation.head_stats"))
    st.caption(tr("translation.head_stats_caption"))
    cross = units.cross
    stats = HeadStats.from_cross_attention(
        cross.weights, cross.key_tokens, key_special=units.key_special
    )
    metric = st.selectbox(
        tr("heads.metric"),
        CROSS_METRICS,
        key=METRIC_WIDGET,
        format_func=lambda m: t(METRIC_KEYS[m], language),
    )
    st.caption(metric_caption(metric, language))
    figure = metric_heatmap(stats, metric, lang=language)  # (L, H)
    show_figure(figure, key="translation_cross_metric_heatmap")
    table = head_stats_frame(stats, lang=language, omit=CROSS_NOT_APPLICABLE)
    table_with_csv(table, tr("translation.head_stats_csv"), "cross_attention_head_statistics.csv")
