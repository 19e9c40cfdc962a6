"""Bring your own model in Streamlit: a user's ``.py`` file (uploaded or pasted; only where the
server allows a model's own code, never in demo mode, and with the sidebar's remote-code switch
on), a text, one pass with the attention captured, then the heatmap, the head view and the head
statistics of what it recorded (:mod:`core.engine.byo`)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import streamlit as st

from core import Analysis, AttnScopeError
from core.engine.byo import load_user_model, require_user_code, user_analysis
from core.methods.head_stats import HEAD_METRICS, HeadStats
from core.policy.i18n import Lang, t
from ui.figures import show_figure
from ui.services import app_settings, heavy_work
from ui.state import REMOTE_CODE_KEY
from ui.text import kind_label, md, show_error
from ui.widgets import attention_view, table_with_csv
from viz.attention_view import encode_head_view
from viz.heatmaps import head_heatmap, layer_heatmap, metric_heatmap
from viz.labels import METRIC_KEYS, metric_caption
from viz.tables import head_stats_frame

__all__ = ["EXAMPLE_FILE", "render_byo"]

EXAMPLE_FILE = Path(__file__).resolve().parents[1] / "assets" / "examples" / "byo_nanogpt.py"
UPLOAD_WIDGET = "byo_upload"
CODE_WIDGET = "byo_code"
TEXT_WIDGET = "byo_text"
EXAMPLE_WIDGET = "byo_example"
RUN_WIDGET = "byo_run"
LAYER_WIDGET = "byo_layer"
HEAD_WIDGET = "byo_head"
METRIC_WIDGET = "byo_metric"
VIEW_WIDGET = "byo_attention_view"
RESULT_KEY = "byo_result"  # the last analysis of the user's model: one per session
DEFAULT_TEXT = "the cat sat on the mat. the cat sat on the mat."


def _trusted() -> bool:
    return app_settings().allow_remote_code and bool(st.session_state.get(REMOTE_CODE_KEY))


def _load_example() -> None:
    st.session_state[CODE_WIDGET] = EXAMPLE_FILE.read_text(encoding="utf-8")


def _head_label(head: int | None, language: Lang) -> str:
    if head is None:
        return t("common.average_heads", language)
    return t("common.head_n", language, head=head)


def _within(widget_key: str, options: list) -> None:
    """Keep a kept choice that the new result no longer offers from breaking the widget."""
    if st.session_state.get(widget_key, options[0]) not in options:
        st.session_state[widget_key] = options[0]


def _run(lang: Lang) -> None:
    settings = app_settings()
    upload = st.session_state.get(UPLOAD_WIDGET)
    source = upload.getvalue() if upload is not None else st.session_state.get(CODE_WIDGET, "")
    name = Path(upload.name).name if upload is not None else "pasted.py"
    try:
        with heavy_work(), st.spinner(t("byo.running", lang)):
            user = load_user_model(source, settings=settings, trusted=_trusted(), file_name=name)
            text = st.session_state.get(TEXT_WIDGET, "")
            result = user_analysis(user, text, max_tokens=settings.max_tokens)
    except AttnScopeError as error:
        show_error(error)
        return
    st.session_state[RESULT_KEY] = result


def show_byo_result(result: Analysis, lang: Lang) -> None:
    """The heatmap, head view and head statistics of a captured analysis."""
    st.caption(
        t(
            "byo.summary",
            lang,
            name=md(result.model_name),
            layers=result.n_layers,
            heads=result.n_heads,
            tokens=result.seq_len,
            kind=kind_label(result.kind, lang),
        )
    )
    if result.truncated:
        st.warning(t("byo.truncated", lang, tokens=result.seq_len, total=result.n_input_tokens))
    layers, heads = list(range(result.n_layers)), [None, *range(result.n_heads)]
    _within(LAYER_WIDGET, layers)
    _within(HEAD_WIDGET, heads)
    left, right = st.columns(2)
    layer = left.selectbox(t("common.layer", lang), layers, key=LAYER_WIDGET)
    head = right.selectbox(
        t("common.head", lang),
        heads,
        key=HEAD_WIDGET,
        format_func=partial(_head_label, language=lang),
    )
    if head is None:
        figure = layer_heatmap(result, layer, lang=lang)
    else:
        figure = head_heatmap(result, layer, head, lang=lang)
    show_figure(figure, key="byo_heatmap", name="byo_heatmap")

    st.markdown(f"**{t('byo.head_view', lang)}**")
    attention_view(encode_head_view(result, layer, lang=lang).data, key=VIEW_WIDGET)

    st.markdown(f"**{t('byo.head_stats', lang)}**")
    stats = HeadStats.from_analysis(result)
    metric = st.selectbox(
        t("heads.metric", lang),
        list(HEAD_METRICS),
        key=METRIC_WIDGET,
        format_func=lambda m, language=lang: t(METRIC_KEYS[m], language),
    )
    st.caption(metric_caption(metric, lang))
    show_figure(metric_heatmap(stats, metric, lang=lang), key="byo_metric_heatmap")
    table_with_csv(
        head_stats_frame(stats, lang=lang), t("byo.download_stats", lang), "byo_head_stats.csv"
    )


def render_byo(lang: Lang) -> None:
    """The whole "Bring your own model" section: the contract, the refusal where user code may
    not run, the file or code and a text, Run, then the views of the last result."""
    st.subheader(t("byo.header", lang))
    st.caption(t("byo.caption", lang))
    with st.expander(t("byo.contract_title", lang)):
        st.markdown(t("byo.contract", lang))
    try:
        require_user_code(app_settings(), trusted=_trusted())
    except AttnScopeError as error:
        show_error(error)
        return
    st.file_uploader(t("byo.upload", lang), type=["py"], key=UPLOAD_WIDGET)
    st.button(t("byo.example", lang), key=EXAMPLE_WIDGET, on_click=_load_example)
    st.text_area(t("byo.paste", lang), key=CODE_WIDGET, height=220)
    st.session_state.setdefault(TEXT_WIDGET, DEFAULT_TEXT)
    st.text_input(t("byo.text", lang), key=TEXT_WIDGET)
    if st.button(t("byo.run", lang), key=RUN_WIDGET, type="primary"):
        _run(lang)
    result = st.session_state.get(RESULT_KEY)
    if result is None:
        st.info(t("byo.prompt", lang))
        return
    show_byo_result(result, lang)
