"""Text on the page: the interface language, catalogue lookups, user text made safe for
Markdown, and failures shown as one localized message."""

from __future__ import annotations

import streamlit as st

from core import AttnScopeError
from core.policy.i18n import Lang, parse_lang, t
from ui.state import LANG_KEY

# Characters Markdown (and Streamlit's flavour: LaTeX, :directives:) gives a meaning to.
_MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:")


def escape_markdown(text: str) -> str:
    r"""Backslash-escape ``text`` so a Markdown element shows it literally: no image fetched, no
    link made, no formatting, no LaTeX.

    >>> print(escape_markdown("![x](http://e/x.png) *b* $1$"))
    \!\[x\]\(http\://e/x\.png\) \*b\* \$1\$
    """
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in text)


def md(text: object) -> str:
    """User text made safe for a Markdown element (labels, captions, messages)."""
    return escape_markdown(str(text))


def lang() -> Lang:
    """The interface language: the sidebar's choice, first taken from ``?lang=``."""
    if LANG_KEY not in st.session_state:
        st.session_state[LANG_KEY] = parse_lang(st.query_params.get("lang"))
    return parse_lang(st.session_state[LANG_KEY])


def tr(key: str, /, **params: object) -> str:
    """``key`` in the interface language (see :func:`core.policy.i18n.t`)."""
    return t(key, lang(), **params)


def kind_label(kind: str, language: Lang) -> str:
    """A model kind, encoder or decoder, in ``language``."""
    return t("common.decoder" if kind == "decoder" else "common.encoder", language)


def show_error(error: Exception) -> None:
    """A failure as one message in the interface language; never a traceback."""
    if isinstance(error, AttnScopeError):
        # values in messages may be user input (a model name, a path): never Markdown
        st.error(error.localized(lang(), escape=escape_markdown))
    else:  # a bug or an unexpected library failure: say it plainly
        detail = md(str(error)[:300])
        st.error(tr("run.unexpected", kind=type(error).__name__, detail=detail))
