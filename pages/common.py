"""Streamlit glue shared by every page: widget keys, language, cached model and analysis, the
sidebar form, and the session state that carries model, text and result across pages.

Everything that is not about Streamlit lives in ``core`` (analysis, words) and ``viz`` (views).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import pandas as pd
import streamlit as st

from core import (
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    Analysis,
    AttnScopeError,
    InputError,
    LoadedModel,
    analyze,
    check_text,
    load_model,
)
from core.engine.analysis import with_layers
from core.engine.models import needs_conversion
from core.methods.effective import EFFECTIVE_MODES, EffectiveMode, effective_analysis
from core.methods.generate import Generation
from core.methods.words import word_analysis
from core.policy.examples import load_examples
from core.policy.i18n import DEFAULT_LANG, LANGUAGES, Lang, parse_lang, t
from core.policy.limits import ConcurrencyGate, RateLimiter
from core.policy.links import link_params, parse_link
from core.policy.settings import Settings, check_request, load_settings
from viz.attention_view import view_assets
from viz.figures import escape_markdown
from viz.tables import to_csv_bytes

_log = logging.getLogger("attnscope")

# Widget keys (constants, so pages and tests agree on them).
LANG_KEY = "lang"
MODEL_KEY = "model_choice"
CUSTOM_MODEL_KEY = "custom_model"
EXAMPLE_KEY = "example"
TEXT_KEY = "text"
PAIR_KEY = "pair"
MAX_TOKENS_KEY = "max_tokens"
DEVICE_KEY = "device"
ANALYZE_KEY = "analyze"
REMOTE_CODE_KEY = "trust_remote_code"
VIEW_KIND_KEY = "view_kind"
VIEW_COMPONENT_KEY = "attention_view"
WORDS_KEY = "words"
CJK_KEY = "cjk"
BERTVIZ_LAYERS_KEY = "bertviz_layers"
BERTVIZ_HEADS_KEY = "bertviz_heads"
# Session state that is not a widget.
RESULT_KEY = "result"
LAYER_KEY = "selected_layer"
HEAD_KEY = "selected_head"
REQUEST_KEY = "last_request"
LAYER_CACHE_KEY = "layer_cache"
PAYLOAD_CACHE_KEY = "payload_cache"
DISPLAY_CACHE_KEY = "display_cache"
HEAD_STATS_KEY = "head_stats"
PREDICTIONS_KEY = "predictions"
ABLATION_KEY = "ablation_effect"
RANKING_KEY = "head_ranking"
COMPARISON_KEY = "comparison"
GENERATION_KEY = "generation"
# While tokens stream: (model name, prompt, config, the steps so far). A Stop reruns the script
# mid-stream; the next run turns what was made into the Generation (finish_generation).
GENERATION_PENDING_KEY = "generation_pending"
RATE_KEY = "rate_limiter"
LINK_KEY = "link_applied"
EFFECTIVE_KEY = "effective_mode"
# Widgets whose defaults depend on the result: reset when a new result arrives.
RESULT_BOUND_KEYS = (BERTVIZ_LAYERS_KEY, BERTVIZ_HEADS_KEY)

CUSTOM_CHOICE = "other"
MODEL_DESCRIPTIONS = {"minilm": "about.minilm", "smollm2": "about.smollm2"}
LINK_PROBLEMS = {
    "text_too_long": "link.text_too_long",
    "model_too_long": "link.model_too_long",
    "bad_layer": "link.bad_layer",
    "bad_head": "link.bad_head",
    "bad_example": "link.bad_example",
}
DEFAULT_MAX_TOKENS = 512


@dataclass(frozen=True)
class Request:
    """What the sidebar asks for."""

    model: str
    text: str
    pair: str | None
    max_tokens: int
    device: str | None
    trust_remote_code: bool = False


# --- settings, load limits, links -----------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def app_settings() -> Settings:
    """This server's limits (demo mode from ``ATTNSCOPE_DEMO`` or the app's secrets)."""
    try:
        secrets = st.secrets.to_dict()
    except Exception:  # no secrets file: the usual case outside Streamlit Community Cloud
        secrets = {}
    return load_settings(os.environ, secrets)


@st.cache_resource(show_spinner=False)
def concurrency_gate(capacity: int) -> ConcurrencyGate:
    """One gate for the whole server process: every session's heavy work passes through it."""
    return ConcurrencyGate(capacity)


