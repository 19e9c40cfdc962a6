"""The interface's words in English and Japanese: one JSON catalogue per language.

Every label, help text, message and error the app shows is a key in ``assets/i18n/<lang>.json``;
:func:`t` looks it up and fills its ``{placeholders}``. A key missing from a catalogue shows as
``⟦key⟧`` (never a crash), and the tests fail on any ``⟦`` on any page in either language and on
any key present in one catalogue but not the other.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Literal, get_args

__all__ = ["DEFAULT_LANG", "LANGUAGES", "Lang", "catalogue", "missing_marker", "parse_lang", "t"]

Lang = Literal["en", "ja"]
LANGUAGES: dict[Lang, str] = {"en": "English", "ja": "日本語"}
DEFAULT_LANG: Lang = "en"
CATALOGUES = Path(__file__).resolve().parents[2] / "assets" / "i18n"


@functools.cache
def catalogue(lang: Lang) -> dict[str, str]:
    """The catalogue of ``lang``: key -> text."""
    return json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))


def missing_marker(key: str) -> str:
    """What a key without text shows: visible in the app, searchable by the tests."""
    return f"⟦{key}⟧"


def parse_lang(value: object) -> Lang:
    """A supported language from a query parameter or setting, else English.

    >>> parse_lang("ja"), parse_lang("JA "), parse_lang("fr"), parse_lang(None)
    ('ja', 'ja', 'en', 'en')
    """
    text = str(value or "").strip().lower()
    return text if text in get_args(Lang) else DEFAULT_LANG  # type: ignore[return-value]


def t(key: str, lang: Lang = DEFAULT_LANG, /, **params: object) -> str:
    """The text of ``key`` in ``lang``, with ``{name}`` placeholders filled from ``params``.

    >>> t("common.layer", "ja")
    'レイヤー'
    >>> t("heatmap.title_head", "en", layer=2, head=5)
    'Layer 2, head 5'
    >>> t("no.such.key", "en")
    '⟦no.such.key⟧'
    """
    text = catalogue(lang).get(key)
    if text is None:
        return missing_marker(key)
    return text.format(**params) if params else text
