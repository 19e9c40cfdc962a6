"""Streamlit glue shared by every page: widget keys, cached model and analysis, the sidebar form,
and the session state that carries model, text and result across pages.

Everything that is not about Streamlit lives in ``core`` (analysis) and ``viz`` (views).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import streamlit as st

from core import (
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    Analysis,
    AttnScopeError,
    LoadedModel,
    analyze,
    check_text,
    load_model,
)
from core.analysis import with_layers
from core.examples import load_examples
from core.models import needs_conversion
from viz.attention_view import view_assets

_log = logging.getLogger("attnscope")

# Widget keys (constants, so pages and tests agree on them).
MODEL_KEY = "model_choice"
CUSTOM_MODEL_KEY = "custom_model"
EXAMPLE_KEY = "example"
TEXT_KEY = "text"
PAIR_KEY = "pair"
MAX_TOKENS_KEY = "max_tokens"
DEVICE_KEY = "device"
ANALYZE_KEY = "analyze"
# Session state that is not a widget.
RESULT_KEY = "result"
LAYER_KEY = "selected_layer"
HEAD_KEY = "selected_head"
VIEW_KIND_KEY = "view_kind"
VIEW_COMPONENT_KEY = "attention_view"
REQUEST_KEY = "last_request"
LAYER_CACHE_KEY = "layer_cache"
PAYLOAD_CACHE_KEY = "payload_cache"
BERTVIZ_VIEW_KEY = "bertviz_view"
BERTVIZ_LAYERS_KEY = "bertviz_layers"
BERTVIZ_HEADS_KEY = "bertviz_heads"
# Widgets whose defaults depend on the result: reset when a new result arrives.
RESULT_BOUND_KEYS = (BERTVIZ_LAYERS_KEY, BERTVIZ_HEADS_KEY)

CUSTOM_CHOICE = "other"
DEFAULT_MAX_TOKENS = 512
MAX_TOKENS_CEILING = 8192


@dataclass(frozen=True)
class Request:
    """What the sidebar asks for."""

    model: str
    text: str
    pair: str | None
    max_tokens: int
    device: str | None


@st.cache_resource(show_spinner=False, max_entries=3)
def get_model(name: str, device: str | None) -> LoadedModel:
    """Load a model once per process.

    No Streamlit element may be called in here: a cached function replays its elements on every
    cache hit, into blocks that no longer exist. Stage messages are logged instead.
    """
    return load_model(name, device=device, progress=_log.info)


@st.cache_data(show_spinner=False, max_entries=4)
def get_analysis(
    _model: LoadedModel, model_key: str, text: str, pair: str | None, max_tokens: int
) -> Analysis:
    """Analyse once per (model, text, pair, limit); ``_model`` is not hashed, ``model_key`` is."""
    return analyze(_model, text, pair, max_tokens=max_tokens)


def _init_state() -> None:
    st.session_state.setdefault(MODEL_KEY, DEFAULT_MODEL)
    st.session_state.setdefault(CUSTOM_MODEL_KEY, "")
    st.session_state.setdefault(EXAMPLE_KEY, load_examples()[0].id)
    st.session_state.setdefault(TEXT_KEY, load_examples()[0].text)
    st.session_state.setdefault(PAIR_KEY, "")
    st.session_state.setdefault(MAX_TOKENS_KEY, DEFAULT_MAX_TOKENS)
    st.session_state.setdefault(DEVICE_KEY, "auto")
    st.session_state.setdefault(LAYER_KEY, 0)
    st.session_state.setdefault(HEAD_KEY, 0)


def _use_example() -> None:
    chosen = next((e for e in load_examples() if e.id == st.session_state[EXAMPLE_KEY]), None)
    if chosen is not None:
        st.session_state[TEXT_KEY] = chosen.text
        st.session_state[PAIR_KEY] = chosen.pair or ""


def _model_label(choice: str) -> str:
    if choice == CUSTOM_CHOICE:
        return "Other: Hugging Face id or folder"
    spec = BUILTIN_MODELS[choice]
    return f"{spec.title} ({spec.kind})"


def sidebar() -> Request | None:
    """Draw the input form; return a request when Analyze was pressed."""
    _init_state()
    examples = {e.id: e for e in load_examples()}
    with st.sidebar:
        st.title("AttnScope")
        choice = st.selectbox(
            "Model", [*BUILTIN_MODELS, CUSTOM_CHOICE], key=MODEL_KEY, format_func=_model_label
        )
        if choice == CUSTOM_CHOICE:
            st.text_input(
                "Model id or folder",
                key=CUSTOM_MODEL_KEY,
                placeholder="e.g. bert-base-uncased or /path/to/model",
                help="A Hugging Face model id (downloaded once if online) or a local folder "
                "saved with save_pretrained.",
            )
        else:
            st.caption(BUILTIN_MODELS[choice].description)
        st.selectbox(
            "Example",
            list(examples),
            key=EXAMPLE_KEY,
            format_func=lambda key: examples[key].title,
            on_change=_use_example,
        )
        st.text_area("Text", key=TEXT_KEY, height=140)
        is_decoder = choice != CUSTOM_CHOICE and BUILTIN_MODELS[choice].kind == "decoder"
        if not is_decoder:
            st.text_input(
                "Second sentence (optional, encoders only)",
                key=PAIR_KEY,
                help="Analysed as a sentence pair: [CLS] A [SEP] B [SEP].",
            )
        with st.expander("Settings"):
            st.number_input(
                "Max tokens",
                min_value=2,
                max_value=MAX_TOKENS_CEILING,
                step=64,
                key=MAX_TOKENS_KEY,
                help="Longer input is truncated (never more than the model's own limit).",
            )
            st.selectbox("Device", ["auto", "cpu", "cuda", "mps"], key=DEVICE_KEY)
        pressed = st.button("Analyze", key=ANALYZE_KEY, type="primary", width="stretch")
    if not pressed:
        return None
    model = st.session_state[CUSTOM_MODEL_KEY] if choice == CUSTOM_CHOICE else choice
    pair = None if is_decoder else (st.session_state[PAIR_KEY] or None)
    device = st.session_state[DEVICE_KEY]
    return Request(
        model=(model or "").strip(),
        text=st.session_state[TEXT_KEY],
        pair=pair,
        max_tokens=int(st.session_state[MAX_TOKENS_KEY]),
        device=None if device == "auto" else device,
    )


def run(request: Request) -> None:
    """Load (cached) and analyse, with a visible status; on any failure say what to do, keep the
    previous result, and never show a traceback."""
    try:
        check_text(request.text)
        if not request.model:
            raise AttnScopeError("Type a Hugging Face model id or a folder path, or pick a model.")
    except AttnScopeError as error:
        st.error(str(error))
        return
    if needs_conversion(request.model):
        label = (
            f"Converting {request.model} from GGUF: first use only, about 30 s; later loads "
            "read the converted copy from the cache..."
        )
    else:
        label = f"Loading {request.model} (cached after the first time)..."
    with st.status(label, expanded=False) as status:
        try:
            model = get_model(request.model, request.device)
            status.update(label=f"Analysing with {model.title}...")
            key = f"{model.name}|{model.source}|{model.device}"
            result = get_analysis(model, key, request.text, request.pair, request.max_tokens)
        except AttnScopeError as error:
            status.update(label="Failed", state="error", expanded=False)
            st.error(str(error))
            return
        except Exception as error:  # a bug or an unexpected library failure: say it plainly
            status.update(label="Failed", state="error", expanded=False)
            st.error(
                f"Unexpected error ({type(error).__name__}): {str(error)[:300]}. "
                "The app still works: try another text or model."
            )
            return
        status.update(
            label=f"Analysed {result.seq_len} tokens with {model.title} "
            f"(forward {result.forward_seconds:.2f} s)",
            state="complete",
            expanded=False,
        )
    st.session_state[RESULT_KEY] = result
    st.session_state[REQUEST_KEY] = request
    st.session_state[LAYER_CACHE_KEY] = {}
    st.session_state[PAYLOAD_CACHE_KEY] = {}
    st.session_state[LAYER_KEY] = min(st.session_state[LAYER_KEY], result.n_layers - 1)
    st.session_state[HEAD_KEY] = min(st.session_state[HEAD_KEY], result.n_heads - 1)
    for key in RESULT_BOUND_KEYS:
        st.session_state.pop(key, None)


def current_result() -> Analysis | None:
    return st.session_state.get(RESULT_KEY)


def require_result() -> Analysis:
    """The current result, or a hint and a stop when nothing has been analysed yet."""
    result = current_result()
    if result is None:
        st.info("Type a text in the sidebar (or pick an example) and press **Analyze**.")
        st.stop()
    header(result)
    return result


def header(result: Analysis) -> None:
    spec = BUILTIN_MODELS.get(result.model_name)
    title = spec.title if spec else result.model_name
    st.caption(
        f"{title} · {result.kind} · {result.n_layers} layers × {result.n_heads} heads · "
        f"{result.seq_len} tokens"
    )
    if result.truncated:
        st.warning(
            f"The input has {result.n_input_tokens} tokens; only the first {result.seq_len} "
            f"were analysed (limit {result.max_tokens}). Raise **Max tokens** in the sidebar "
            "settings, up to the model's own limit."
        )


def _remember(widget_key: str, store_key: str) -> None:
    st.session_state[store_key] = st.session_state[widget_key]


def layer_selector(result: Analysis, widget_key: str, *, label: str = "Layer") -> int:
    """A layer picker whose choice is shared by every page (kept in ``LAYER_KEY``)."""
    st.session_state[widget_key] = min(st.session_state[LAYER_KEY], result.n_layers - 1)
    return st.selectbox(
        label,
        range(result.n_layers),
        key=widget_key,
        on_change=_remember,
        args=(widget_key, LAYER_KEY),
    )


def head_selector(
    result: Analysis, widget_key: str, *, with_average: bool = True, label: str = "Head"
) -> int | None:
    """A head picker shared by every page; ``None`` means the average over heads."""
    options: list[int | None] = ([None] if with_average else []) + list(range(result.n_heads))
    stored = st.session_state[HEAD_KEY]
    if stored is None and not with_average:
        stored = 0
    st.session_state[widget_key] = stored if stored in options else options[0]
    return st.selectbox(
        label,
        options,
        key=widget_key,
        format_func=lambda h: "average of all heads" if h is None else f"head {h}",
        on_change=_remember,
        args=(widget_key, HEAD_KEY),
    )


# Recomputed layers and encoded view payloads kept per session, newest last; a few at most,
# since one SmolLM2 layer at 2048 tokens is 150 MB.
_SESSION_CACHE_SIZE = 3


def _remember_in(store_key: str, key: object, value: object) -> None:
    store = st.session_state.setdefault(store_key, {})
    store.pop(key, None)
    store[key] = value
    while len(store) > _SESSION_CACHE_SIZE:
        store.pop(next(iter(store)))


def ensure_layers(result: Analysis, layers: list[int]) -> Analysis:
    """``result`` holding the weights of ``layers``: long inputs keep statistics only, so a
    layer on screen is recomputed (a forward pass that stops after it) and kept for a while."""
    store = st.session_state.setdefault(LAYER_CACHE_KEY, {})
    missing = [layer for layer in layers if result.layer_weights[layer] is None]
    if all(layer in store for layer in missing):
        if not missing:
            return result
        weights = tuple(store.get(i, w) for i, w in enumerate(result.layer_weights))
        return replace(result, layer_weights=weights)
    request: Request | None = st.session_state.get(REQUEST_KEY)
    device = request.device if request else None
    with st.spinner(f"Recomputing layer {', '.join(map(str, missing))} for this long input..."):
        model = get_model(result.model_name, device)
        fuller = with_layers(model, result, missing)
    for layer in missing:
        _remember_in(LAYER_CACHE_KEY, layer, fuller.layer_weights[layer])
    return fuller


def cached_payload(key: tuple, build) -> bytes:
    """An encoded view payload, built once per session for ``key``."""
    store = st.session_state.setdefault(PAYLOAD_CACHE_KEY, {})
    if key not in store:
        _remember_in(PAYLOAD_CACHE_KEY, key, build())
    return store[key]


_VIEW_JS, _VIEW_CSS = view_assets()
_ATTENTION_VIEW = st.components.v2.component("attnscope_attention_view", js=_VIEW_JS, css=_VIEW_CSS)


def _follow_view_selection() -> None:
    """The view's "selected" state (a clicked head) becomes the app's layer and head."""
    state = st.session_state.get(VIEW_COMPONENT_KEY) or {}
    selected = state.get("selected") if hasattr(state, "get") else None
    if selected:
        st.session_state[LAYER_KEY] = int(selected["layer"])
        st.session_state[HEAD_KEY] = int(selected["head"])


def attention_view(payload: bytes) -> None:
    """Mount AttnScope's head/model view with ``payload`` (see ``viz.attention_view``)."""
    _ATTENTION_VIEW(
        data=payload,
        key=VIEW_COMPONENT_KEY,
        on_selected_change=_follow_view_selection,
        default={"selected": None},
    )
