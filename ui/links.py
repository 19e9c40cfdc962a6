"""Shareable links: a session's first run restores the view its address describes, and every run
keeps the address bar a link to what is shown."""

from __future__ import annotations

import streamlit as st

from core.policy.examples import load_examples
from core.policy.links import link_params, parse_link
from ui.state import (
    CUSTOM_CHOICE,
    CUSTOM_MODEL_KEY,
    EXAMPLE_KEY,
    HEAD_KEY,
    LAYER_KEY,
    LINK_KEY,
    MODEL_KEY,
    PAIR_KEY,
    REQUEST_KEY,
    TEXT_KEY,
    Request,
    current_result,
)
from ui.text import lang, tr

LINK_PROBLEMS = {
    "text_too_long": "link.text_too_long",
    "model_too_long": "link.model_too_long",
    "bad_layer": "link.bad_layer",
    "bad_head": "link.bad_head",
    "bad_example": "link.bad_example",
}


def apply_link(choices: list[str]) -> bool:
    """On a session's first run, put the view a shared link describes into the form (every value
    checked like typed input; bad ones are dropped with a notice); ``True`` when the link asks
    for an analysis. ``choices`` are the models the picker offers."""
    if st.session_state.get(LINK_KEY):
        return False
    st.session_state[LINK_KEY] = True
    examples = {e.id: e for e in load_examples()}
    view, problems = parse_link(st.query_params.to_dict(), examples=list(examples))
    if problems:
        notes = ", ".join(tr(LINK_PROBLEMS[problem]) for problem in problems)
        st.warning(tr("link.ignored", problems=notes))
    if not view.wants_analysis:
        return False
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
    else:
        st.session_state[TEXT_KEY] = view.text or ""
        st.session_state[PAIR_KEY] = view.pair or ""
    if view.layer is not None:
        st.session_state[LAYER_KEY] = view.layer
    if view.head is not None or view.average:
        st.session_state[HEAD_KEY] = None if view.average else view.head
    return True


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
