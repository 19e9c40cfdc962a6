"""Heads page section: head detector scores (previous-token and duplicate-token on the text,
induction on repeated random tokens) as layer x head heatmaps and a table, and a custom pattern
scored against every head."""

from __future__ import annotations

from functools import partial

import streamlit as st
import torch

from core import Analysis, AttnScopeError
from core.methods.detector_scores import (
    DetectorScores,
    TextScores,
    detector_scores,
    score_pattern,
    text_scores,
)
from core.methods.detectors import CUSTOM_PATTERNS, custom_pattern
from core.policy.i18n import Lang, t
from ui.figures import show_figure
from ui.services import heavy_work, model_of
from ui.state import DETECTORS
from ui.text import show_error, tr
from ui.widgets import table_with_csv
from viz.detectors import DETECTOR_KEYS, detector_frame, detector_heatmap
from viz.heatmaps import attention_heatmap

__all__ = ["detector_section", "detector_results", "custom_scores"]

SHOW_WIDGET = "detectors_show"
SEED_WIDGET = "detectors_seed"
CUSTOM_WIDGET = "detectors_custom"
TARGET_WIDGET = "detectors_target"
OFFSET_WIDGET = "detectors_offset"
N_TOKENS, N_SEQUENCES = 20, 4  # induction: 4 sequences of 20 random tokens, repeated twice
# Catalogue keys: each score's caption and heatmap title; each custom pattern's name.
CAPTIONS = {
    "previous_token": ("detectors.previous_token_caption", "detectors.previous_token_title"),
    "duplicate_token": ("detectors.duplicate_token_caption", "detectors.duplicate_token_title"),
    "induction": ("detectors.induction_caption", "detectors.induction_title"),
}
PATTERN_NAMES = {
    "previous": "detectors.pattern_previous",
    "first_token": "detectors.pattern_first_token",
    "sentence_start": "detectors.pattern_sentence_start",
    "token": "detectors.pattern_token",
    "offset": "detectors.pattern_offset",
}


def detector_results(result: Analysis, seed: int) -> tuple[TextScores, DetectorScores]:
    """The text's previous- and duplicate-token scores and the model's induction measurement
    (``seed``), computed once per session for this result and seed."""

    def make() -> tuple[TextScores, DetectorScores]:
        with heavy_work(), st.spinner(tr("detectors.computing")):
            loaded = model_of(result)
            found = detector_scores(loaded, n_tokens=N_TOKENS, n_sequences=N_SEQUENCES, seed=seed)
            return text_scores(loaded, result), found

    return DETECTORS.get_or_make((result.content_key, "detectors", seed), make)


def custom_scores(result: Analysis, kind: str, offset: int, target: str) -> tuple:
    """``(pattern (T, T), scores (L, H))`` of a custom pattern on the current text."""
    pattern = custom_pattern(
        kind, result.tokens, result.special, causal=result.causal, offset=offset, target=target
    )

    def make() -> tuple:
        with heavy_work(), st.spinner(tr("detectors.computing")):
            return pattern, score_pattern(model_of(result), result, pattern)

    return DETECTORS.get_or_make((result.content_key, "custom", kind, offset, target), make)


def _pattern_label(kind: str, language: Lang) -> str:
    return t(PATTERN_NAMES[kind], language)


def _custom_section(result: Analysis, language: Lang) -> None:
    st.markdown(f"**{tr('detectors.custom_header')}**")
    st.caption(tr("detectors.custom_caption"))
    kind = st.selectbox(
        tr("detectors.custom_kind"),
        CUSTOM_PATTERNS,
        key=CUSTOM_WIDGET,
        format_func=partial(_pattern_label, language=language),
    )
    offset, target = 1, ""
    if kind == "offset":
        offset = int(st.number_input(tr("detectors.custom_offset"), -64, 64, 2, key=OFFSET_WIDGET))
    if kind == "token":
        default = next((tok for tok, s in zip(result.tokens, result.special) if s), ".")
        target = st.text_input(tr("detectors.custom_target"), default, key=TARGET_WIDGET)
    try:
        pattern, scores = custom_scores(result, kind, offset, target)
    except AttnScopeError as error:
        show_error(error)
        return
    if not pattern.any():
        st.warning(tr("detectors.custom_empty"))
        return
    title = t("detectors.custom_title", language, pattern=_pattern_label(kind, language))
    show_figure(
        detector_heatmap(scores, "custom", title=title, lang=language), key="detector_custom"
    )
    best = divmod(int(torch.nan_to_num(scores, nan=-1.0).argmax()), scores.shape[1])
    st.caption(
        tr("detectors.custom_best", layer=best[0], head=best[1], score=f"{scores[best]:.3f}")
    )
    table_with_csv(
        detector_frame({"custom": scores}, lang=language),
        tr("detectors.download"),
        "custom_pattern_scores.csv",
    )
    with st.expander(tr("detectors.custom_pattern")):
        show_figure(
            attention_heatmap(
                pattern,
                result.tokens,
                t("detectors.pattern_title", language, pattern=_pattern_label(kind, language)),
                lang=language,
            ),
            key="detector_pattern",
        )


def detector_section(result: Analysis, language: Lang) -> None:
    """The section, shown when its toggle is on (the induction measurement runs the model)."""
    st.subheader(tr("detectors.header"))
    if not st.toggle(tr("detectors.show"), key=SHOW_WIDGET, help=tr("detectors.caption")):
        return
    st.caption(tr("detectors.caption"))
    seed = int(st.number_input(tr("detectors.seed"), 0, 2**31 - 1, 0, key=SEED_WIDGET))
    try:
        on_text, random_tokens = detector_results(result, seed)
    except AttnScopeError as error:
        show_error(error)
        return
    scores = {
        "previous_token": on_text.previous_token,
        "duplicate_token": on_text.duplicate_token,
        "induction": random_tokens.induction,
    }
    tabs = st.tabs([t(DETECTOR_KEYS[name], language) for name in scores])
    for tab, (name, values) in zip(tabs, scores.items(), strict=True):
        with tab:
            caption, title = CAPTIONS[name]
            st.caption(tr(caption, n=N_TOKENS, sequences=N_SEQUENCES))
            if name == "duplicate_token" and not on_text.has_duplicates:
                st.info(tr("detectors.no_duplicates"))
                continue
            title = t(title, language)
            show_figure(
                detector_heatmap(values, name, title=title, lang=language), key=f"detector_{name}"
            )
    table_with_csv(
        detector_frame(scores, lang=language), tr("detectors.download"), "head_detectors.csv"
    )
    _custom_section(result, language)
