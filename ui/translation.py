"""Translation page glue: run an encoder-decoder on a source and a given or generated target, and
show its three kinds of attention, the alignment view and each generated step."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.engine.seq2seq import Seq2SeqAnalysis, analyze_pair, translate
from core.methods.alignment import alignment
from core.methods.cross_words import cross_units
from core.methods.sampling import GenerationConfig
from core.policy.errors import AttnScopeError
from core.policy.settings import check_request
from ui.figures import show_figure
from ui.services import app_settings, count_request, heavy_work, model_named
from ui.state import Request, start_result
from ui.text import lang, show_error, tr
from ui.translation_cross import cross_head_stats_section, cross_views_section
from ui.widgets import table_with_csv
from viz.alignment import alignment_figure, alignment_heatmap
from viz.heatmaps import attention_heatmap, heatmap
from viz.labels import head_names, layer_names, position_labels

__all__ = [
    "RESULT_KEY",
    "alignment_section",
    "attention_section",
    "open_in_pages",
    "run_translation",
    "steps_section",
]

RESULT_KEY = "translation_result"
KIND_WIDGET = "translation_kind"
LAYER_WIDGET = "translation_layer"
HEAD_WIDGET = "translation_head"
ALIGN_LAYER_WIDGET = "translation_align_layer"
ALIGN_HEAD_WIDGET = "translation_align_head"
WORDS_WIDGET = "translation_words"
CROSS_WORDS_WIDGET = "translation_cross_words"
STEP_WIDGET = "translation_step"
KINDS = ("cross", "encoder", "decoder")


def run_translation(
    model_name: str, source: str, target: str | None, config: GenerationConfig | None
) -> None:
    """Run the model (teacher-forced on ``target``, or generating with ``config``) and keep the
    result in the session; a failure is one message."""
    try:
        settings = app_settings()
        check_request(settings, model=model_name, text=source, pair=target)
        count_request()
        model = model_named(model_name)
        with heavy_work(), st.spinner(tr("translation.computing")):
            if config is None:
                result = analyze_pair(model, source, target or "", max_tokens=settings.max_tokens)
            else:
                result = translate(model, source, config, max_tokens=settings.max_tokens)
    except AttnScopeError as error:
        show_error(error)
        return
    st.session_state[RESULT_KEY] = (model_name, result)


def _head_choice(n_heads: int, key: str) -> int | None:
    options = [None, *range(n_heads)]
    label = {None: tr("common.average_heads")}
    return st.selectbox(
        tr("common.head"), options, key=key, format_func=lambda h: label.get(h, str(h))
    )


def attention_section(model_name: str, result: Seq2SeqAnalysis) -> None:
    """One kind of attention (cross, encoder self, decoder self): a head or a layer's head
    average as a heatmap, the layer x head entropy and the most attended tokens; for
    cross-attention (over tokens or words) also the head and model views and head statistics."""
    names = {
        "cross": tr("translation.kind_cross"),
        "encoder": tr("translation.kind_encoder"),
        "decoder": tr("translation.kind_decoder"),
    }
    kind = st.radio(
        tr("translation.kind"), KINDS, format_func=names.get, key=KIND_WIDGET, horizontal=True
    )
    language = lang()
    if kind == "cross":
        words = st.toggle(tr("translation.words"), value=False, key=CROSS_WORDS_WIDGET)
        units = cross_units(model_named(model_name), result, words=words)
        cross = units.cross  # over tokens or words
        n_layers, n_heads = cross.n_layers, cross.n_heads
        queries, keys = cross.query_tokens, cross.key_tokens
    else:
        part = result.encoder if kind == "encoder" else result.decoder
        n_layers, n_heads, queries, keys = part.n_layers, part.n_heads, part.tokens, part.tokens
    left, right = st.columns(2)
    layer = left.selectbox(tr("common.layer"), range(n_layers), key=LAYER_WIDGET)
    with right:
        head = _head_choice(n_heads, HEAD_WIDGET)
    source = cross if kind == "cross" else part
    weights = source.layer_average(layer) if head is None else source.head(layer, head)
    title = tr(
        "translation.heatmap_title",
        kind=names[kind],
        layer=layer,
        head=tr("common.average_heads") if head is None else head,
    )
    if kind == "cross":
        fig = heatmap(
            weights.numpy(),
            kind="query_key",
            x=position_labels(keys),
            y=position_labels(queries),
            title=title,
            value_name=tr("heatmap.weight"),
            scale="weight",
            zmin=0.0,
            zmax=float(max(weights.max(), 1e-6)),
            lang=language,
        )
    else:
        fig = attention_heatmap(weights, queries, title, language)
    show_figure(fig, key=f"translation_{kind}_heatmap")
    if kind == "cross":
        cross_views_section(units, layer, head, LAYER_WIDGET, HEAD_WIDGET)
    entropy = source.normalized_head_entropy  # (L, H)
    name = tr("entropy.name_normalized")
    show_figure(
        heatmap(
            entropy.numpy(),
            kind="layer_head",
            x=head_names(n_heads, language),
            y=layer_names(n_layers, language),
            title=tr("entropy.title", name=name),
            value_name=name,
            scale="statistic",
            zmin=0.0,
            zmax=1.0,
            cell_values=True,
            lang=language,
        ),
        key=f"translation_{kind}_entropy",
    )
    rows = [
        {tr("common.layer"): r.layer, tr("translation.token"): r.token, "share": round(r.share, 4)}
        for r in source.most_attended(3)
    ]
    table_with_csv(pd.DataFrame(rows), tr("translation.csv"), f"most-attended-{kind}.csv")
    if kind == "cross":
        cross_head_stats_section(units)


def alignment_section(model_name: str, result: Seq2SeqAnalysis) -> None:
    """The alignment view of a chosen layer's head average (or one head), over words or tokens."""
    left, middle, right = st.columns(3)
    cross = result.cross
    last = cross.n_layers - 1
    layer = left.selectbox(
        tr("common.layer"), range(cross.n_layers), index=last, key=ALIGN_LAYER_WIDGET
    )
    with middle:
        head = _head_choice(cross.n_heads, ALIGN_HEAD_WIDGET)
    words = right.toggle(tr("translation.words"), value=True, key=WORDS_WIDGET)
    found = alignment(model_named(model_name), result, layer, head, words=words)
    show_figure(alignment_figure(found, lang=lang()), key="translation_alignment")
    show_figure(alignment_heatmap(found, lang=lang()), key="translation_alignment_heatmap")