@contextmanager
def heavy_work(status: object | None = None) -> Iterator[None]:
    """Hold one of the server's analysis slots for the block; while waiting, say so (in
    ``status`` if given, else in a placeholder that disappears)."""
    settings = app_settings()
    notice = None if status is not None else st.empty()

    def waiting(ahead: int) -> None:
        label = tr("run.waiting", ahead=ahead, running=settings.max_concurrent)
        if status is not None:
            status.update(label=label, state="running")
        else:
            notice.info(label)

    try:
        with concurrency_gate(settings.max_concurrent).slot(
            timeout=settings.queue_timeout_s, on_wait=waiting
        ):
            if notice is not None:
                notice.empty()
            yield
    finally:
        if notice is not None:
            notice.empty()


def count_request() -> None:
    """Count one user request against this session's rate limit (an InputError past it)."""
    settings = app_settings()
    limiter = st.session_state.get(RATE_KEY)
    wanted = (settings.rate_limit, settings.rate_window_s)
    if limiter is None or (limiter.limit, limiter.window) != wanted:
        limiter = RateLimiter(*wanted)
        st.session_state[RATE_KEY] = limiter
    limiter.check()


def md(text: object) -> str:
    """User text made safe for a Markdown element (labels, captions, messages)."""
    return escape_markdown(str(text))


# --- language -------------------------------------------------------------------------------------


def lang() -> Lang:
    """The interface language: the sidebar's choice, first taken from ``?lang=``."""
    if LANG_KEY not in st.session_state:
        st.session_state[LANG_KEY] = parse_lang(st.query_params.get("lang"))
    return parse_lang(st.session_state[LANG_KEY])


def tr(key: str, /, **params: object) -> str:
    """``key`` in the interface language (see :func:`core.policy.i18n.t`)."""
    return t(key, lang(), **params)


def _language_changed() -> None:
    st.query_params["lang"] = st.session_state[LANG_KEY]  # a shared link keeps the language


def language_selector() -> None:
    current = lang()  # seeds the widget from ?lang= on a session's first run
    # Streamlit drops query parameters when the page changes: put the language back, so the
    # address bar can always be shared as it is.
    shown = current != DEFAULT_LANG or "lang" in st.query_params
    if shown and st.query_params.get("lang") != current:
        st.query_params["lang"] = current
    st.selectbox(
        t("app.language"),
        list(LANGUAGES),
        key=LANG_KEY,
        format_func=LANGUAGES.__getitem__,
        on_change=_language_changed,
    )


# --- cached model and analysis --------------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=3)
def get_model(name: str, device: str | None, trust_remote_code: bool = False) -> LoadedModel:
    """Load a model once per process.

    No Streamlit element may be called in here: a cached function replays its elements on every
    cache hit, into blocks that no longer exist. Stage messages are logged instead.
    """
    return load_model(name, device=device, progress=_log.info, trust_remote_code=trust_remote_code)


def analysis_for(model: LoadedModel, text: str, pair: str | None, max_tokens: int) -> Analysis:
    """``model``'s analysis of ``text``, from the process-wide cache when it was made before."""
    model_key = f"{model.name}|{model.source}|{model.device}"
    return get_analysis(model, model_key, text, pair, max_tokens)


