"""Widgets every page draws: the result header, the shared layer, head and effective-attention
selectors, tables with a CSV button, and AttnScope's own head/model view component."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pandas as pd
import streamlit as st

from core import BUILTIN_MODELS, Analysis
from core.methods.effective import EFFECTIVE_MODES, EffectiveMode, rollout_collapse
from core.policy.i18n import Lang, t
from ui.derived import word_count
from ui.state import (
    EFFECTIVE_KEY,
    HEAD_KEY,
    LAYER_KEY,
    ROLLOUT_SINK_KEY,
    ROLLOUT_START_KEY,
    VIEW_COMPONENT_KEY,
    WORDS_KEY,
    current_result,
)
from ui.text import kind_label, lang, md, tr
from viz.attention_view import view_assets
from viz.tables import to_csv_bytes

EFFECTIVE_CAPTIONS = {
    "rollout": "effective.caption_rollout",
    "norm": "effective.caption_norm",
    "norm_residual": "effective.caption_norm_residual",
}
EFFECTIVE_LABELS = {
    "raw": "effective.raw",
    "rollout": "effective.rollout",
    "norm": "effective.norm",
    "norm_residual": "effective.norm_residual",
}


def csv_download(label: str, table: pd.DataFrame, file_name: str) -> None:
    """A button that downloads ``table`` as CSV."""
    st.download_button(label, to_csv_bytes(table), file_name=file_name, mime="text/csv")


def table_with_csv(table: pd.DataFrame, label: str, file_name: str) -> None:
    """``table`` on the page and, under it, the button that downloads it as CSV."""
    st.dataframe(table, hide_index=True)
    csv_download(label, table, file_name)


def require_result(*, in_words: bool = True) -> Analysis:
    """The current result under its header, or a hint and a stop when nothing has been
    analysed yet. ``in_words``: the page shows words when the sidebar asks for them (the header
    then counts words too); pages that always show tokens pass ``False``."""
    result = current_result()
    if result is None:
        st.info(tr("page.no_result"))
        st.stop()
    header(result, in_words=in_words)
    return result


def header(result: Analysis, *, in_words: bool = True) -> None:
    """One line on what was analysed (in words too when the page shows words: ``in_words`` and
    the sidebar's choice), and a warning when the input was cut to the limit."""
    spec = BUILTIN_MODELS.get(result.model_name)
    summary = {
        "model": spec.title if spec else md(result.model_name),
        "kind": kind_label(result.kind, lang()),
        "layers": result.n_layers,
        "heads": result.n_heads,
        "tokens": result.seq_len,
    }
    if in_words and st.session_state.get(WORDS_KEY):
        st.caption(tr("page.summary_words", words=word_count(result), **summary))
    else:
        st.caption(tr("page.summary", **summary))
    if result.truncated:
        st.warning(
            tr(
                "page.truncated",
                total=result.n_input_tokens,
                kept=result.seq_len,
                limit=result.max_tokens,
            )
        )


def _remember(widget_key: str, store_key: str) -> None:
    st.session_state[store_key] = st.session_state[widget_key]


def layer_selector(result: Analysis, widget_key: str) -> int:
    """A layer picker whose choice is shared by every page (kept in ``LAYER_KEY``)."""
    st.session_state[widget_key] = min(st.session_state.get(LAYER_KEY, 0), result.n_layers - 1)
    return st.selectbox(
        tr("common.layer"),
        range(result.n_layers),
        key=widget_key,
        on_change=_remember,
        args=(widget_key, LAYER_KEY),
    )


# Option labels are formatted with the language fixed when the widget is drawn: Streamlit (and
# AppTest) may call a format_func later, outside the script run that knows the session.
def _head_label(head: int | None, language: Lang) -> str:
    if head is None:
        return t("common.average_heads", language)
    return t("common.head_n", language, head=head)


def head_selector(result: Analysis, widget_key: str, *, with_average: bool = True) -> int | None:
    """A head picker shared by every page; ``None`` means the average over heads."""
    options: list[int | None] = ([None] if with_average else []) + list(range(result.n_heads))
    stored = st.session_state.get(HEAD_KEY, 0)
    if stored is None and not with_average:
        stored = 0
    st.session_state[widget_key] = stored if stored in options else options[0]
    return st.selectbox(
        tr("common.head"),
        options,
        key=widget_key,
        format_func=partial(_head_label, language=lang()),
        on_change=_remember,
        args=(widget_key, HEAD_KEY),
    )


def _effective_label(mode: str, language: Lang) -> str:
    return t(EFFECTIVE_LABELS[mode], language)


def effective_selector(widget_key: str, n_layers: int | None = None) -> EffectiveMode:
    """Raw weights, attention rollout or norm-based attention; shared by the attention pages.
    For rollout, also whether to leave the sink out and (given ``n_layers``) the first layer."""
    st.session_state[widget_key] = st.session_state[EFFECTIVE_KEY]
    mode = st.segmented_control(
        tr("effective.label"),
        list(EFFECTIVE_MODES),
        key=widget_key,
        format_func=partial(_effective_label, language=lang()),
        on_change=_remember,
        args=(widget_key, EFFECTIVE_KEY),
        help=tr("effective.help"),
    )
    if mode == "rollout":
        _rollout_options(widget_key, n_layers)
    return mode or "raw"


def _rollout_options(widget_key: str, n_layers: int | None) -> None:
    """Leave the sink out; roll out from a chosen layer (both shared by the attention pages)."""
    sink_key, start_key = f"{widget_key}_sink", f"{widget_key}_start"
    st.session_state[sink_key] = bool(st.session_state.get(ROLLOUT_SINK_KEY, False))
    left, right = st.columns(2)
    with left:
        st.checkbox(
            tr("effective.exclude_sink"),
            key=sink_key,
            on_change=_remember,
            args=(sink_key, ROLLOUT_SINK_KEY),
            help=tr("effective.exclude_sink_help"),
        )
    if n_layers is None or n_layers < 2:
        return
    start = min(int(st.session_state.get(ROLLOUT_START_KEY, 0)), n_layers - 1)
    st.session_state[start_key] = start
    with right:
        st.number_input(
            tr("effective.start_layer"),
            min_value=0,
            max_value=n_layers - 1,
            step=1,
            key=start_key,
            on_change=_remember,
            args=(start_key, ROLLOUT_START_KEY),
            help=tr("effective.start_layer_help"),
        )


def effective_caption(mode: EffectiveMode, shown: Analysis | None = None) -> None:
    """What a rollout or norm-based view means (nothing for raw weights); for rollout, a warning
    when it has collapsed onto the sink (:func:`core.methods.rollout.rollout_collapse`)."""
    if mode == "raw":
        return
    st.caption(tr(EFFECTIVE_CAPTIONS[mode]))
    if mode == "rollout" and shown is not None and not shown.runnable:  # rollout, maybe of words
        found = rollout_collapse(shown.attentions)
        if found.collapsed:
            last = f"{float(found.sink_floor[-1]):.4f}"
            st.warning(tr("effective.collapsed", layer=found.first_layer, last=last))


# --- AttnScope's own head/model view component ----------------------------------------------------

_VIEW_JS, _VIEW_CSS = view_assets()
_ATTENTION_VIEW = st.components.v2.component("attnscope_attention_view", js=_VIEW_JS, css=_VIEW_CSS)


def _follow_view_selection() -> None:
    """The view's "selected" state (a clicked head) becomes the app's layer and head."""
    state = st.session_state.get(VIEW_COMPONENT_KEY) or {}
    selected = state.get("selected") if hasattr(state, "get") else None
    if selected:
        st.session_state[LAYER_KEY] = int(selected["layer"])
        st.session_state[HEAD_KEY] = int(selected["head"])


def _ignore_view_selection() -> None:
    """A view of another analysis (bring your own model): its clicks choose nothing here."""


def attention_view(
    payload: bytes, *, key: str = VIEW_COMPONENT_KEY, on_select: Callable[[], None] | None = None
) -> None:
    """Mount AttnScope's head/model view with ``payload`` (see ``viz.attention_view``); only the
    view under the app's own ``key`` makes a clicked head the app's layer and head, another
    calls ``on_select`` (which reads ``st.session_state[key]["selected"]``) if given."""
    follow = _follow_view_selection if key == VIEW_COMPONENT_KEY else _ignore_view_selection
    _ATTENTION_VIEW(
        data=payload,
        key=key,
        on_selected_change=on_select or follow,
        default={"selected": None},
    )


def sampling_controls(prefix: str, *, max_new: int, greedy: bool) -> Callable[..., object]:
    """The sampling options of a generation (new tokens, seed, temperature, top-p, top-k,
    greedy) in three columns, their widget keys ``<prefix>_max_new`` and so on; returns what
    makes the :class:`~core.methods.sampling.GenerationConfig` from them (extra fields as
    keywords), which checks the values when called."""
    from core.methods.sampling import GenerationConfig

    left, middle, right = st.columns(3)
    with left:
        n = st.number_input(tr("generate.max_new"), 1, 256, value=max_new, key=f"{prefix}_max_new")
        seed = st.number_input(tr("generate.seed"), 0, 2**31 - 1, value=0, key=f"{prefix}_seed")
    with middle:
        temperature = st.slider(
            tr("generate.temperature"), 0.05, 2.0, 0.8, key=f"{prefix}_temperature"
        )
        top_p = st.slider(tr("generate.top_p"), 0.05, 1.0, 0.95, key=f"{prefix}_top_p")
    with right:
        top_k = st.number_input(tr("generate.top_k"), 0, 1000, value=50, key=f"{prefix}_top_k")
        pick = st.toggle(tr("generate.greedy"), value=greedy, key=f"{prefix}_greedy")
    return partial(
        GenerationConfig,
        max_new_tokens=int(n),
        temperature=float(temperature),
        top_p=float(top_p),
        top_k=int(top_k),
        seed=int(seed),
        greedy=pick,
    )
