"""Ablation page: zero or mean-ablate chosen heads with forward hooks and see what changes (the
next-token distribution for decoders, the sentence embedding for encoders; at the end and at every
position); rank every head that way."""

import math
from dataclasses import replace

import streamlit as st
import torch

from core.methods.ablation import (
    ABLATION_MODES,
    ablation_batch_size,
    ablation_effect,
    rank_heads,
    ranking_baseline,
)
from core.policy.i18n import t
from ui.figures import show_figure
from ui.services import count_request, heavy_work, model_of
from ui.state import ABLATION, RANKING
from ui.text import lang, show_error, tr
from ui.widgets import require_result, table_with_csv
from viz.charts import position_effect_chart
from viz.heatmaps import importance_heatmap
from viz.tables import ablation_table, ranking_frame

HEADS_WIDGET = "ablation_heads"
ABLATE_BUTTON = "ablation_run"
RANK_BUTTON = "ablation_rank"
STOP_BUTTON = "ablation_stop"
MODE_WIDGET = "ablation_mode"
MODE_LABELS = {"zero": "ablation.mode_zero", "mean": "ablation.mode_mean"}
# Up to this many tokens a pass costs about the same whatever its batch, so each slot of a ranking
# takes the layers that fill whole batches (SmolLM2: 8 layers of 9 heads, 9 passes of 8; layer by
# layer took 60 passes where rank_heads takes 34). Longer texts: a layer a slot.
SHORT_TEXT = 64

language = lang()
st.header(tr("ablation.header"))
result = require_result(in_words=False)  # heads are ablated over tokens
st.caption(tr("ablation.caption_decoder" if result.causal else "ablation.caption_encoder"))
model = model_of(result)
mode = st.radio(
    tr("ablation.mode"),
    list(ABLATION_MODES),
    key=MODE_WIDGET,
    format_func=lambda m, language=language: t(MODE_LABELS[m], language),
    horizontal=True,
    help=tr("ablation.mode_help"),
)
key = (result.content_key, mode)  # a zero and a mean ablation are kept apart
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
        count_request()
        with heavy_work(), st.spinner(tr("ablation.running")):
            ABLATION.put(key, ablation_effect(model, result, chosen, mode=mode))
    except Exception as error:
        show_error(error)
effect = ABLATION.get(key)
if effect is not None:
    heads = ", ".join(f"L{layer}·H{head}" for layer, head in effect.heads)
    if effect.kind == "decoder":
        st.metric(tr("ablation.kl", heads=heads), f"{effect.kl_divergence:.5f}")
        st.dataframe(ablation_table(effect, lang=language), hide_index=True)
    else:
        st.metric(tr("ablation.cosine", heads=heads), f"{effect.cosine_similarity:.6f}")
    chart = position_effect_chart(effect, result.tokens, lang=language)
    show_figure(chart, key="position_effect")

st.subheader(tr("ablation.rank_header"))
st.caption(tr("ablation.rank_caption", heads=result.n_layers * result.n_heads))
if st.button(tr("ablation.rank"), key=RANK_BUTTON, type="primary"):
    RANKING.clear()
    try:
        count_request()
    except Exception as error:
        show_error(error)
        st.stop()
    # Stopping: the Stop button reruns the script, which ends this loop at its next Streamlit
    # call; the layers finished so far are already in the session.
    st.button(tr("ablation.stop"), key=STOP_BUTTON)
    bar = st.progress(0.0, text=tr("ablation.progress", done=0, total=len(options)))
    importance = torch.full((result.n_layers, result.n_heads), math.nan, dtype=torch.float64)
    try:
        with heavy_work():  # the unablated pass, once for every layer
            baseline = ranking_baseline(model, result)
    except Exception as error:
        show_error(error)
        st.stop()
    spent = baseline.seconds
    step = ablation_batch_size(result.n_heads, result.seq_len)
    short = result.seq_len <= SHORT_TEXT
    per_slot = math.lcm(result.n_heads, step) // result.n_heads if short else 1
    for first in range(0, result.n_layers, per_slot):
        layers = list(range(first, min(first + per_slot, result.n_layers)))
        try:
            with heavy_work():  # a few layers at a time: other sessions get their turn
                part = rank_heads(model, result, layers=layers, baseline=baseline, mode=mode)
        except Exception as error:
            show_error(error)
            break
        importance[layers] = part.importance[layers]
        spent += part.seconds
        done = (layers[-1] + 1) * result.n_heads
        ranking = replace(
            part,
            importance=importance.clone(),
            completed=layers[-1] == result.n_layers - 1,
            n_done=done,
            n_total=len(options),
            seconds=spent,
        )
        RANKING.put(key, ranking)
        bar.progress(
            done / len(options), text=tr("ablation.progress", done=done, total=len(options))
        )
    st.rerun()  # draw the finished ranking below, without the Stop button
ranking = RANKING.get(key)
if ranking is not None:
    if not ranking.completed:
        st.warning(tr("ablation.partial", done=ranking.n_done, total=ranking.n_total))
    st.caption(tr("ablation.took", seconds=f"{ranking.seconds:.1f}"))
    show_figure(importance_heatmap(ranking, lang=language), key="importance")
    table = ranking_frame(ranking, lang=language)
    table_with_csv(table, tr("ablation.download"), "head_importance.csv")
