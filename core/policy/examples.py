"""Example texts shipped in ``assets/examples/examples.json`` (English, Japanese, a pair, code)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EXAMPLES_FILE", "Example", "load_examples"]

EXAMPLES_FILE = Path(__file__).resolve().parents[2] / "assets" / "examples" / "examples.json"


@dataclass(frozen=True)
class Example:
    id: str
    title: str
    lang: str
    text: str
    pair: str | None = None


@functools.cache
def load_examples() -> tuple[Example, ...]:
    """The bundled examples, in file order.

    >>> any(example.lang == "ja" for example in load_examples())
    True
    """
    entries = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
    return tuple(Example(**entry) for entry in entries)
