"""Streamlit glue of the Long context panel and of the heatmap of a long text: the overview and
window of a layer, and the simulated KV-cache eviction, each computed on demand under the
server's analysis gate and kept in a per-session store. The work is core's
(:mod:`core.methods.long_view`, :mod:`core.methods.kv_eviction`)."""

from __future__ import annotations

import streamlit as st

from core.engine.analysis import Analysis
from core.methods.kv_eviction import BUDGETS, Eviction, simulate_eviction
from core.methods.long_view import LayerWindow, layer_top_keys, layer_window
from ui.figures import show_figure
from ui.services import heavy_work, model_of
from ui.state import EVICTIONS, LONG_VIEWS
from ui.text import lang, tr
from ui.widgets import csv_download
from viz.attention_view import SPARSE_TOP_K, encode_model_view, encode_top_keys
from viz.long_context import eviction_figure, eviction_frame, overview_figure, window_figure

__all__ = [
    "LONG_HEATMAP_TOKENS",
    "eviction_section",
    "long_head_view",
    "long_heatmap",
    "long_model_view",
]

# Above this many tokens a heatmap is an overview plus a window: a T x T figure of 1024 tokens
# is a million cells, about what a browser still draws.
LONG_HEATMAP_TOKENS = 1024
WINDOW_SIZES = (64, 128, 256)


def _window(result: Analysis, layer: int, rows: range, keys: range) -> LayerWindow:
    key = (result.content_key, layer, (rows.start, rows.stop), (keys.start, keys.stop))
    found = LONG_VIEWS.get(key)
    if found is None:
        with heavy_work(), st.spinner(tr("long.computing_layer", layer=layer)):
            found = layer_window(model_of(result), result, layer, rows, keys)
        LONG_VIEWS.put(key, found)
    return found


def long_heatmap(result: Analysis, layer: int, head: int | None, *, key: str) -> None:
    """A long text's map of ``layer`` (``head`` None: the head average): a max-pooled overview
    and, under it, the exact weights of a window the reader places."""
    language = lang()
    st.info(tr("long.heatmap_note", tokens=result.seq_len, limit=LONG_HEATMAP_TOKENS))
    size_col, row_col, key_col = st.columns(3)
    with size_col:
        size = st.selectbox(tr("long.window_size"), WINDOW_SIZES, index=1, key=f"{key}_size")
    last = max(0, result.seq_len - size)
    with row_col:
        row0 = st.number_input(
            tr("long.window_rows"), 0, last, value=last, step=size // 2, key=f"{key}_rows"
        )
    with key_col:
        key0 = st.number_input(
            tr("long.window_keys"), 0, last, value=0, step=size // 2, key=f"{key}_keys"
        )
    rows, keys = range(int(row0), int(row0) + size), range(int(key0), int(key0) + size)
    found = _window(result, layer, rows, keys)
    who = tr("long.head_average") if head is None else f"{tr('common.head')} {head}"
    overview = found.overview.mean(dim=0) if head is None else found.overview[head]
    title = tr("long.overview_title", layer=layer, who=who, size=overview.shape[-1])
    show_figure(
        overview_figure(overview, result.seq_len, title=title, lang=language), key=f"{key}_overview"
    )
    window = found.window.mean(dim=0) if head is None else found.window[head]
    title = tr(
        "long.window_title",
        rows=f"{found.rows.start}–{found.rows.stop - 1}",
        keys=f"{found.keys.start}–{found.keys.stop - 1}",
    )
    figure = window_figure(
        window, list(result.tokens), found.rows, found.keys, title=title, lang=language
    )
    show_figure(figure, key=f"{key}_window")


def eviction_section(result: Analysis) -> None:
    """The simulated KV-cache eviction (decoders): a button, then the kept mass per layer at a
    chosen budget and the table of every budget."""
    st.subheader(tr("long.eviction_header"))
    st.caption(tr("long.eviction_caption"))
    if result.kind != "decoder":
        st.info(tr("error.eviction_encoder"))
        return
    eviction: Eviction | None = EVICTIONS.get(result.content_key)
    if eviction is None:
        if not st.button(tr("long.eviction_run"), key="long_eviction_run"):
            return
        bar = st.progress(0.0, text=tr("long.eviction_progress", done=0, total=result.n_layers))

        def heard(layer: int) -> None:
            done = layer + 1
            bar.progress(
                done / result.n_layers,
                text=tr("long.eviction_progress", done=done, total=result.n_layers),
            )

        with heavy_work():
            eviction = simulate_eviction(model_of(result), result, BUDGETS, progress=heard)
        bar.empty()
        EVICTIONS.put(result.content_key, eviction)
    budget = st.select_slider(
        tr("long.budget"), eviction.budgets, value=eviction.budgets[0], key="long_budget"
    )
    show_figure(eviction_figure(eviction, budget, lang=lang()), key="long_eviction")
    table = eviction_frame(eviction, lang=lang())
    csv_download(tr("long.eviction_download"), table, "kv_eviction.csv")


def long_head_view(result: Analysis, layer: int) -> bytes:
    """The head view's payload of ``layer`` of a long text: each row's strongest keys, gathered
    block by block by a pass that stops after the layer."""
    with heavy_work(), st.spinner(tr("long.computing_layer", layer=layer)):
        values, indices = layer_top_keys(model_of(result), result, layer, SPARSE_TOP_K)
    return encode_top_keys(result, layer, values, indices, lang=lang()).data


def long_model_view(result: Analysis) -> bytes:
    """The model view's payload of a long text: every head's thumbnail, no full-size detail."""
    return encode_model_view(result, None, lang=lang()).data
