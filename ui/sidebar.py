"""The sidebar form: language, model (built-in, allowed or typed in), example, text and pair,
words, limits and device; it turns what is filled in (or what a shared link asks for) into a
:class:`~ui.state.Request`."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import streamlit as st

from core import BUILTIN_MODELS, DEFAULT_MODEL
from core.policy.examples import load_examples
from core.policy.i18n import DEFAULT_LANG, LANGUAGES, Lang, t
from core.policy.settings import Settings
from ui.analyze import ask
from ui.links import apply_link
from ui.services import app_settings
from ui.state import (
    ANALYZE_KEY,
    CJK_KEY,
    CUSTOM_CHOICE,
    CUSTOM_MODEL_KEY,
    DEVICE_KEY,
    EFFECTIVE_KEY,
    EXAMPLE_KEY,
    HEAD_KEY,
    LANG_KEY,
    LAYER_KEY,
    MAX_TOKENS_KEY,
    MODEL_KEY,
    PAIR_KEY,
    REMOTE_CODE_KEY,
    REQUEST_KEY,
    TEXT_KEY,
    WORDS_KEY,
    Request,
    current_result,
)
from ui.text import kind_label, lang, tr

MODEL_DESCRIPTIONS = {"minilm": "about.minilm", "smollm2": "about.smollm2"}
# The sidebar's width in pixels (Streamlit's default is 300): a model's name and kind fit its
# selector in either language, "SmolLM2-135M-Instruct（デコーダ）" included.
SIDEBAR_WIDTH = 350
# What of the form can differ from the analysis on screen, and its name in the notice.
CHANGED = {
    "model": "sidebar.changed_model",
    "text": "sidebar.changed_text",
    "pair": "sidebar.changed_pair",
    "max_tokens": "sidebar.changed_max_tokens",
}
DEFAULT_MAX_TOKENS = 512


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


def _example_label(example_id: str, language: Lang) -> str:
    return next(e.title(language) for e in load_examples() if e.id == example_id)


def _cjk_label(rule: str, language: Lang) -> str:
    return t("sidebar.cjk_script" if rule == "script" else "sidebar.cjk_character", language)


def model_choices(settings: Settings) -> list[str]:
    """What the model picker offers: the built-ins (those allowed, in demo mode), any other
    allowed names, and "Other" (a Hub id or folder) unless the allowlist is closed."""
    if settings.allowed_models is None:
        return [*BUILTIN_MODELS, CUSTOM_CHOICE]
    allowed = [name for name in BUILTIN_MODELS if name in settings.allowed_models]
    return allowed + [name for name in settings.allowed_models if name not in BUILTIN_MODELS]


def selected_model_name() -> str:
    """The model chosen in the sidebar: a built-in name, or the id or folder typed for Other."""
    choice = st.session_state.get(MODEL_KEY, DEFAULT_MODEL)
    if choice == CUSTOM_CHOICE:
        return (st.session_state.get(CUSTOM_MODEL_KEY) or "").strip()
    return choice


def _is_decoder(choice: str) -> bool:
    return choice in BUILTIN_MODELS and BUILTIN_MODELS[choice].kind == "decoder"


def _request(settings: Settings) -> Request:
    device = st.session_state[DEVICE_KEY]
    decoder = _is_decoder(st.session_state[MODEL_KEY])
    return Request(
        model=selected_model_name(),
        text=st.session_state[TEXT_KEY],
        pair=None if decoder else (st.session_state[PAIR_KEY] or None),
        max_tokens=min(int(st.session_state[MAX_TOKENS_KEY]), settings.max_tokens),
        device=None if device == "auto" else device,
        trust_remote_code=settings.allow_remote_code and bool(st.session_state[REMOTE_CODE_KEY]),
    )


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


def _settings_expander(settings: Settings) -> None:
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
                tr("sidebar.remote_code"), key=REMOTE_CODE_KEY, help=tr("sidebar.remote_code_help")
            )


def _press() -> None:
    """Analyze's callback (before the script runs): ask for the form's analysis."""
    ask(_request(app_settings()))


def sidebar() -> None:
    """Draw the input form; ask for an analysis (:func:`ui.analyze.ask`) when a link or session
    file wants one, or (a session's first run) for the default example; Analyze asks from its
    callback."""
    settings = app_settings()
    _init_state(settings)
    choices = model_choices(settings)
    origin = apply_link(choices)
    if origin is not None:  # before any widget: a click now must not lose it
        ask(replace(_request(settings), origin=origin))
    examples = [e.id for e in load_examples()]
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
            examples,
            key=EXAMPLE_KEY,
            format_func=partial(_example_label, language=lang()),
            on_change=_use_example,
        )
        st.text_area(
            tr("sidebar.text"), key=TEXT_KEY, height=140, max_chars=settings.max_text_chars
        )
        if not _is_decoder(choice):
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
        _settings_expander(settings)
        st.button(
            tr("sidebar.analyze"),
            key=ANALYZE_KEY,
            type="primary",
            width="stretch",
            on_click=_press,
        )


def input_notice() -> None:
    """Under the Analyze button, after the run: say when the form no longer describes the
    analysis on screen (a text typed, another model, a click that came first), so the sidebar
    never shows a text that does not belong to the result without saying so."""
    analysed: Request | None = st.session_state.get(REQUEST_KEY)
    if analysed is None or current_result() is None:
        return
    form = _request(app_settings())
    changed = [
        tr(key)
        for field, key in CHANGED.items()
        if getattr(form, field) != getattr(analysed, field)
    ]
    if changed:
        st.sidebar.info(tr("sidebar.not_analysed", what=tr("common.list_separator").join(changed)))
