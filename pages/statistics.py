"""Statistics page: head and layer entropy, most-attended tokens, CSV and JSON downloads."""

import streamlit as st

from pages import common
from viz import (
    analysis_json,
    entropy_heatmap,
    head_entropy_matrix,
    head_stats_table,
    layer_entropy_chart,
    layer_entropy_table,
    most_attended_table,
    to_csv_bytes,
)

NORMALIZED_WIDGET = "stats_normalized"
TOP_K_WIDGET = "stats_top_k"
PER_HEAD_WIDGET = "stats_per_head"

st.header("Attention statistics")
result = common.require_result()

st.subheader("Head entropy")
normalized = st.toggle(
    "Normalised (0 = one-hot, 1 = uniform over the keys a query can see)", key=NORMALIZED_WIDGET
)
st.plotly_chart(entropy_heatmap(result, normalized=normalized), key="entropy_heatmap")
st.dataframe(head_entropy_matrix(result, normalized=normalized).style.format("{:.4f}"))
st.download_button(
    "Head statistics (CSV)",
    to_csv_bytes(head_stats_table(result)),
    file_name="head_entropy.csv",
    mime="text/csv",
)

st.subheader("Layer entropy")
st.plotly_chart(layer_entropy_chart(result), key="layer_entropy_chart")
layer_table = layer_entropy_table(result)
st.dataframe(layer_table, hide_index=True)
st.download_button(
    "Layer entropy (CSV)", to_csv_bytes(layer_table), file_name="layer_entropy.csv", mime="text/csv"
)

st.subheader("Most-attended tokens")
top_limit = max(2, min(20, result.seq_len))
top_k = st.slider("Top k", 1, top_limit, value=min(5, top_limit), key=TOP_K_WIDGET)
per_head = st.toggle("Per head", key=PER_HEAD_WIDGET)
attended = most_attended_table(result, top_k, per_head=per_head)
st.dataframe(attended, hide_index=True)
st.download_button(
    "Most-attended tokens (CSV)",
    to_csv_bytes(attended),
    file_name="most_attended.csv",
    mime="text/csv",
)
st.download_button(
    "Everything (JSON)",
    analysis_json(result, top_k),
    file_name="attnscope.json",
    mime="application/json",
)

with st.expander("Definitions"):
    st.markdown(
        """
- **Head entropy** `E[l,h]` = mean over query positions i of `-Σ_j a[l,h,i,j] · ln a[l,h,i,j]`
  (nats; 0 · ln 0 = 0). 0 means every query attends to one key; `ln T` means uniform attention.
- **Normalised head entropy**: each row's entropy divided by `ln k_i`, where `k_i` is the number
  of keys query i can see (T for an encoder, i + 1 for a decoder; a row that sees one key counts
  0), then averaged over queries.
- **Layer entropy**: the entropy of the head-averaged attention `A_l = mean_h a[l,h]`, averaged
  over queries. It is never below the mean of the layer's head entropies, shown beside it.
- **Most attended**: key positions ranked by received attention `r_l[j] = mean_i A_l[i,j]`
  (per head: `mean_i a[l,h,i,j]`); the shares of a layer sum to 1.
"""
    )
