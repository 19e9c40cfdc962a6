"""Heads page: every head's statistics (entropy, confidence, distance, sink and neighbour
shares) as a layer x head heatmap and a sortable table, with a pattern label per head."""

import streamlit as st

from core.methods.head_stats import HEAD_METRICS, HeadStats
from pages import common
from viz.heatmaps import metric_heatmap
from viz.labels import METRIC_DEFINITION_KEYS, METRIC_KEYS
from viz.tables import head_stats_frame, pattern_rules_frame

METRIC_WIDGET = "heads_metric"

lang = common.lang()
tr = common.tr
st.header(tr("heads.header"))
result = common.require_result()
shown = common.display_result(result)  # tokens or words
key = ("head_stats", common.display_key(result))
if st.session_state.get(common.HEAD_STATS_KEY, (None,))[0] != key:
    with common.heavy_work(), st.spinner(tr("heads.computing")):
        stats = HeadStats.from_analysis(shown, common.model_of(result))
    st.session_state[common.HEAD_STATS_KEY] = (key, stats)
stats = st.session_state[common.HEAD_STATS_KEY][1]

metric = st.selectbox(
    tr("heads.metric"),
    list(HEAD_METRICS),
    key=METRIC_WIDGET,
    format_func=lambda m, language=lang: common.t(METRIC_KEYS[m], language),
)
st.caption(f"{tr(METRIC_DEFINITION_KEYS[metric])} — {HEAD_METRICS[metric].reference}")
st.plotly_chart(metric_heatmap(stats, metric, lang=lang), key="head_metric_heatmap")
table = head_stats_frame(stats, lang=lang)
common.table_with_csv(table, tr("heads.download"), "head_statistics.csv")
with st.expander(tr("heads.patterns")):
    st.markdown(tr("heads.patterns_text"))
    st.dataframe(pattern_rules_frame(lang=lang), hide_index=True)
