"""Compare page: a second text (or a second model with the same tokenizer and shape) against
the current result: attention differences where the tokens align, and head-statistic changes."""

import streamlit as st

from core import BUILTIN_MODELS, check_text
from core.engine.budget import fits
from core.methods.compare import compare
from core.methods.head_stats import HEAD_METRICS
from core.policy.errors import AttnScopeError, InputError
from core.policy.i18n import t
from ui.derived import ensure_layers
from ui.figures import show_figure
from ui.services import analysis_for, count_request, heavy_work, model_named
from ui.state import COMPARISON
from ui.text import lang, show_error, tr
from ui.widgets import head_selector, layer_selector, require_result, table_with_csv
from viz.heatmaps import difference_heatmap
from viz.labels import METRIC_KEYS
from viz.tables import changes_table

TEXT_WIDGET = "compare_text"
MODEL_WIDGET = "compare_model"
RUN_BUTTON = "compare_run"
LAYER_WIDGET = "compare_layer"
HEAD_WIDGET = "compare_head"
METRIC_WIDGET = "compare_metric"
SAME_MODEL = "same"

language = lang()
st.header(tr("compare.header"))
result = require_result(in_words=False)  # positions are aligned over tokens
st.caption(tr("compare.caption"))
st.session_state.setdefault(TEXT_WIDGET, result.text)
text_b = st.text_area(tr("compare.text_b"), key=TEXT_WIDGET, height=100)
model_b = st.selectbox(
    tr("compare.model_b"),
    [SAME_MODEL, *BUILTIN_MODELS],
    key=MODEL_WIDGET,
    format_func=lambda m, language=language: (
        t("compare.same_model", language) if m == SAME_MODEL else BUILTIN_MODELS[m].title
    ),
)
if st.button(tr("compare.run"), key=RUN_BUTTON, type="primary"):
    try:
        check_text(text_b)
        count_request()
        name = result.model_name if model_b == SAME_MODEL else model_b
        with heavy_work(), st.spinner(tr("compare.running")):
            model = model_named(name)
            other = analysis_for(model, text_b, result.pair, result.max_tokens)
            for r in (result, other):  # each by its own model's size: model B may be larger
                if not fits(r.n_layers, r.n_heads, r.seq_len):
                    raise InputError("error.compare_too_long", tokens=r.seq_len)
            both = [ensure_layers(r, list(range(r.n_layers))) for r in (result, other)]
            comparison = compare(*both)
    except (AttnScopeError, ValueError) as error:
        show_error(error)
    else:
        COMPARISON.put(result.content_key, comparison)

comparison = COMPARISON.get(result.content_key)
if comparison is not None:
    if comparison.identical:
        st.info(tr("compare.identical"))
    else:
        st.caption(
            tr(
                "compare.aligned",
                aligned=comparison.n_aligned,
                a=comparison.a.seq_len,
                b=comparison.b.seq_len,
            )
        )
    if comparison.n_aligned:
        left, right = st.columns(2)
        with left:
            layer = layer_selector(comparison.a, LAYER_WIDGET)
        with right:
            head = head_selector(comparison.a, HEAD_WIDGET)
        show_figure(
            difference_heatmap(comparison, layer, head, lang=language), key="difference_heatmap"
        )
    metric = st.selectbox(
        tr("compare.metric"),
        [None, *HEAD_METRICS],
        key=METRIC_WIDGET,
        format_func=lambda m, language=language: (
            t("compare.all_metrics", language) if m is None else t(METRIC_KEYS[m], language)
        ),
    )
    table = changes_table(comparison, metric, lang=language)
    table_with_csv(table, tr("compare.download"), "head_changes.csv")
