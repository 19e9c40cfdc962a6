"""The Views page's sections beyond AttnScope's own head and model view: BertViz through its
layer and head filters, the neuron view, and the downloads of the attention weights and of an
offline HTML report."""

from __future__ import annotations

from functools import partial

import streamlit as st

from core import Analysis, AttnScopeError
from core.engine.budget import DOWNLOAD_BUDGET_BYTES, fits
from core.engine.export import FORMATS, WeightsFormat, weights_file, weights_file_bytes
from core.engine.run import with_layers
from core.methods.neuron import NeuronLayer, neuron_layer
from core.policy.i18n import Lang
from ui.derived import cached_payload, ensure_layers
from ui.services import heavy_work, model_of
from ui.state import (
    BERTVIZ_HEADS_KEY,
    BERTVIZ_LAYERS_KEY,
    LAYER_KEY,
    NEURON_QUERY_KEY,
    NEURONS,
    WEIGHTS_FORMAT_KEY,
    WEIGHTS_HEADS_KEY,
    WEIGHTS_LAYERS_KEY,
)
from ui.text import show_error, tr
from ui.widgets import attention_view, head_selector, layer_selector
from viz import bertviz_html, estimate_bertviz_bytes, view_height
from viz.attention_view import encode_neuron_view
from viz.bertviz_views import BERTVIZ_BYTE_BUDGET, BertvizView, bertviz_budget
from viz.report import report_html

NEURON_LAYER_WIDGET = "neuron_layer"
NEURON_HEAD_WIDGET = "neuron_head"


def bertviz_offered(result: Analysis) -> bool:
    """Whether BertViz can draw at least one head of ``result`` within its byte budget."""
    return estimate_bertviz_bytes(result.seq_len, 1, 1) <= BERTVIZ_BYTE_BUDGET


def bertviz_not_offered_caption(result: Analysis) -> None:
    one_head = estimate_bertviz_bytes(result.seq_len, 1, 1)
    st.caption(
        tr(
            "views.bertviz_not_offered",
            megabytes=f"{one_head / 1e6:.0f}",
            limit=f"{BERTVIZ_BYTE_BUDGET / 1e6:.0f}",
        )
    )


def _choice(key: str, count: int, default: tuple[int, ...]) -> None:
    """The layer or head choice under ``key``: kept within ``count``, else the default."""
    if key in st.session_state:  # a choice from another view kind may not fit this one
        st.session_state[key] = [i for i in st.session_state[key] if i < count]
    else:
        st.session_state[key] = list(default)


def bertviz_section(base: Analysis, view_key: tuple, view: BertvizView) -> None:
    """BertViz's ``view`` of ``base`` through its layer and head filters, which start from what
    fits BertViz's byte budget (everything when it all fits); a selection over it is refused."""
    limit = f"{BERTVIZ_BYTE_BUDGET / 1e6:.0f}"
    start = bertviz_budget(base, layer=min(st.session_state[LAYER_KEY], base.n_layers - 1))
    _choice(BERTVIZ_LAYERS_KEY, base.n_layers, start.layers)
    _choice(BERTVIZ_HEADS_KEY, base.n_heads, start.heads)
    if start.reduced:
        everything = estimate_bertviz_bytes(base.seq_len, base.n_layers, base.n_heads)
        st.caption(
            tr(
                "views.bertviz_filtered",
                layers=base.n_layers,
                heads=base.n_heads,
                megabytes=f"{everything / 1e6:.0f}",
                limit=limit,
            )
        )
    left, right = st.columns(2)
    with left:
        layers = st.multiselect(tr("views.layers"), range(base.n_layers), key=BERTVIZ_LAYERS_KEY)
    with right:
        heads = st.multiselect(tr("views.heads"), range(base.n_heads), key=BERTVIZ_HEADS_KEY)
    if not layers or not heads:
        st.info(tr("views.pick_one"))
        return
    size = estimate_bertviz_bytes(base.seq_len, len(layers), len(heads))
    if size > BERTVIZ_BYTE_BUDGET:
        st.warning(tr("views.bertviz_too_large", megabytes=f"{size / 1e6:.0f}", limit=limit))
        return
    # Built once per selection: a new page (and nonce) each rerun would reload the frame.
    shown = ensure_layers(base, layers)
    html = cached_payload(
        ("bertviz", view_key, view, tuple(layers), tuple(heads)),
        lambda: bertviz_html(shown, view, layers=tuple(layers), heads=tuple(heads)),
    )
    st.iframe(html, height=view_height(view, base.seq_len, len(layers), base.n_heads))
    st.caption(tr("views.bertviz_caption"))


def _query_label(position: int, tokens: tuple[str, ...]) -> str:
    return f"{position}: {tokens[position]}"


