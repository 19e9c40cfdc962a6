"""AttnScope's views, made from core's results: heatmaps (one builder, ``viz.heatmaps``), charts,
pandas tables and exports, the canvas payload of our attention view, and BertViz HTML.

Never imports streamlit or loads models: everything here is a pure function of a result.
"""

from viz.bertviz_views import bertviz_budget, bertviz_html, estimate_bertviz_bytes, view_height
from viz.charts import layer_entropy_chart
from viz.heatmaps import entropy_heatmap, head_heatmap, layer_heatmap
from viz.labels import plotly_safe
from viz.tables import (
    analysis_json,
    head_entropy_matrix,
    head_stats_table,
    layer_entropy_table,
    most_attended_table,
    to_csv_bytes,
    tokens_table,
)

__all__ = [
    "analysis_json",
    "bertviz_budget",
    "bertviz_html",
    "entropy_heatmap",
    "estimate_bertviz_bytes",
    "head_entropy_matrix",
    "head_heatmap",
    "head_stats_table",
    "layer_entropy_chart",
    "layer_entropy_table",
    "layer_heatmap",
    "most_attended_table",
    "plotly_safe",
    "to_csv_bytes",
    "tokens_table",
    "view_height",
]
