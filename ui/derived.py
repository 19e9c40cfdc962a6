"""What pages compute from the session's result, each kept in its bounded per-session store
(:mod:`ui.state`) under a content key: recomputed layers of a long input, the analysis the views
show (raw, rollout or norm-based; tokens or words), encoded view payloads, head statistics and
predictions; and the generation a stream (or a Stop) leaves behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import streamlit as st

from core import Analysis, AttnScopeError, Generation, with_layers
from core.methods.attribution import word_attributions
from core.methods.effective import EffectiveMode, effective_analysis
from core.methods.head_stats import HeadStats, QueryScope
from core.methods.predictions import Predictions, predict
from core.methods.words import find_words, word_analysis
from ui.services import heavy_work, model_named, model_of
from ui.state import (
    CJK_KEY,
    GENERATION_KEY,
    GENERATION_PENDING_KEY,
    HEAD_STATS,
    LAYERS,
    PAYLOADS,
    PREDICTIONS,
    ROLLOUT_SINK_KEY,
    ROLLOUT_START_KEY,
    SHOWN,
    WORDS_KEY,
)
from ui.text import show_error, tr

if TYPE_CHECKING:
    from core.methods.attribution import Attributions


def ensure_layers(result: Analysis, layers: list[int]) -> Analysis:
    """``result`` holding the weights of ``layers``: long inputs keep statistics only, so a
    layer on screen is recomputed (a forward pass that stops after it) and kept for a while."""
    missing = [layer for layer in layers if result.layer_weights[layer] is None]
    if not missing:
        return result
    # Keyed by content, so two analyses of a session (Compare holds a second one) never get
    # each other's weights.
    key = result.content_key
    kept = {layer: LAYERS.get((key, layer)) for layer in missing}
    result = result.holding({layer: w for layer, w in kept.items() if w is not None})
    still = [layer for layer in missing if result.layer_weights[layer] is None]
    if not still:
        return result
    label = tr("run.recomputing", layers=", ".join(map(str, still)))
    with heavy_work(), st.spinner(label):
        fuller = with_layers(model_of(result), result, still)
    for layer in still:
        LAYERS.put((key, layer), fuller.layer_weights[layer])
    return fuller


def attributions_shown(result: Analysis, found: Attributions) -> Attributions:
    """``found`` over tokens, or over words when the sidebar asks for words (each word's score
    the sum of its tokens', :func:`~core.methods.attribution.word_attributions`), said in a
    caption."""
    if not st.session_state.get(WORDS_KEY):
        return found
    words = find_words(model_of(result), result, cjk=st.session_state.get(CJK_KEY, "character"))
    st.caption(tr("attribution.words_note"))
    return word_attributions(found, words.groups, words.labels)


def rollout_options(result: Analysis) -> dict[str, object]:
    """The attention pages' rollout options (leave the sink out; the first layer rolled),
    the start clamped to ``result``'s layers."""
    start = int(st.session_state.get(ROLLOUT_START_KEY, 0))
    return {
        "exclude_sink": bool(st.session_state.get(ROLLOUT_SINK_KEY, False)),
        "start_layer": min(max(start, 0), result.n_layers - 1),
    }


def display_key(result: Analysis, mode: EffectiveMode = "raw") -> tuple:
    """What :func:`display_result` shows for ``result``, as a content key for the caches of
    things built from it: the analysis' content, the mode (with rollout's options), and the
    sidebar's words choice."""
    words = bool(st.session_state.get(WORDS_KEY))
    options = tuple(rollout_options(result).items()) if mode == "rollout" else ()
    return (result.content_key, mode, words, st.session_state.get(CJK_KEY, "character"), options)


def word_count(result: Analysis) -> int:
    """How many words the views show for ``result`` with the sidebar's words choice (grouping
    only: no attention is merged)."""
    cjk = st.session_state.get(CJK_KEY, "character")
    return find_words(model_of(result), result, cjk=cjk).n_words


def display_result(result: Analysis, mode: EffectiveMode = "raw") -> Analysis:
    """What the views show for ``result``: its raw weights, rollout or norm-based attention, over
    tokens or (sidebar toggle) words. Computed once per session and choice; when a choice
    cannot be made (an input too long for it), says why and shows the raw tokens."""
    key = display_key(result, mode)
    _, _, words, cjk, options = key
    if mode == "raw" and not words:
        return result
    shown = SHOWN.get(key)
    if shown is None:
        try:
            with heavy_work(), st.spinner(tr("effective.computing")):
                model = model_of(result)
                shown = effective_analysis(model, result, mode, **dict(options))
                if words:
                    shown = word_analysis(model, shown, cjk=cjk)
        except AttnScopeError as error:
            show_error(error)
            return result
        SHOWN.put(key, shown)
    return shown


Payload = TypeVar("Payload", bytes, str)


def cached_payload(key: tuple, build: Callable[[], Payload]) -> Payload:
    """An encoded view (payload bytes or a page of HTML), built once per session for ``key``
    (which starts from a :func:`display_key`)."""
    return PAYLOADS.get_or_make(key, build)


def head_stats(result: Analysis, queries: QueryScope = "all") -> HeadStats:
    """Every head's statistics over what the views show for ``result`` (tokens or words),
    averaged over ``queries`` (every query, or those with a choice)."""
    shown = display_result(result)

    def make() -> HeadStats:
        with heavy_work(), st.spinner(tr("heads.computing")):
            return HeadStats.from_analysis(shown, model_of(result), queries=queries)

    return HEAD_STATS.get_or_make((display_key(result), queries), make)


def predictions(result: Analysis, top_k: int) -> Predictions:
    """The top ``top_k`` next tokens at every position and the logit lens, from one pass."""

    def make() -> Predictions:
        with heavy_work(), st.spinner(tr("predict.computing")):
            return predict(model_of(result), result, top_k=top_k)

    return PREDICTIONS.get_or_make((result.content_key, top_k), make)


def finish_generation() -> bool:
    """The steps streamed so far (all of them, or those made before a Stop) become the session's
    :class:`~core.methods.generate.Generation`, built once rather than after every token (each
    build decodes the whole sequence again). True when a Stop came before the first token:
    nothing was made, and the previous generation (if any) stays."""
    pending = st.session_state.pop(GENERATION_PENDING_KEY, None)
    if pending is None:
        return False
    name, prompt, config, steps = pending
    if not steps:
        return True
    st.session_state[GENERATION_KEY] = Generation.from_steps(
        model_named(name), prompt, config, steps
    )
    return False
