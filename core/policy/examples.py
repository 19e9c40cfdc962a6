"""Example texts shipped in ``assets/examples/examples.json`` (English, Japanese, a pair, code),
each with its title in every interface language."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from core.policy.i18n import DEFAULT_LANG, Lang

__all__ = ["EXAMPLES_FILE", "Example", "load_examples"]

EXAMPLES_FILE = Path(__file__).resolve().parents[2] / "assets" / "examples" / "examples.json"


@dataclass(frozen=True)
class Example:
    id: str
    titles: dict[str, str]  # interface language -> title
    lang: str  # the text's own language
    text: str
    pair: str | None = None

    def title(self, language: Lang = DEFAULT_LANG) -> str:
        """The title in the interface ``language`` (English where it has none).

        >>> load_examples()[0].title("ja")
        '英語：「it」は何を指す？'
        """
        return self.titles.get(language) or self.titles[DEFAULT_LANG]


@functools.cache
def load_examples() -> tuple[Example, ...]:
    """The bundled examples, in file order.

    >>> any(example.lang == "ja" for example in load_examples())
    True
    """
    entries = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
    return tuple(Example(**entry) for entry in entries)
