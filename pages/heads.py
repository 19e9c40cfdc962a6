"""Heads page: every head's statistics (entropy, confidence, distance, sink and neighbour
shares) as a layer x head heatmap and a sortable table, with a pattern label per head; head
detector scores and a custom pattern; one head's query-key map."""

import streamlit as st

from core.methods.head_stats import HEAD_METRICS
from core.policy.i18n import t
from ui.derived import head_stats
from ui.detectors import detector_section
from ui.figures import show_figure
from ui.qk_map import qk_section
from ui.text import lang, tr
from ui.widgets import require_result, table_with_csv
from viz.heatmaps import metric_heatmap
from viz.labels import METRIC_KEYS, metric_caption
from viz.tables import head_stats_frame, pattern_rules_frame

METRIC_WIDGET = "heads_metric"
QUERIES_WIDGET = "heads_queries"

language = lang()
st.header(tr("heads.header"))
result = require_result()
# Decoders: query 0 sees only itself; the decoder-aware shares average over i >= 1.
choice = result.causal and st.toggle(
    tr("heads.queries_toggle"), key=QUERIES_WIDGET, help=tr("stats.queries_help")
)
stats = head_stats(result, "choice" if choice else "all")  # over tokens or words, as shown

metric = st.selectbox(
    tr("heads.metric"),
    list(HEAD_METRICS),
    key=METRIC_WIDGET,
    format_func=lambda m, language=language: t(METRIC_KEYS[m], language),
)
st.caption(metric_caption(metric, language))
show_figure(metric_heatmap(stats, metric, lang=language), key="head_metric_heatmap")
table = head_stats_frame(stats, lang=language)
table_with_csv(table, tr("heads.download"), "head_statistics.csv")
with st.expander(tr("heads.patterns")):
    st.markdown(tr("heads.patterns_text"))
    st.dataframe(pattern_rules_frame(lang=language), hide_index=True)

detector_section(result, language)
qk_section(result, language)
