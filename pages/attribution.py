"""Attribution page: one target explained by Captum's gradients, occlusion, gradient-weighted
rollout and value zeroing, set beside attention: which heads agree with the attributions."""

import streamlit as st

from core.methods.agreement import agreement
from core.methods.attribution import METHODS, attribute
from core.methods.attribution_target import BASELINES, resolve_target
from core.policy.errors import InputError
from core.policy.i18n import t
from core.policy.parsing import whole_number
from ui.derived import attributions_shown
from ui.figures import show_figure
from ui.services import count_request, heavy_work, model_of
from ui.state import ATTRIBUTION
from ui.text import lang, show_error, tr
from ui.widgets import csv_download, require_result, table_with_csv
from viz.attribution import (
    agreement_frame,
    agreement_heatmap,
    attention_gradient_heatmap,
    attribution_frame,
    attribution_heatmap,
    delta_warning,
    method_name,
    values_caption,
)

MEASURE_WIDGET = "attribution_measure"
POSITION_WIDGET = "attribution_position"
TOKEN_WIDGET = "attribution_token"
BASELINE_WIDGET = "attribution_baseline"
STEPS_WIDGET = "attribution_steps"
RUN_BUTTON = "attribution_run"
STOP_BUTTON = "attribution_stop"
SORT_WIDGET = "attribution_sort"
LAYER_WIDGET = "attribution_layer"
HEAD_WIDGET = "attribution_head"
MEASURE_LABELS = {"logit": "attribution.measure_logit", "log_prob": "attribution.measure_log_prob"}

language = lang()
st.header(tr("attribution.header"))
result = require_result()  # the shaded text in words too (sidebar); the maps stay per token
st.caption(tr("attribution.caption"))
model = model_of(result)
left, middle, right = st.columns(3)
measure, position_text, token = None, "", None
if result.causal:
    measure = left.radio(
        tr("attribution.measure"),
        list(MEASURE_LABELS),
        key=MEASURE_WIDGET,
        format_func=lambda m, language=language: t(MEASURE_LABELS[m], language),
    )
    position_text = middle.text_input(tr("attribution.position"), key=POSITION_WIDGET).strip()
    token = right.text_input(tr("attribution.token"), key=TOKEN_WIDGET) or None
else:
    st.caption(tr("attribution.target_encoder"))
baseline = left.selectbox(tr("attribution.baseline"), list(BASELINES), key=BASELINE_WIDGET)
steps = middle.number_input(tr("attribution.steps"), value=32, step=1, key=STEPS_WIDGET)
key = (result.content_key, measure, position_text, token, baseline, int(steps))

if st.button(tr("attribution.run"), key=RUN_BUTTON, type="primary"):
    ATTRIBUTION.clear()
    try:
        count_request()
        position = whole_number(position_text) if position_text else None
        if position_text and position is None:
            raise InputError(
                "error.attribution_position", position=position_text, last=result.seq_len - 1
            )
        target = resolve_target(model, result, measure=measure, position=position, token=token)
    except Exception as error:
        show_error(error)
        st.stop()
    # Stop reruns the script, which ends the run at its next Streamlit call (the progress bar);
    # every method finished by then is already in the session (on_partial).
    st.button(tr("attribution.stop"), key=STOP_BUTTON)
    bar = st.progress(0.0, text=tr("attribution.progress", done=0, total="…"))

    def show_progress(done: int, total: int) -> None:
        bar.progress(done / total, text=tr("attribution.progress", done=done, total=total))

    try:
        with heavy_work():
            done = attribute(
                model,
                result,
                target,
                baseline=baseline,
                steps=int(steps),
                progress=show_progress,
                on_partial=lambda part: ATTRIBUTION.put(key, (part, None)),
            )
            ATTRIBUTION.put(key, (done, agreement(model, result, done)))
    except Exception as error:
        show_error(error)
        st.stop()
    st.rerun()  # draw the result below, without the Stop button

kept = ATTRIBUTION.get(key)
if kept is None:
    st.stop()
found, agreed = kept
if agreed is None and found.scores():  # after a Stop: agreement over the methods that finished
    with heavy_work():
        agreed = agreement(model, result, found)
    ATTRIBUTION.put(key, (found, agreed))
if not found.completed:
    st.warning(tr("attribution.partial"))
target = found.target
if target.position is not None:
    st.markdown(
        tr(
            "attribution.target_decoder",
            measure=t(MEASURE_LABELS[target.measure], language),
            position=target.position,
            token=target.token,
        )
    )
st.caption(values_caption(found, lang=language))
if warning := delta_warning(found, lang=language):
    st.warning(warning)
if found.scores():
    shown = attributions_shown(result, found)  # words: each word's score sums its tokens'
    show_figure(attribution_heatmap(shown, lang=language), key="attribution_tokens")
    csv_download(
        tr("attribution.download_scores"),
        attribution_frame(shown, lang=language),
        "attributions.csv",
    )
if found.attention is not None:
    layer_col, head_col = st.columns(2)
    layer = layer_col.selectbox(tr("common.layer"), range(result.n_layers), key=LAYER_WIDGET)
    head = head_col.selectbox(tr("common.head"), range(result.n_heads), key=HEAD_WIDGET)
    show_figure(attention_gradient_heatmap(found, layer, head, lang=language), key="attn_grad")
if agreed is not None:
    sort_by = st.selectbox(
        tr("attribution.sort_by"),
        [m for m in METHODS if m in agreed.methods],
        key=SORT_WIDGET,
        format_func=lambda m, language=language: method_name(m, language),
    )
    show_figure(agreement_heatmap(agreed, sort_by, lang=language), key="agreement")
    st.subheader(tr("attribution.agreement_table"))
    table = agreement_frame(agreed, sort_by, lang=language)
    table_with_csv(table, tr("attribution.download"), "agreement.csv")
