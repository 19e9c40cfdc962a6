"""Words, not pieces: group subword tokens into words and merge their attention.

Tokenizers cut text into pieces (``token`` + ``##ization``, ``Ġunbelie`` + ``v`` + ``ably``, the
three bytes of ``語``). This module groups the pieces back into words and turns token-level
attention into word-level attention that every view and statistic reads unchanged.

**What a word is.** Words are defined on the characters of the original text, so WordPiece,
SentencePiece and byte-level BPE give the same words wherever their pieces allow
(:func:`character_words`):

1. Whitespace separates words and belongs to none.
2. Punctuation (Unicode category ``P*``: ``. , ! ? ' - : ;``) and operators (math symbols
   ``+ = < > | ~`` and ``^``) are a word of their own, a run of them (``...``, ``?!``, ``==``,
   ``+=``, ``->``) one word. Brackets and quotes (``( ) [ ] { } 「 」 “ ”``) are each a word of
   their own, never a run: ``))`` is two words, ``):`` is ``)`` + ``:``. So code splits at
   identifiers and operators: ``print(add(1, 2))`` is ``print ( add ( 1 , 2 ) )``. The
   underscore is part of a word (``max_len``, ``__init__``).
   One apostrophe, hyphen or full stop between two letters or digits of the same chunk joins
   them: ``isn't``, ``3.14``, ``e.g``, ``state-of-the-art`` stay whole; ``e.g.`` is ``e.g`` + ``.``;
   so does one comma or colon between digits (``1,000``, ``12:30``). A run of ``+`` or ``#``
   ending a word stays in it (``C++``, ``C#``). Other symbols (currency, emoji) stay in the word
   they touch: ``$5``; ``%`` is punctuation, so ``5%`` is ``5`` + ``%``.
3. CJK text has no spaces. With ``cjk="character"`` (default) every Han character, hiragana and
   katakana is a word of its own: predictable, the same in Chinese and Japanese, and never wrong
   about a word boundary. With ``cjk="script"`` a run of one script is one word (``吾輩`` |
   ``は`` | ``猫`` | ``である``): a cheap Japanese heuristic (kanji compounds, katakana loanwords)
   that needs no dictionary, but joins particles and endings (``はまだ``) and puts a whole Chinese
   sentence into one word. Korean is written with spaces, so Hangul follows rule 1; so do scripts
   such as Thai that this module does not segment.

Tokens then map onto those character words (:func:`word_ids`): a token joins the word its
characters belong to; a token whose characters span several words joins them into one (tokens
are never split); pieces of one multi-byte character always share a word; a special token
(``[CLS]``, ``<|im_start|>``) is a word of its own. Whitespace that the tokenizer gives tokens of
its own (``Ċ``, ``ĊĊ``, the ``Ġ`` of a double space) is a word of its own, a run of such tokens one
word (shown ``↵↵``, ``␣``), except a single space token right before a word that has no leading
space of its own: byte-level BPE splits `` 3`` into ``Ġ`` + ``3``, and that ``Ġ`` is the number's
leading space, as it is inside ``Ġword``.

The tokenizer's own ``encoding.word_ids()`` is not used: it reports the pre-tokenizer's pieces,
which differ between tokenizers (byte-level BPE puts a whole Japanese sentence into one "word"
and each digit of ``2024`` into its own; WordPiece splits ``isn't`` into three).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from core.methods.word_labels import merge_labels

__all__ = [
    "CjkRule",
    "Groups",
    "Words",
    "character_words",
    "groups_from_word_ids",
    "merge_labels",
    "word_ids",
]

CjkRule = Literal["character", "script"]
Groups = tuple[tuple[int, ...], ...]  # token positions of each word, words in order

_CharClass = Literal["space", "punct", "bracket", "word", "han", "hiragana", "katakana"]
_CJK: frozenset[str] = frozenset({"han", "hiragana", "katakana"})
# One of these between two letter/digit runs joins them (isn't, state-of-the-art, 3.14, e.g) ...
_JOINERS = frozenset("'’.-‐‑")
# ... and one of these between two digits (1,000, 12:30).
_DIGIT_JOINERS = frozenset(",:")
# A run of these right after a word, with no word after it, stays in the word: C++, C#, F#.
_WORD_SUFFIXES = frozenset("+#")


@dataclass(frozen=True)
class Words:
    """How the tokens of one input group into words."""

    groups: Groups  # token positions of each word, contiguous and in order
    labels: tuple[str, ...]  # each word as written in the text
    special: tuple[bool, ...]  # a special token ([CLS], <|im_start|>): always a word of its own
    word_of_token: tuple[int, ...]  # the word each token belongs to

    @property
    def n_words(self) -> int:
        return len(self.groups)


def _char_class(ch: str) -> _CharClass:
    """The class of one character for word grouping (combining marks are handled by the caller)."""
    if ch.isspace():
        return "space"
    code = ord(ch)
    if 0x3040 <= code <= 0x309F:
        return "hiragana"
    if 0x30A0 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return "katakana"
    if (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x3FFFF
        or 0xF900 <= code <= 0xFAFF
        or code in (0x3005, 0x3006, 0x3007)  # 々 〆 〇
    ):
        return "han"
    category = unicodedata.category(ch)
    if category in ("Ps", "Pe", "Pi", "Pf"):  # brackets and quotes
        return "bracket"
    if category == "Pc":  # the underscore joins identifiers
        return "word"
    if category.startswith("P") or category == "Sm" or ch in "^`":  # punctuation, operators
        return "punct"
    return "word"


def character_words(text: str, *, cjk: CjkRule = "character") -> list[int]:
    """The word each character of ``text`` belongs to (``-1`` for whitespace), by the rules in
    the module docstring. Word indices count from 0 in text order.

    >>> character_words("isn't it?")
    [0, 0, 0, 0, 0, -1, 1, 1, 2]
    >>> character_words("猫です。")  # each kana and kanji a word, 。 too
    [0, 1, 2, 3]
    >>> character_words("猫です。", cjk="script")
    [0, 1, 1, 2]
    """
    classes: list[_CharClass] = []
    for ch in text:
        cls = _char_class(ch)
        # A combining mark (Mn, Mc, Me: an accent, ゙) takes the class of the character it marks.
        if cls != "space" and unicodedata.category(ch).startswith("M") and classes:
            cls = classes[-1] if classes[-1] != "space" else "word"
        classes.append(cls)
    marks = [i > 0 and unicodedata.category(ch).startswith("M") for i, ch in enumerate(text)]

    # Units: a run of letters/digits/symbols, a run of punctuation, one CJK character (or, with
    # cjk="script", a run of one script). Units never cross whitespace.
    units: list[tuple[_CharClass, int, int]] = []  # (class, start, end)
    for i, cls in enumerate(classes):
        if cls == "space":
            continue
        prev = units[-1] if units else None
        adjacent = prev is not None and prev[2] == i
        same_run = adjacent and prev[0] == cls
        if (cls in _CJK and cjk == "character" or cls == "bracket") and not marks[i]:
            same_run = False
        # The prolonged sound mark ー continues a hiragana run as well as a katakana one.
        if adjacent and cjk == "script" and text[i] == "ー" and prev[0] in _CJK:
            same_run = True
        if same_run:
            units[-1] = (prev[0], prev[1], i + 1)
        else:
            units.append((cls, i, i + 1))

    # "C++", "C#": a run of + or # ending a word (nothing of a word right after it) joins it.
    for k in range(len(units) - 1, 0, -1):
        cls, start, end = units[k]
        before = units[k - 1]
        after = units[k + 1] if k + 1 < len(units) else None
        if (
            cls == "punct"
            and set(text[start:end]) <= _WORD_SUFFIXES
            and before[0] == "word"
            and before[2] == start
            and (after is None or after[1] > end or after[0] not in ("word", *_CJK))
        ):
            units[k - 1 : k + 1] = [("word", before[1], end)]

    # One joiner between two letter/digit runs of one chunk joins them into one word.
    def interior(k: int) -> bool:
        if units[k][0] != "punct" or k == 0 or k == len(units) - 1:
            return False
        before, after = units[k - 1], units[k + 1]
        mark = text[units[k][1] : units[k][2]]
        digits = text[before[2] - 1].isdigit() and text[after[1]].isdigit()
        return (
            before[0] == "word"
            and after[0] == "word"
            and before[2] == units[k][1]
            and units[k][2] == after[1]
            and (mark in _JOINERS or (digits and mark in _DIGIT_JOINERS))
        )

    out = [-1] * len(text)
    word = -1
    for k, (cls, start, end) in enumerate(units):
        joins = interior(k) or (cls == "word" and k > 0 and interior(k - 1))
        if not joins:
            word += 1
        for i in range(start, end):
            out[i] = word
    return out


def word_ids(
    texts: Sequence[str],
    offsets: Sequence[tuple[int, int]],
    sequence_ids: Sequence[int | None],
    special: Sequence[bool] | None = None,
    *,
    cjk: CjkRule = "character",
) -> tuple[int, ...]:
    """The word each token belongs to, from its character offsets (rules: module docstring).

    ``offsets[t] = (start, end)`` are token t's characters in ``texts[sequence_ids[t]]``, as a fast
    tokenizer gives them (``return_offsets_mapping``) or
    :func:`core.engine.tokens.offsets_by_decoding` makes them; ``sequence_ids[t] is None`` or
    ``special[t]`` marks a special token. Unlike ``encoding.word_ids()``, every token gets a word
    (special tokens their own) and words never cross sentences.

    WordPiece (``##`` continues a word; offsets leave out spaces):

    >>> word_ids(["unbelievably hard"], [(0, 0), (0, 2), (2, 12), (13, 17), (0, 0)],
    ...          [None, 0, 0, 0, None])
    (0, 1, 1, 2, 3)

    Byte-level BPE (``Ġ`` starts a word; the two pieces of 日 share a span; a lone ``Ġ`` before a
    digit is that number's leading space):

    >>> word_ids(["Hi 日本 3"], [(0, 2), (2, 4), (3, 4), (4, 5), (5, 6), (6, 7)], [0] * 6)
    (0, 1, 1, 2, 3, 3)

    SentencePiece (``▁`` starts a word; here offsets include the space, as in some tokenizers):

    >>> word_ids(["I can't"], [(0, 1), (1, 5), (5, 6), (6, 7)], [0] * 4)
    (0, 1, 1, 1)
    """
    n = len(offsets)
    if len(sequence_ids) != n or (special is not None and len(special) != n):
        raise ValueError("offsets, sequence_ids and special need one entry per token")
    char_words = {
        seq: character_words(texts[seq], cjk=cjk) for seq in set(sequence_ids) if seq is not None
    }

    def is_special(t: int) -> bool:
        return sequence_ids[t] is None or bool(special is not None and special[t])

    def words_of(t: int) -> list[int]:
        seq = sequence_ids[t]
        assert seq is not None
        chars = char_words[seq]
        start, end = offsets[t]
        return [chars[i] for i in range(max(start, 0), min(end, len(chars))) if chars[i] >= 0]

    def starts_with_space(t: int) -> bool:
        seq = sequence_ids[t]
        assert seq is not None
        start, end = offsets[t]
        return start < end and start < len(texts[seq]) and texts[seq][start].isspace()

    def blank(t: int) -> bool:  # whitespace only, or no characters at all
        return not is_special(t) and not words_of(t)

    out: list[int] = []
    current = -1
    # The open word: its sequence and last character word; ``leading`` when it holds only the
    # space in front of the next token; open_seq None when the next token starts a new word.
    open_seq: int | None = None
    open_last: int | None = None
    leading = False
    t = 0
    while t < n:
        if is_special(t):
            current += 1
            out.append(current)
            open_seq, leading = None, False
            t += 1
            continue
        seq = sequence_ids[t]
        if blank(t):
            # A run of whitespace tokens is one word, except one space right before a word
            # that has no leading space of its own ("Ġ" + "3"): that word's leading space.
            end = t + 1
            while end < n and blank(end) and sequence_ids[end] == seq:
                end += 1
            start_char, end_char = offsets[t]
            assert seq is not None
            lone_space = end == t + 1 and texts[seq][start_char:end_char] in ("", " ")
            attach = (
                lone_space
                and end < n
                and not is_special(end)
                and sequence_ids[end] == seq
                and not starts_with_space(end)
            )
            current += 1
            out.extend([current] * (end - t))
            open_seq, open_last, leading = (seq, None, True) if attach else (None, None, False)
            t = end
            continue
        covered = words_of(t)
        first, last = min(covered), max(covered)
        joins = open_seq == seq and (leading or (open_last is not None and first <= open_last))
        if not joins:
            current += 1
            open_last = last
        else:
            open_last = last if open_last is None else max(open_last, last)
        out.append(current)
        open_seq, leading = seq, False
        t += 1
    return tuple(out)


def groups_from_word_ids(ids: Sequence[int]) -> Groups:
    """Token positions of each word from each token's word index (words contiguous, in order).

    >>> groups_from_word_ids([0, 1, 1, 2])
    ((0,), (1, 2), (3,))
    """
    groups: list[list[int]] = []
    for t, w in enumerate(ids):
        if w == len(groups):
            groups.append([t])
        elif w == len(groups) - 1:
            groups[-1].append(t)
        else:
            raise ValueError(f"word ids must be contiguous and in order, got {list(ids)}")
    return tuple(tuple(g) for g in groups)