@st.cache_resource(show_spinner=False, max_entries=4)
def get_analysis(
    _model: LoadedModel, model_key: str, text: str, pair: str | None, max_tokens: int
) -> Analysis:
    """Analyse once per (model, text, pair, limit); ``_model`` is not hashed, ``model_key`` is.

    A resource, not data: ``st.cache_data`` would pickle every result (up to 512 MB of held
    weights) and hand each caller an unpickled copy. An :class:`Analysis` is frozen, and what a
    session derives from it is a new object, so one instance can serve every session."""
    return analyze(_model, text, pair, max_tokens=max_tokens)


# --- the sidebar form -----------------------------------------------------------------------------


def _init_state(settings: Settings) -> None:
    examples = load_examples()
    st.session_state.setdefault(MODEL_KEY, DEFAULT_MODEL)
    st.session_state.setdefault(CUSTOM_MODEL_KEY, "")
    st.session_state.setdefault(EXAMPLE_KEY, examples[0].id)
    st.session_state.setdefault(TEXT_KEY, examples[0].text)
    st.session_state.setdefault(PAIR_KEY, "")
    st.session_state.setdefault(MAX_TOKENS_KEY, min(DEFAULT_MAX_TOKENS, settings.max_tokens))
    st.session_state[MAX_TOKENS_KEY] = min(st.session_state[MAX_TOKENS_KEY], settings.max_tokens)
    st.session_state.setdefault(REMOTE_CODE_KEY, False)
    st.session_state.setdefault(DEVICE_KEY, "auto")
    st.session_state.setdefault(LAYER_KEY, 0)
    st.session_state.setdefault(HEAD_KEY, 0)
    st.session_state.setdefault(WORDS_KEY, False)
    st.session_state.setdefault(CJK_KEY, "character")
    st.session_state.setdefault(EFFECTIVE_KEY, "raw")


def _use_example() -> None:
    chosen = next((e for e in load_examples() if e.id == st.session_state[EXAMPLE_KEY]), None)
    if chosen is not None:
        st.session_state[TEXT_KEY] = chosen.text
        st.session_state[PAIR_KEY] = chosen.pair or ""


# Option labels are formatted with the language fixed when the widget is drawn: Streamlit (and
# AppTest) may call a format_func later, outside the script run that knows the session.
def _model_label(choice: str, language: Lang) -> str:
    if choice == CUSTOM_CHOICE:
        return t("sidebar.model_other", language)
    spec = BUILTIN_MODELS.get(choice)
    if spec is None:  # an allowlisted Hub id
        return choice
    kind = kind_label(spec.kind, language)
    return t("sidebar.model_builtin", language, title=spec.title, kind=kind)


def _cjk_label(rule: str, language: Lang) -> str:
    return t("sidebar.cjk_script" if rule == "script" else "sidebar.cjk_character", language)


def kind_label(kind: str, language: Lang) -> str:
    return t("common.decoder" if kind == "decoder" else "common.encoder", language)


def model_choices(settings: Settings) -> list[str]:
    """What the model picker offers: the built-ins (those allowed, in demo mode), any other
    allowed names, and "Other" (a Hub id or folder) unless the allowlist is closed."""
    if settings.allowed_models is None:
        return [*BUILTIN_MODELS, CUSTOM_CHOICE]
    allowed = [name for name in BUILTIN_MODELS if name in settings.allowed_models]
    return allowed + [name for name in settings.allowed_models if name not in BUILTIN_MODELS]


