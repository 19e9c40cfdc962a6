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


class _Count(int):
    """A whole-number parameter: ``{n:token|tokens}`` in a text writes the word for ``n``,
    singular for 1, else plural (English needs it; Japanese has one form and does not use it).

    >>> "{n} {n:token|tokens}".format(n=_Count(1)), "{n} {n:token|tokens}".format(n=_Count(2))
    ('1 token', '2 tokens')
    """

    def __format__(self, spec: str) -> str:
        if "|" in spec:
            one, other = spec.split("|", 1)
            return one if self == 1 else other
        return int.__format__(int(self), spec)


def t(key: str, lang: Lang = DEFAULT_LANG, /, **params: object) -> str:
    """The text of ``key`` in ``lang``, with ``{name}`` placeholders filled from ``params``; a
    count's word agrees with it through ``{name:singular|plural}``.

    >>> t("common.layer", "ja")
    'レイヤー'
    >>> t("heatmap.title_head", "en", layer=2, head=5)
    'Layer 2, head 5'
    >>> t("generate.summary", "en", tokens=1, reason="Stop")
    '1 new token; stopped by: Stop.'
    >>> t("no.such.key", "en")
    '⟦no.such.key⟧'
    """
    text = catalogue(lang).get(key)
    if text is None:
        return missing_marker(key)
    if not params:
        return text
    counted = {
        name: _Count(value) if isinstance(value, int) and not isinstance(value, bool) else value
        for name, value in params.items()
    }
    return text.format(**counted)
