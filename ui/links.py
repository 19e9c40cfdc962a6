"""Shareable links and session files: a session's first run restores the view its address
describes (or analyses the default example), every run keeps the address bar a link to what is
shown, and the sidebar's Share section says how the text travels and offers the session file
that carries a text too long for any link."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.policy.errors import AttnScopeError
from core.policy.examples import load_examples
from core.policy.links import (
    MAX_SESSION_BYTES,
    Link,
    LinkProblem,
    SharedView,
    make_link,
    out_of_range,
    parse_link,
    read_session_file,
    session_file,
)
from ui.routes import MISSING_PARAM
from ui.services import app_settings
from ui.state import (
    CUSTOM_CHOICE,
    CUSTOM_MODEL_KEY,
    EXAMPLE_KEY,
    HEAD_KEY,
    LAYER_KEY,
    LINK_KEY,
    LINK_NOTE_KEY,
    LINK_OPENED_KEY,
    LINK_UPLOAD_KEY,
    MAX_TOKENS_KEY,
    MODEL_KEY,
    PAIR_KEY,
    REQUEST_KEY,
    TEXT_KEY,
    Origin,
    Request,
    current_result,
)
from ui.text import lang, md, show_error, tr

LINK_PROBLEMS = {
    "text_too_long": "link.text_too_long",
    "model_too_long": "link.model_too_long",
    "bad_layer": "link.bad_layer",
    "bad_head": "link.bad_head",
    "bad_example": "link.bad_example",
    "bad_packed": "link.bad_packed",
    "text_not_in_link": "link.text_not_in_link",
}
OUT_OF_RANGE = {"layer": "link.out_of_range_layer", "head": "link.out_of_range_head"}
CARRIED = {"example": "link.in_address", "text": "link.in_address", "packed": "link.packed"}
# Parameters that ask for a text: a link with none of them opens the default example.
TEXT_PARAMS = ("text", "z", "example", "pair", "toolong")
DOWNLOAD_BUTTON = "link_download"
SESSION_FILE_NAME = "attnscope-session.json"


@dataclass(frozen=True)
class LinkNote:
    """What to say once a link's or session file's analysis is done."""

    view: SharedView | None = None
    problems: tuple[LinkProblem, ...] = ()
    missing: str | None = None  # an address that was no page
    error: AttnScopeError | None = None  # a session file that could not be read


def list_separator() -> str:
    """What joins a list of short phrases in the interface language ("; " or "、")."""
    return tr("common.list_separator")


def _apply_view(view: SharedView, choices: list[str]) -> None:
    """Put ``view`` into the sidebar form (before its widgets are drawn in this run)."""
    examples = {e.id: e for e in load_examples()}
    if view.model:
        if view.model in choices:
            st.session_state[MODEL_KEY] = view.model
        else:
            st.session_state[MODEL_KEY] = CUSTOM_CHOICE
            st.session_state[CUSTOM_MODEL_KEY] = view.model
    if view.example:
        st.session_state[EXAMPLE_KEY] = view.example
        st.session_state[TEXT_KEY] = examples[view.example].text
        st.session_state[PAIR_KEY] = examples[view.example].pair or ""
    elif view.text:
        st.session_state[TEXT_KEY] = view.text
        st.session_state[PAIR_KEY] = view.pair or ""
    # A number out of the model's range shows the nearest one, and the notice says which.
    if view.layer is not None:
        st.session_state[LAYER_KEY] = max(view.layer, 0)
    if view.average:
        st.session_state[HEAD_KEY] = None
    elif view.head is not None:
        st.session_state[HEAD_KEY] = max(view.head, 0)


def _open_session_file() -> None:
    """The uploader's callback (before the script runs): read the file for the sidebar."""
    uploaded = st.session_state.get(LINK_UPLOAD_KEY)
    if uploaded is None:
        return
    data = uploaded.getvalue()[: MAX_SESSION_BYTES + 1]
    try:
        opened = read_session_file(data, examples=[e.id for e in load_examples()])
    except AttnScopeError as error:
        st.session_state[LINK_OPENED_KEY] = error
        return
    st.session_state[LINK_OPENED_KEY] = opened


