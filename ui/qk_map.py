"""Heads page section: the query-key map (AttentionViz) of one head for the current text."""

from __future__ import annotations

from functools import partial

import streamlit as st

from core import Analysis, AttnScopeError
from core.methods.qk_map import QKMap, qk_map_of_analysis
from core.policy.i18n import Lang, t
from ui.figures import show_figure
from ui.services import heavy_work, model_of
from ui.state import QK_MAPS
from ui.text import show_error, tr
from ui.widgets import head_selector, layer_selector, table_with_csv
from viz.qk_map import COLOR_BY, COLOR_KEYS, qk_map_figure, qk_map_frame

__all__ = ["qk_section", "current_qk_map"]

SHOW_WIDGET = "qk_show"
LAYER_WIDGET = "qk_layer"
HEAD_WIDGET = "qk_head"
COLOR_WIDGET = "qk_color"
MAX_TOKENS = 2000  # the current text is at most this long on the map (sampled beyond)


def current_qk_map(result: Analysis, layer: int, head: int) -> QKMap:
    """The map of ``head`` in ``layer`` for the current text, once per session and head."""

    def make() -> QKMap:
        with heavy_work(), st.spinner(tr("qk.computing")):
            return qk_map_of_analysis(model_of(result), result, layer, head, max_tokens=MAX_TOKENS)

    return QK_MAPS.get_or_make((result.content_key, layer, head), make)


def _color_label(option: str, language: Lang) -> str:
    return t(COLOR_KEYS[option], language)


def qk_section(result: Analysis, language: Lang) -> None:
    """The section, shown when its toggle is on."""
    st.subheader(tr("qk.header"))
    if not st.toggle(tr("qk.show"), key=SHOW_WIDGET, help=tr("qk.caption")):
        return
    st.caption(tr("qk.caption"))
    left, middle, right = st.columns(3)
    with left:
        layer = layer_selector(result, LAYER_WIDGET)
    with middle:
        head = head_selector(result, HEAD_WIDGET, with_average=False)
    with right:
        color_by = st.selectbox(
            tr("qk.color_by"),
            COLOR_BY,
            key=COLOR_WIDGET,
            format_func=partial(_color_label, language=language),
        )
    try:
        found = current_qk_map(result, layer, head)
    except AttnScopeError as error:
        show_error(error)
        return
    if found.rotary:
        st.caption(tr("qk.rope_note"))
    show_figure(qk_map_figure(found, color_by, language), key="qk_map")
    table_with_csv(qk_map_frame(found, lang=language), tr("qk.download"), "query_key_map.csv")
