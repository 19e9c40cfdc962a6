"""Small user-given values (environment variables, link parameters) read strictly.

``str.isdigit`` is not the test for "a number ``int`` accepts": it is true for superscripts and
other Unicode digits (``"²"``) on which ``int`` then raises. One definition serves every place that
reads a whole number from outside.
"""

from __future__ import annotations

import re

__all__ = ["whole_number"]

_WHOLE = re.compile(r"[0-9]+")


def whole_number(text: str | None) -> int | None:
    """``text`` as a non-negative whole number in ASCII digits (spaces around allowed), else None.

    >>> whole_number(" 12 "), whole_number("²"), whole_number("-1"), whole_number("")
    (12, None, None, None)
    >>> whole_number(None) is None
    True
    """
    if text is None or not _WHOLE.fullmatch(text.strip()):
        return None
    return int(text.strip())
