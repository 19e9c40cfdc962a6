"""Streamlit glue of two corpus views: every head's detector scores over the run (per-text
previous-token and duplicate-token scores averaged over the texts, and the run's induction
measurement on repeated random tokens), and one head's query-key map over a seeded sample of
the run's texts. Queries: :mod:`core.corpus.detectors`; the map: :mod:`core.methods.qk_map`;
figures: :mod:`viz.detectors`, :mod:`viz.qk_map`."""

from __future__ import annotations

from functools import partial

import streamlit as st
import torch

from core.corpus import CorpusRun
from core.corpus.detectors import CorpusDetectors, corpus_detectors, sample_texts
from core.methods.qk_map import QKMap, qk_map
from core.policy.errors import AttnScopeError
from core.policy.i18n import t
from ui.corpus_views import head_choice, run_version
from ui.figures import show_figure
from ui.services import heavy_work, model_named
from ui.state import QK_MAPS
from ui.text import lang, show_error, tr
from ui.widgets import table_with_csv
from viz.detectors import DETECTOR_KEYS, detector_frame, detector_heatmap
from viz.qk_map import COLOR_BY, COLOR_KEYS, qk_map_figure, qk_map_frame

__all__ = ["corpus_detectors_view", "corpus_qk_view"]

QK_TEXTS_WIDGET = "corpus_qk_texts"
QK_SEED_WIDGET = "corpus_qk_seed"
QK_COLOR_WIDGET = "corpus_qk_color"
QK_SHOW_WIDGET = "corpus_qk_show"
# Per-text score -> catalogue keys of its caption, its title, and the note when no text has it.
TEXT_KEYS = {
    "previous_token": (
        "corpus.detectors_previous_token_caption",
        "corpus.detectors_previous_token_title",
        "corpus.detectors_no_previous_token",
    ),
    "duplicate_token": (
        "corpus.detectors_duplicate_token_caption",
        "corpus.detectors_duplicate_token_title",
        "corpus.detectors_no_duplicate_token",
    ),
}
QK_MAX_TOKENS = 2000  # points of each kind on the map at most (sampled beyond)


@st.cache_data(show_spinner=False, max_entries=8)
def _detectors(folder: str, version: str) -> CorpusDetectors:
    from core.corpus import open_run

    return corpus_detectors(open_run(folder, verify=False))


def corpus_detectors_view(run: CorpusRun) -> None:
    """One heatmap per score, its caption saying what it was measured on, and one table."""
    language = lang()
    found = _detectors(str(run.folder), run_version(run))
    st.caption(tr("corpus.detectors_caption", n=run.n_done))
    scores = {f"texts_{name}": values for name, values in found.on_texts.items()}
    scores |= {f"random_{name}": values for name, values in found.on_random.items()}
    if found.induction is None:
        st.info(tr("corpus.detectors_no_induction"))
    names = [name for name in scores if not name.startswith("random_") or "induction" in name]
    tabs = st.tabs([t(DETECTOR_KEYS[name.split("_", 1)[1]], language) for name in names])
    for tab, name in zip(tabs, names, strict=True):
        where, score = name.split("_", 1)
        with tab:
            if where == "random":
                caption = tr(
                    "detectors.induction_caption", n=found.n_tokens, sequences=found.n_sequences
                )
                title = t("detectors.induction_title", language)
            else:
                texts = int(found.texts_with[score].max(initial=0))
                caption_key, title_key, none_key = TEXT_KEYS[score]
                caption = tr(caption_key, texts=texts)
                title = t(title_key, language)
                if texts == 0:
                    st.info(tr(none_key))
                    continue
            st.caption(caption)
            values = torch.from_numpy(scores[name])  # (L, H)
            figure = detector_heatmap(values, score, title=title, lang=language)
            show_figure(figure, key=f"corpus_detector_{name}", name=f"corpus_{name}")
    table = {name: torch.from_numpy(values) for name, values in scores.items() if name in names}
    frame = detector_frame({name.split("_", 1)[1]: v for name, v in table.items()}, lang=language)
    table_with_csv(frame, tr("detectors.download"), "corpus_head_detectors.csv")


def _qk_map(run: CorpusRun, layer: int, head: int, n_texts: int, seed: int) -> QKMap:
    """The map of one head over ``n_texts`` of the run's texts, once per session and choice."""
    key = (str(run.folder), run_version(run), layer, head, n_texts, seed)

    def make() -> QKMap:
        texts = [text for _, text in sample_texts(run, n_texts, seed)]
        with heavy_work(), st.spinner(tr("qk.computing")):
            model = model_named(str(run.manifest["model"]["name"]))
            return qk_map(model, texts, layer, head, max_tokens=QK_MAX_TOKENS, seed=seed)

    return QK_MAPS.get_or_make(key, make)


def _color_label(option: str, language) -> str:
    return t(COLOR_KEYS[option], language)


def corpus_qk_view(run: CorpusRun) -> None:
    """The chosen head's query-key map over a sample of the run's texts (the run's model is
    loaded and run on them, one pass per text stopping after the head's layer)."""
    language = lang()
    st.caption(tr("corpus.qk_caption"))
    layer, head = head_choice(run, "corpus_qk")
    left, middle, right = st.columns(3)
    n_texts = int(
        left.number_input(
            tr("corpus.qk_texts"), 1, min(run.n_done, 200), min(run.n_done, 20), key=QK_TEXTS_WIDGET
        )
    )
    seed = int(middle.number_input(tr("corpus.qk_seed"), 0, 2**31 - 1, 0, key=QK_SEED_WIDGET))
    color_by = right.selectbox(
        tr("qk.color_by"),
        COLOR_BY,
        key=QK_COLOR_WIDGET,
        format_func=partial(_color_label, language=language),
    )
    if not st.toggle(tr("corpus.qk_show"), key=QK_SHOW_WIDGET):
        return
    try:
        found = _qk_map(run, layer, head, n_texts, seed)
    except AttnScopeError as error:
        show_error(error)
        return
    if found.rotary:
        st.caption(tr("qk.rope_note"))
    show_figure(qk_map_figure(found, color_by, language), key="corpus_qk_map", name="corpus_qk_map")
    frame = qk_map_frame(found, lang=language)
    table_with_csv(frame, tr("qk.download"), "corpus_query_key_map.csv")