def _default_query(result: Analysis) -> int:
    """The last token that is not a special one (the last token, if all are)."""
    plain = [i for i, special in enumerate(result.special) if not special]
    return plain[-1] if plain else result.seq_len - 1


def neuron_section(result: Analysis, language: Lang, *, derived_shown: bool) -> None:
    """The neuron view of ``result`` (a runnable analysis: the model's own tokens) for the layer,
    head and query token chosen here."""
    if derived_shown:
        st.caption(tr("views.neuron_raw"))
    left, middle, right = st.columns(3)
    with left:
        layer = layer_selector(result, NEURON_LAYER_WIDGET)
    with middle:
        head = head_selector(result, NEURON_HEAD_WIDGET, with_average=False)
    with right:
        if st.session_state.get(NEURON_QUERY_KEY) not in range(result.seq_len):
            st.session_state[NEURON_QUERY_KEY] = _default_query(result)
        query = st.selectbox(
            tr("views.neuron_query"),
            range(result.seq_len),
            key=NEURON_QUERY_KEY,
            format_func=partial(_query_label, tokens=result.tokens),
        )

    def capture() -> NeuronLayer:
        with heavy_work(), st.spinner(tr("views.neuron_computing", layer=layer)):
            return neuron_layer(model_of(result), result, layer)

    try:
        captured = NEURONS.get_or_make((result.content_key, layer), capture)
    except AttnScopeError as error:
        show_error(error)
        return
    payload = cached_payload(
        ("neuron", result.content_key, layer, head, query, language),
        lambda: (
            encode_neuron_view(
                result, captured.view(head, query), n_kv_heads=captured.n_kv_heads, lang=language
            ).data
        ),
    )
    attention_view(payload)
    st.caption(tr("views.neuron_caption"))


def _format_label(fmt: str) -> str:
    return f".{fmt}"


def weights_download(base: Analysis) -> None:
    """The weights of the layers and heads chosen, as .npz or .safetensors with the tokens; the
    file is built when the button is pressed, and refused past the download budget."""
    with st.expander(tr("views.download_title")):
        _choice(
            WEIGHTS_LAYERS_KEY,
            base.n_layers,
            (min(st.session_state[LAYER_KEY], base.n_layers - 1),),
        )
        _choice(WEIGHTS_HEADS_KEY, base.n_heads, tuple(range(base.n_heads)))
        left, middle, right = st.columns([2, 2, 1])
        with left:
            layers = st.multiselect(
                tr("views.layers"), range(base.n_layers), key=WEIGHTS_LAYERS_KEY
            )
        with middle:
            heads = st.multiselect(tr("views.heads"), range(base.n_heads), key=WEIGHTS_HEADS_KEY)
        with right:
            fmt: WeightsFormat = st.radio(
                tr("views.download_format"),
                list(FORMATS),
                key=WEIGHTS_FORMAT_KEY,
                format_func=_format_label,
            )
        if not layers or not heads:
            st.info(tr("views.pick_one"))
            return
        size = weights_file_bytes(base, layers, heads)
        megabytes = f"{size / 1e6:.1f}"
        if size > DOWNLOAD_BUDGET_BYTES:
            limit = f"{DOWNLOAD_BUDGET_BYTES / 1e6:.0f}"
            st.warning(tr("views.download_too_large", megabytes=megabytes, limit=limit))
            return
        shown = f"{size / 1e3:.0f} kB" if size < 1e6 else f"{megabytes} MB"
        st.caption(tr("views.download_size", size=shown))
        model = model_of(base) if any(base.layer_weights[i] is None for i in layers) else None
        chosen = (tuple(layers), tuple(heads))

        def build() -> bytes:  # runs when the button is pressed, outside the script run
            held = base if model is None else with_layers(model, base, chosen[0])
            return weights_file(held, *chosen, fmt)

        st.download_button(
            tr("views.download_button", format=f".{fmt}"),
            build,
            file_name=f"attention_{base.model_name}_{base.seq_len}.{fmt}".replace("/", "_"),
            mime=FORMATS[fmt],
        )


def report_download(base: Analysis, language: Lang) -> None:
    """The offline HTML report of ``base`` (``viz/report.py``), built when the button is
    pressed; a long input's layers are recomputed for it while they fit the memory budget."""
    every = tuple(range(base.n_layers))
    missing = len(base.held_layers) < base.n_layers
    model = None
    if missing and base.runnable and fits(base.n_layers, base.n_heads, base.seq_len):
        model = model_of(base)

    def build() -> bytes:  # runs when the button is pressed, outside the script run
        held = base if model is None else with_layers(model, base, every)
        return report_html(held, lang=language).encode("utf-8")

    st.download_button(
        tr("views.report_button"),
        build,
        file_name=f"attnscope_{base.model_name}_{base.seq_len}.html".replace("/", "_"),
        mime="text/html",
        help=tr("views.report_help"),
        icon=":material/description:",
    )
