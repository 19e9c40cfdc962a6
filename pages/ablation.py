"""Ablation page: zero chosen heads with forward hooks and see what changes (the next-token
distribution for decoders, the sentence embedding for encoders); rank every head that way."""

import math
from dataclasses import replace

import streamlit as st
import torch

from core.methods.ablation import ablation_effect, rank_heads, ranking_baseline
from pages import common
from viz.heatmaps import importance_heatmap
from viz.tables import ablation_table, ranking_frame

HEADS_WIDGET = "ablation_heads"
ABLATE_BUTTON = "ablation_run"
RANK_BUTTON = "ablation_rank"
STOP_BUTTON = "ablation_stop"

lang = common.lang()
tr = common.tr
st.header(tr("ablation.header"))
result = common.require_result()
st.caption(tr("ablation.caption_decoder" if result.causal else "ablation.caption_encoder"))
model = common.model_of(result)
options = [(layer, head) for layer in range(result.n_layers) for head in range(result.n_heads)]
chosen = st.multiselect(
    tr("ablation.heads"),
    options,
    key=HEADS_WIDGET,
    format_func=lambda pair: f"L{pair[0]}·H{pair[1]}",
    placeholder=tr("ablation.heads_placeholder"),
)
if st.button(tr("ablation.run"), key=ABLATE_BUTTON, disabled=not chosen):
    try:
        common.count_request()
        with common.heavy_work(), st.spinner(tr("ablation.running")):
            effect = ablation_effect(
                model, result.text, chosen, result.pair, max_tokens=result.max_tokens
            )
    except Exception as error:
        common.show_error(error)
    else:
        st.session_state[common.ABLATION_KEY] = (id(result), effect)
stored = st.session_state.get(common.ABLATION_KEY)
if stored and stored[0] == id(result):
    effect = stored[1]
    heads = ", ".join(f"L{layer}·H{head}" for layer, head in effect.heads)
    if effect.kind == "decoder":
        st.metric(tr("ablation.kl", heads=heads), f"{effect.kl_divergence:.5f}")
        st.dataframe(ablation_table(effect, lang=lang), hide_index=True)
    else:
        st.metric(tr("ablation.cosine", heads=heads), f"{effect.cosine_similarity:.6f}")

st.subheader(tr("ablation.rank_header"))
st.caption(tr("ablation.rank_caption", heads=result.n_layers * result.n_heads))
if st.button(tr("ablation.rank"), key=RANK_BUTTON, type="primary"):
    st.session_state.pop(common.RANKING_KEY, None)
    try:
        common.count_request()
    except Exception as error:
        common.show_error(error)
        st.stop()
    # Stopping: the Stop button reruns the script, which ends this loop at its next Streamlit
    # call; the layers finished so far are already in the session.
    st.button(tr("ablation.stop"), key=STOP_BUTTON)
    bar = st.progress(0.0, text=tr("ablation.progress", done=0, total=len(options)))
    importance = torch.full((result.n_layers, result.n_heads), math.nan, dtype=torch.float64)
    try:
        with common.heavy_work():  # the unablated pass, once for every layer
            baseline = ranking_baseline(
                model, result.text, result.pair, max_tokens=result.max_tokens
            )
    except Exception as error:
        common.show_error(error)
        st.stop()
    spent = baseline.seconds
    for layer in range(result.n_layers):
        try:
            with common.heavy_work():  # one layer at a time: other sessions get their turn
                part = rank_heads(
                    model, result.text, result.pair, layers=[layer], baseline=baseline
                )
        except Exception as error:
            common.show_error(error)
            break
        importance[layer] = part.importance[layer]
        spent += part.seconds
        done = (layer + 1) * result.n_heads
        ranking = replace(
            part,
            importance=importance.clone(),
            completed=layer == result.n_layers - 1,
            n_done=done,
            n_total=len(options),
            seconds=spent,
        )
        st.session_state[common.RANKING_KEY] = (id(result), ranking)
        bar.progress(
            done / len(options), text=tr("ablation.progress", done=done, total=len(options))
        )
    st.rerun()  # draw the finished ranking below, without the Stop button
stored = st.session_state.get(common.RANKING_KEY)
if stored and stored[0] == id(result):
    ranking = stored[1]
    if not ranking.completed:
        st.warning(tr("ablation.partial", done=ranking.n_done, total=ranking.n_total))
    st.caption(tr("ablation.took", seconds=f"{ranking.seconds:.1f}"))
    st.plotly_chart(importance_heatmap(ranking, lang=lang), key="importance")
    table = ranking_frame(ranking, lang=lang)
    common.table_with_csv(table, tr("ablation.download"), "head_importance.csv")