def _apply_link(settings: Settings) -> Request | None:
    """On a session's first run, restore the view a shared link describes (every value checked
    like typed input; bad ones are dropped with a notice) and analyse it."""
    if st.session_state.get(LINK_KEY):
        return None
    st.session_state[LINK_KEY] = True
    examples = {e.id: e for e in load_examples()}
    view, problems = parse_link(st.query_params.to_dict(), examples=list(examples))
    if problems:
        notes = ", ".join(tr(LINK_PROBLEMS[problem]) for problem in problems)
        st.warning(tr("link.ignored", problems=notes))
    if not view.wants_analysis:
        return None
    if view.model:
        if view.model in model_choices(settings):
            st.session_state[MODEL_KEY] = view.model
        else:
            st.session_state[MODEL_KEY] = CUSTOM_CHOICE
            st.session_state[CUSTOM_MODEL_KEY] = view.model
    if view.example:
        st.session_state[EXAMPLE_KEY] = view.example
        st.session_state[TEXT_KEY] = examples[view.example].text
        st.session_state[PAIR_KEY] = examples[view.example].pair or ""
    else:
        st.session_state[TEXT_KEY] = view.text or ""
        st.session_state[PAIR_KEY] = view.pair or ""
    if view.layer is not None:
        st.session_state[LAYER_KEY] = view.layer
    if view.head is not None or view.average:
        st.session_state[HEAD_KEY] = None if view.average else view.head
    return _request(settings)


def sync_link() -> None:
    """Keep the address bar a link to what is shown (Streamlit drops query parameters when
    the page changes, so they are put back on every run)."""
    request: Request | None = st.session_state.get(REQUEST_KEY)
    result = current_result()
    if request is None or result is None:
        return
    examples = {e.id: (e.text, e.pair) for e in load_examples()}
    wanted = link_params(
        model=request.model,
        text=request.text,
        pair=request.pair,
        layer=min(st.session_state[LAYER_KEY], result.n_layers - 1),
        head=st.session_state[HEAD_KEY],
        lang=lang(),
        examples=examples,
    )
    current = st.query_params.to_dict()
    if any(current.get(key) != value for key, value in wanted.items()) or (
        "text" in current and "text" not in wanted
    ):
        st.query_params.from_dict(wanted)


def _request(settings: Settings) -> Request:
    choice = st.session_state[MODEL_KEY]
    is_decoder = choice in BUILTIN_MODELS and BUILTIN_MODELS[choice].kind == "decoder"
    device = st.session_state[DEVICE_KEY]
    return Request(
        model=selected_model_name(),
        text=st.session_state[TEXT_KEY],
        pair=None if is_decoder else (st.session_state[PAIR_KEY] or None),
        max_tokens=min(int(st.session_state[MAX_TOKENS_KEY]), settings.max_tokens),
        device=None if device == "auto" else device,
        trust_remote_code=settings.allow_remote_code and bool(st.session_state[REMOTE_CODE_KEY]),
    )