def apply_link(choices: list[str]) -> Origin | None:
    """Put the view a link or session file describes into the form (every value checked like
    typed input; bad ones are dropped, and :func:`link_notice` says so after the run) and say who
    asks for an analysis: a session file just opened, a link on a session's first run, or, when
    the first address asks for no text, the start page's default example. Draws nothing, so no
    click can stop the script before the request is kept. ``choices``: the models offered."""
    opened = st.session_state.pop(LINK_OPENED_KEY, None)
    if isinstance(opened, AttnScopeError):
        st.session_state[LINK_NOTE_KEY] = LinkNote(error=opened)
    elif opened is not None:
        view, problems, limit = opened
        st.session_state[LINK_NOTE_KEY] = LinkNote(view, problems)
        if limit is not None:
            st.session_state[MAX_TOKENS_KEY] = max(2, min(limit, app_settings().max_tokens))
        if view.wants_analysis:
            _apply_view(view, choices)
            return "file"
    if st.session_state.get(LINK_KEY):
        return None
    st.session_state[LINK_KEY] = True
    params = st.query_params.to_dict()
    view, problems = parse_link(params, examples=[e.id for e in load_examples()])
    # ui.routes sent an address that is no page here
    missing = (params.get(MISSING_PARAM) or "")[:200] or None
    st.session_state[LINK_NOTE_KEY] = LinkNote(view, problems, missing=missing)
    if view.wants_analysis:
        _apply_view(view, choices)
        return "link"
    if any(key in params for key in TEXT_PARAMS):
        return None  # it asked for a text it cannot give: analyse nothing rather than another
    _apply_view(view, choices)  # a model, layer or head for the default example
    return "start"


def link_notice() -> None:
    """Once a link's (or session file's) analysis is done, say in one notice what of it could
    not be used, the layer and head out of the model's range included."""
    note: LinkNote | None = st.session_state.pop(LINK_NOTE_KEY, None)
    if note is None:
        return
    if note.missing:
        st.info(tr("link.no_such_page", path=md(note.missing)))
    if note.error is not None:
        show_error(note.error)
    parts = [tr(LINK_PROBLEMS[problem]) for problem in note.problems]
    result = current_result()
    if result is not None and note.view is not None:
        for issue in out_of_range(note.view, result.n_layers, result.n_heads):
            parts.append(
                tr(OUT_OF_RANGE[issue.what], value=issue.value, last=issue.last, shown=issue.shown)
            )
    if parts:
        st.warning(tr("link.ignored", problems=list_separator().join(parts)))


def _view_of(request: Request) -> dict:
    """The shown view of ``request``'s result: what a link or a session file carries."""
    result = current_result()
    return {
        "model": request.model,
        "text": request.text,
        "pair": request.pair,
        "layer": min(st.session_state[LAYER_KEY], result.n_layers - 1),
        "head": st.session_state[HEAD_KEY],
        "lang": lang(),
    }


def _share_section(request: Request | None, link: Link | None) -> None:
    """The sidebar's Share section: how the address bar carries the text, the session file
    (download) and a session file to open (upload)."""
    with st.sidebar:
        if link is not None and link.carries == "none":
            st.warning(tr("link.too_long", chars=len(request.text) + len(request.pair or "")))
        with st.expander(tr("link.share"), expanded=link is not None and link.carries == "none"):
            if link is not None and request is not None:
                if link.carries in CARRIED:
                    st.caption(tr(CARRIED[link.carries]))
                data = session_file(**_view_of(request), max_tokens=request.max_tokens)
                st.download_button(
                    tr("link.download"),
                    data,
                    file_name=SESSION_FILE_NAME,
                    mime="application/json",
                    key=DOWNLOAD_BUTTON,
                    on_click="ignore",
                )
            st.file_uploader(
                tr("link.upload"),
                type=["json"],
                key=LINK_UPLOAD_KEY,
                on_change=_open_session_file,
                help=tr("link.upload_help"),
            )


def sync_link() -> None:
    """After the run: say what a link could not give, keep the address bar a link to what is
    shown (Streamlit drops query parameters when the page changes, so they are put back on every
    run), and draw the Share section."""
    link_notice()
    request: Request | None = st.session_state.get(REQUEST_KEY)
    if request is None or current_result() is None:
        _share_section(None, None)
        return
    examples = {e.id: (e.text, e.pair) for e in load_examples()}
    link = make_link(**_view_of(request), examples=examples)
    if st.query_params.to_dict() != link.params:
        st.query_params.from_dict(link.params)
    _share_section(request, link)