def steps_section(result: Seq2SeqAnalysis) -> None:
    """Each generated token's cross-attention at the step that wrote it (head average of the
    last layer) and the candidates it was chosen from."""
    if not result.steps:
        return
    st.subheader(tr("translation.steps"))
    last = len(result.steps) - 1
    index = st.slider(tr("generate.step"), 0, max(last, 1), value=last, key=STEP_WIDGET)
    step = result.steps[min(index, last)]
    st.text(tr("translation.step_token", token=step.token, position=step.position))
    row = step.cross[-1].mean(dim=0)  # (T_src,)
    labels = position_labels(result.source_tokens)
    fig = heatmap(
        row.unsqueeze(0).numpy(),
        kind="head_position",
        x=labels,
        y=[step.token],
        title=tr("translation.step_title", token=step.token),
        value_name=tr("heatmap.weight"),
        scale="weight",
        zmin=0.0,
        zmax=float(max(row.max(), 1e-6)),
        lang=lang(),
    )
    show_figure(fig, key="translation_step_row")
    candidates = pd.DataFrame(step.candidates, columns=[tr("translation.token"), "p"])
    st.dataframe(candidates, hide_index=True)


def open_in_pages(model_name: str, result: Seq2SeqAnalysis) -> None:
    """Make the encoder's or the decoder's self-attention the session's result, so every
    other page (heatmaps, views, statistics, heads) shows it."""
    left, right = st.columns(2)
    parts = (
        (left, result.encoder, "encoder", tr("translation.open_encoder")),
        (right, result.decoder, "decoder", tr("translation.open_decoder")),
    )
    for column, part, kind, label in parts:
        if column.button(label, key=f"translation_open_{kind}"):
            start_result(part, Request(model_name, part.text, None, part.max_tokens, None))
            st.success(tr("translation.opened"))