def sidebar() -> Request | None:
    """Draw the input form; return a request when Analyze was pressed (or a shared link asked
    for an analysis)."""
    settings = app_settings()
    _init_state(settings)
    from_link = _apply_link(settings)
    examples = {e.id: e for e in load_examples()}
    choices = model_choices(settings)
    if st.session_state[MODEL_KEY] not in choices:
        st.session_state[MODEL_KEY] = choices[0]
    with st.sidebar:
        st.title("AttnScope")
        if settings.demo:
            st.caption(tr("demo.banner", tokens=settings.max_tokens, limit=settings.rate_limit))
        language_selector()
        choice = st.selectbox(
            tr("sidebar.model"),
            choices,
            key=MODEL_KEY,
            format_func=partial(_model_label, language=lang()),
        )
        if choice == CUSTOM_CHOICE:
            st.text_input(
                tr("sidebar.custom_model"),
                key=CUSTOM_MODEL_KEY,
                placeholder=tr("sidebar.custom_model_placeholder"),
                help=tr("sidebar.custom_model_help"),
                max_chars=200,
            )
        elif choice in MODEL_DESCRIPTIONS:
            st.caption(tr(MODEL_DESCRIPTIONS[choice]))
        st.selectbox(
            tr("sidebar.example"),
            list(examples),
            key=EXAMPLE_KEY,
            format_func=lambda key: examples[key].title,
            on_change=_use_example,
        )
        st.text_area(
            tr("sidebar.text"), key=TEXT_KEY, height=140, max_chars=settings.max_text_chars
        )
        is_decoder = choice in BUILTIN_MODELS and BUILTIN_MODELS[choice].kind == "decoder"
        if not is_decoder:
            st.text_input(tr("sidebar.pair"), key=PAIR_KEY, help=tr("sidebar.pair_help"))
        st.toggle(tr("sidebar.words"), key=WORDS_KEY, help=tr("sidebar.words_help"))
        if st.session_state[WORDS_KEY]:
            st.radio(
                tr("sidebar.cjk"),
                ["character", "script"],
                key=CJK_KEY,
                format_func=partial(_cjk_label, language=lang()),
                horizontal=True,
            )
        with st.expander(tr("sidebar.settings")):
            st.number_input(
                tr("sidebar.max_tokens"),
                min_value=2,
                max_value=settings.max_tokens,
                step=64,
                key=MAX_TOKENS_KEY,
                help=tr("sidebar.max_tokens_help"),
            )
            st.selectbox(tr("sidebar.device"), ["auto", "cpu", "cuda", "mps"], key=DEVICE_KEY)
            if settings.allow_remote_code:
                st.toggle(
                    tr("sidebar.remote_code"),
                    key=REMOTE_CODE_KEY,
                    help=tr("sidebar.remote_code_help"),
                )
        pressed = st.button(tr("sidebar.analyze"), key=ANALYZE_KEY, type="primary", width="stretch")
    if pressed:
        return _request(settings)
    return from_link


def selected_model_name() -> str:
    """The model chosen in the sidebar: a built-in name, or the id or folder typed for Other."""
    choice = st.session_state.get(MODEL_KEY, DEFAULT_MODEL)
    if choice == CUSTOM_CHOICE:
        return (st.session_state.get(CUSTOM_MODEL_KEY) or "").strip()
    return choice


def show_error(error: Exception) -> None:
    """A failure as one message in the interface language; never a traceback."""
    if isinstance(error, AttnScopeError):
        # values in messages may be user input (a model name, a path): never Markdown
        st.error(error.localized(lang(), escape=escape_markdown))
    else:  # a bug or an unexpected library failure: say it plainly
        detail = md(str(error)[:300])
        st.error(tr("run.unexpected", kind=type(error).__name__, detail=detail))


def run(request: Request) -> None:
    """Load (cached) and analyse, with a visible status; on any failure say what to do, keep the
    previous result, and never show a traceback."""
    settings = app_settings()
    try:
        check_text(request.text)
        if not request.model:
            raise InputError("error.no_model")
        check_request(
            settings,
            model=request.model,
            text=request.text,
            pair=request.pair,
            trust_remote_code=request.trust_remote_code,
        )
        count_request()
    except AttnScopeError as error:
        show_error(error)
        return
    limit = min(request.max_tokens, settings.max_tokens)
    key = "run.converting" if needs_conversion(request.model) else "run.loading"
    failure: Exception | None = None
    with st.status(tr(key, model=md(request.model)), expanded=False) as status:
        try:
            with heavy_work(status):
                status.update(label=tr(key, model=md(request.model)))
                model = get_model(request.model, request.device, request.trust_remote_code)
                status.update(label=tr("run.analysing", model=md(model.title)))
                result = analysis_for(model, request.text, request.pair, limit)
        except Exception as error:
            status.update(label=tr("run.failed"), state="error", expanded=False)
            failure = error
    if failure is not None:  # outside the status box, which stays collapsed
        show_error(failure)
        return
    with status:
        status.update(
            label=tr(
                "run.done",
                tokens=result.seq_len,
                model=md(model.title),
                seconds=f"{result.forward_seconds:.2f}",
            ),
            state="complete",
            expanded=False,
        )
    st.session_state[RESULT_KEY] = result
    st.session_state[REQUEST_KEY] = request
    st.session_state[LAYER_CACHE_KEY] = {}
    st.session_state[PAYLOAD_CACHE_KEY] = {}
    st.session_state[DISPLAY_CACHE_KEY] = {}
    for derived in (HEAD_STATS_KEY, PREDICTIONS_KEY, ABLATION_KEY, RANKING_KEY, COMPARISON_KEY):
        st.session_state.pop(derived, None)
    st.session_state[LAYER_KEY] = min(st.session_state[LAYER_KEY], result.n_layers - 1)
    if st.session_state[HEAD_KEY] is not None:  # None: the head average, kept as chosen
        st.session_state[HEAD_KEY] = min(st.session_state[HEAD_KEY], result.n_heads - 1)
    for widget in RESULT_BOUND_KEYS:
        st.session_state.pop(widget, None)


