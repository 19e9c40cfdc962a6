"""Statistics page: head and layer entropy, most-attended tokens, CSV and JSON downloads."""

import streamlit as st

from core.policy.i18n import t
from ui.derived import display_result
from ui.figures import show_figure
from ui.text import lang, tr
from ui.widgets import csv_download, require_result, table_with_csv
from viz import (
    analysis_json,
    entropy_heatmap,
    head_entropy_matrix,
    head_stats_table,
    layer_entropy_chart,
    layer_entropy_table,
    most_attended_table,
)

NORMALIZED_WIDGET = "stats_normalized"
QUERIES_WIDGET = "stats_queries"
TOP_K_WIDGET = "stats_top_k"
PER_HEAD_WIDGET = "stats_per_head"
RANKING_WIDGET = "stats_ranking"
RANKING_LABELS = {"plain": "stats.ranking_plain", "visible": "stats.ranking_visible"}

language = lang()
st.header(tr("stats.header"))
result = display_result(require_result())  # tokens or words

st.subheader(tr("stats.head_entropy"))
normalized = st.toggle(tr("stats.normalized_toggle"), key=NORMALIZED_WIDGET)
# Decoders: query 0 sees only itself; the decoder-aware definition averages over i >= 1.
choice = result.causal and st.toggle(
    tr("stats.queries_toggle"), key=QUERIES_WIDGET, help=tr("stats.queries_help")
)
show_figure(
    entropy_heatmap(result, normalized=normalized, choice=choice, lang=language),
    key="entropy_heatmap",
)
matrix = head_entropy_matrix(result, normalized=normalized, choice=choice, lang=language)
st.dataframe(matrix.style.format("{:.4f}"))
csv_download(
    tr("stats.download_heads"), head_stats_table(result, lang=language), "head_entropy.csv"
)

st.subheader(tr("stats.layer_entropy"))
show_figure(layer_entropy_chart(result, lang=language), key="layer_entropy_chart")
table_with_csv(
    layer_entropy_table(result, lang=language), tr("stats.download_layers"), "layer_entropy.csv"
)

st.subheader(tr("stats.most_attended"))
top_limit = max(2, min(20, result.seq_len))
top_k = st.slider(tr("stats.top_k"), 1, top_limit, value=min(5, top_limit), key=TOP_K_WIDGET)
per_head = st.toggle(tr("stats.per_head"), key=PER_HEAD_WIDGET)
ranking = st.radio(
    tr("stats.ranking"),
    list(RANKING_LABELS),
    key=RANKING_WIDGET,
    format_func=lambda r, language=language: t(RANKING_LABELS[r], language),
    horizontal=True,
)
if ranking == "visible":
    st.caption(tr("stats.ranking_caption"))
attended = most_attended_table(result, top_k, per_head=per_head, ranking=ranking, lang=language)
table_with_csv(attended, tr("stats.download_attended"), "most_attended.csv")
st.download_button(
    tr("stats.download_json"),
    analysis_json(result, top_k),
    file_name="attnscope.json",
    mime="application/json",
)

with st.expander(tr("stats.definitions")):
    st.markdown(tr("stats.definitions_text"))