# --- what every page shows ------------------------------------------------------------------------


def csv_download(label: str, table: pd.DataFrame, file_name: str) -> None:
    """A button that downloads ``table`` as CSV."""
    st.download_button(label, to_csv_bytes(table), file_name=file_name, mime="text/csv")


def table_with_csv(table: pd.DataFrame, label: str, file_name: str) -> None:
    """``table`` on the page and, under it, the button that downloads it as CSV."""
    st.dataframe(table, hide_index=True)
    csv_download(label, table, file_name)


def current_result() -> Analysis | None:
    return st.session_state.get(RESULT_KEY)


def require_result() -> Analysis:
    """The current result, or a hint and a stop when nothing has been analysed yet."""
    result = current_result()
    if result is None:
        st.info(tr("page.no_result"))
        st.stop()
    header(result)
    return result


def header(result: Analysis) -> None:
    spec = BUILTIN_MODELS.get(result.model_name)
    st.caption(
        tr(
            "page.summary",
            model=spec.title if spec else md(result.model_name),
            kind=kind_label(result.kind, lang()),
            layers=result.n_layers,
            heads=result.n_heads,
            tokens=result.seq_len,
        )
    )
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
    st.session_state[widget_key] = min(st.session_state[LAYER_KEY], result.n_layers - 1)
    return st.selectbox(
        tr("common.layer"),
        range(result.n_layers),
        key=widget_key,
        on_change=_remember,
        args=(widget_key, LAYER_KEY),
    )


def _head_label(head: int | None, language: Lang) -> str:
    if head is None:
        return t("common.average_heads", language)
    return t("common.head_n", language, head=head)


def head_selector(result: Analysis, widget_key: str, *, with_average: bool = True) -> int | None:
    """A head picker shared by every page; ``None`` means the average over heads."""
    options: list[int | None] = ([None] if with_average else []) + list(range(result.n_heads))
    stored = st.session_state[HEAD_KEY]
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


# --- long inputs: layers recomputed on demand, payloads built once --------------------------------

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
    missing = [layer for layer in layers if result.layer_weights[layer] is None]
    if not missing:
        return result
    store = st.session_state.setdefault(LAYER_CACHE_KEY, {})
    # Keyed by what a recomputation reads (model and inputs), so that two analyses of a session
    # (the Compare page holds a second one) never get each other's weights.
    source = (result.model_name, result.token_ids, result.token_type_ids)
    result = result.holding(
        {layer: store[source, layer] for layer in missing if (source, layer) in store}
    )
    still = [layer for layer in missing if result.layer_weights[layer] is None]
    if not still:
        return result
    label = tr("run.recomputing", layers=", ".join(map(str, still)))
    with heavy_work(), st.spinner(label):
        model = model_of(result)
        fuller = with_layers(model, result, still)
    for layer in still:
        _remember_in(LAYER_CACHE_KEY, (source, layer), fuller.layer_weights[layer])
    return fuller


Payload = TypeVar("Payload", bytes, str)


def cached_payload(key: tuple, build: Callable[[], Payload]) -> Payload:
    """An encoded view (payload bytes or a page of HTML), built once per session for ``key``."""
    store = st.session_state.setdefault(PAYLOAD_CACHE_KEY, {})
    if key not in store:
        _remember_in(PAYLOAD_CACHE_KEY, key, build())
    return store[key]


# --- what the views show: raw, rollout or norm-based; tokens or words -----------------------------

STOP_REASONS = {
    "eos": "generate.reason_eos",
    "max_new_tokens": "generate.reason_max",
    "stopped": "generate.reason_stopped",
}
EFFECTIVE_CAPTIONS = {"rollout": "effective.caption_rollout", "norm": "effective.caption_norm"}
EFFECTIVE_LABELS = {
    "raw": "effective.raw",
    "rollout": "effective.rollout",
    "norm": "effective.norm",
}


def _effective_label(mode: str, language: Lang) -> str:
    return t(EFFECTIVE_LABELS[mode], language)


def effective_selector(widget_key: str) -> EffectiveMode:
    """Raw weights, attention rollout or norm-based attention; shared by the attention pages."""
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
    return mode or "raw"


def model_named(name: str) -> LoadedModel:
    """The cached model ``name``, loaded as the last Analyze request loaded it: its device, and
    remote code only where that request turned it on for this very model. Any other choice
    would miss the cache and load a second copy (or fail, for a model that needs remote code)."""
    request: Request | None = st.session_state.get(REQUEST_KEY)
    device = request.device if request else None
    trust = bool(request and request.trust_remote_code and request.model == name)
    return get_model(name, device, trust)


def model_of(result: Analysis) -> LoadedModel:
    """The model behind ``result`` (see :func:`model_named`)."""
    return model_named(result.model_name)


def finish_generation() -> None:
    """The steps streamed so far (all of them, or those made before a Stop) become the session's
    :class:`~core.methods.generate.Generation`, built once rather than after every token (each build
    decodes the whole sequence again)."""
    pending = st.session_state.pop(GENERATION_PENDING_KEY, None)
    if pending is None or not pending[3]:
        return
    name, prompt, config, steps = pending
    st.session_state[GENERATION_KEY] = Generation.from_steps(
        model_named(name), prompt, config, steps
    )


def display_key(result: Analysis, mode: EffectiveMode = "raw") -> tuple:
    """What :func:`display_result` shows, as a key for caches of things built from it.

    Made from the session's own result, which lives until the next Analyze clears every cache,
    never from the shown analysis: that may be dropped from the display cache, and a new object
    may then get its ``id``."""
    words = bool(st.session_state.get(WORDS_KEY))
    return (id(result), mode, words, st.session_state.get(CJK_KEY, "character"))


def display_result(result: Analysis, mode: EffectiveMode = "raw") -> Analysis:
    """What the views show for ``result``: its raw weights, rollout or norm-based attention, over
    tokens or (sidebar toggle) words. Computed once per session and choice; when a choice
    cannot be made (an input too long for it), says why and shows the raw tokens."""
    key = display_key(result, mode)
    _, _, words, cjk = key
    if mode == "raw" and not words:
        return result
    store = st.session_state.setdefault(DISPLAY_CACHE_KEY, {})
    if key not in store:
        try:
            with heavy_work(), st.spinner(tr("effective.computing")):
                model = model_of(result)
                shown = effective_analysis(model, result, mode)
                if words:
                    shown = word_analysis(model, shown, cjk=cjk)
        except AttnScopeError as error:
            show_error(error)
            return result
        _remember_in(DISPLAY_CACHE_KEY, key, shown)
    return store[key]


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


def attention_view(payload: bytes) -> None:
    """Mount AttnScope's head/model view with ``payload`` (see ``viz.attention_view``)."""
    _ATTENTION_VIEW(
        data=payload,
        key=VIEW_COMPONENT_KEY,
        on_selected_change=_follow_view_selection,
        default={"selected": None},
    )
