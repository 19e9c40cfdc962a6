"""Readable token labels: what a person should see for each token, in any tokenizer.

Raw tokens carry tokenizer markers (``##`` in WordPiece, ``▁`` in SentencePiece, ``Ġ`` in byte-level
BPE) and, in byte-level BPE, pieces of one multi-byte character (``日`` becomes ``æĹ`` + ``¥``).
Labels come from the user's own text through the tokenizer's character offsets, so they are always
real characters; a character split over several tokens is shown on each piece as ``日(1/2)``,
``日(2/2)``. Whitespace and invisible characters are made visible.

Token ids that were never text (a generated sequence) get character offsets by decoding them
(:func:`offsets_by_decoding`); a piece that holds only part of a character shows its bytes
(:func:`bytes_label`), never mojibake.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

Decode = Callable[[list[int]], str]  # token ids -> text, e.g. a tokenizer's decode

__all__ = [
    "broken_as_bytes",
    "bytes_label",
    "byte_level_bytes",
    "decoded_piece",
    "isolate_rtl",
    "labels_by_decoding",
    "labels_from_offsets",
    "make_visible",
    "mark_unknown",
    "offsets_by_decoding",
    "piece_label",
    "readable_raw_token",
]

# Whitespace that would otherwise vanish from a label.
_VISIBLE_WHITESPACE = {" ": "␣", "\n": "↵", "\r": "␍", "\t": "⇥", "\u3000": "␣"}


def make_visible(text: str) -> str:
    """Trim surrounding whitespace and show what would otherwise be invisible.

    A label of only whitespace shows symbols (``␣`` for a space, ``↵`` for a newline); control,
    format (zero-width) and other invisible characters inside a label show as ``<U+200B>``.

    >>> make_visible(" world")
    'world'
    >>> make_visible("\\n\\n")
    '↵↵'
    >>> make_visible("a\\u200bb")
    'a<U+200B>b'
    """
    stripped = text.strip()
    if not stripped:
        return "".join(_VISIBLE_WHITESPACE.get(ch, f"<U+{ord(ch):04X}>") for ch in text)
    out = []
    for ch in stripped:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn") or (category == "Zs" and ch != " "):
            out.append(_VISIBLE_WHITESPACE.get(ch, f"<U+{ord(ch):04X}>"))
        else:
            out.append(ch)
    return "".join(out)


def isolate_rtl(text: str) -> str:
    """``text`` between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE (U+2068, U+2069) when it
    holds right-to-left letters (Hebrew, Arabic), so that what follows it in a label (a piece
    number, ``[UNK]``) is laid out after it, not before: ``ש(1/2)``, never ``(1/2)ש``.

    >>> isolate_rtl("ש"), isolate_rtl("日")
    ('\u2068ש\u2069', '日')
    """
    if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text):
        return f"\u2068{text}\u2069"
    return text


def piece_label(label: str, k: int, n: int) -> str:
    """The label of piece ``k`` of ``n`` of one character: ``日(1/2)``, the character isolated
    when it is written right to left (:func:`isolate_rtl`).

    >>> piece_label("日", 1, 2)
    '日(1/2)'
    """
    return f"{isolate_rtl(label)}({k}/{n})"


def labels_from_offsets(
    texts: Sequence[str],
    offsets: Sequence[tuple[int, int]],
    sequence_ids: Sequence[int | None],
    raw_tokens: Sequence[str],
) -> list[str]:
    """Labels cut from the original text by each token's ``(start, end)`` character offsets.

    ``sequence_ids[t]`` says which of ``texts`` token t came from (``None`` for special tokens,
    which keep their raw form, e.g. ``[CLS]``). Tokens whose character spans overlap are pieces of
    one character and are numbered ``(k/n)``.

    >>> text = "Hi 日本"
    >>> labels_from_offsets([text], [(0, 2), (2, 4), (3, 4), (4, 5)], [0, 0, 0, 0],
    ...                     ["Hi", "Ġæ", "Ĺ¥", "æľ¬"])
    ['Hi', '日(1/2)', '日(2/2)', '本']
    >>> labels_from_offsets(["a b"], [(0, 0), (0, 1), (2, 3), (0, 0)], [None, 0, 0, None],
    ...                     ["[CLS]", "a", "b", "[SEP]"])
    ['[CLS]', 'a', 'b', '[SEP]']
    """
    spans: list[tuple[int, int, int] | None] = []
    for (start, end), seq in zip(offsets, sequence_ids, strict=True):
        spans.append(None if seq is None or end <= start else (seq, start, end))
    base = [
        make_visible(texts[span[0]][span[1] : span[2]]) if span else make_visible(raw)
        for span, raw in zip(spans, raw_tokens, strict=True)
    ]
    # Group runs of consecutive tokens whose spans overlap: one character cut into pieces.
    groups: list[list[int]] = []
    for t, span in enumerate(spans):
        prev = spans[t - 1] if t else None
        overlaps = span and prev and span[0] == prev[0] and span[1] < prev[2]
        if overlaps:
            groups[-1].append(t)
        else:
            groups.append([t])
    return _number_fragments(base, groups)


def labels_by_decoding(ids: Sequence[int], decode: Callable[[list[int]], str]) -> list[str]:
    """Labels for tokenizers without character offsets: decode each token on its own.

    A token that decodes to a replacement character (``\\ufffd``) holds part of a multi-byte
    character: it is decoded together with the tokens that follow until the character is whole,
    and every piece shows that character, numbered ``(k/n)``. WordPiece's ``##`` is dropped.

    >>> pieces = {0: b"Hi", 1: b" \\xe6\\x97", 2: b"\\xa5", 3: "本".encode(), 4: b"##ing"}
    >>> def decode(ids):
    ...     return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")
    >>> labels_by_decoding([0, 1, 2, 3, 4], decode)
    ['Hi', '日(1/2)', '日(2/2)', '本', 'ing']
    """
    labels: list[str] = []
    groups: list[list[int]] = []
    t = 0
    while t < len(ids):
        end = t + 1
        text = decode([ids[t]])
        # A character is at most 4 UTF-8 bytes, so at most 4 tokens need to be joined.
        while "\ufffd" in text and end < len(ids) and end - t < 4:
            end += 1
            text = decode(list(ids[t:end]))
        if "\ufffd" in text:  # not a split character after all: show the single token as it is
            end = t + 1
            text = decode([ids[t]])
        if text.startswith("##") and len(text) > 2:
            text = text[2:]
        labels.extend([make_visible(text)] * (end - t))
        groups.append(list(range(t, end)))
        t = end
    return _number_fragments(labels, groups)


def mark_unknown(
    labels: Sequence[str], ids: Sequence[int], unk_id: int | None, unk_token: str | None
) -> list[str]:
    """``labels`` with each unknown token marked: the model saw ``[UNK]``, not the characters it
    stands for, so its label shows both, ``😀 [UNK]`` (a label that already reads ``[UNK]`` stays).

    >>> mark_unknown(["I", "😀", "[UNK]"], [40, 100, 100], 100, "[UNK]")
    ['I', '😀 [UNK]', '[UNK]']
    """
    if unk_id is None or not unk_token:
        return list(labels)
    return [
        f"{isolate_rtl(label)} {unk_token}" if token_id == unk_id and label != unk_token else label
        for label, token_id in zip(labels, ids, strict=True)
    ]


def _number_fragments(labels: list[str], groups: list[list[int]]) -> list[str]:
    """Suffix ``(k/n)`` to each of the n labels in a group of more than one token."""
    out = list(labels)
    for group in groups:
        if len(group) > 1:
            for k, t in enumerate(group, start=1):
                out[t] = piece_label(labels[t], k, len(group))
    return out


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, inverted: the printable character that stands for each
    byte (``Ġ`` is the space byte 0x20, ``Ċ`` the newline 0x0A) -> the byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + shifted)
            shifted += 1
    return {ch: b for b, ch in chars.items()}


_BYTE_LEVEL = _byte_level_alphabet()
# Decoding this many tokens before a piece lets the tokenizer place the piece's leading space the
# way it does inside a text (SentencePiece drops a leading space at the start of what it decodes).
_DECODE_CONTEXT = 4


def byte_level_bytes(raw_token: str) -> bytes | None:
    """The bytes a byte-level BPE token (GPT-2, SmolLM2) stands for, or ``None`` if ``raw_token``
    is not written in that alphabet.

    >>> byte_level_bytes("Ġæ")  # a space and the first byte of 日
    b' \\xe6'
    >>> byte_level_bytes("▁the") is None  # SentencePiece's ▁ is not a byte-level character
    True
    """
    try:
        return bytes(_BYTE_LEVEL[ch] for ch in raw_token)
    except KeyError:
        return None


def bytes_label(raw_token: str) -> str:
    """A readable label for a token that holds only part of a character: its bytes in hex,
    ``<E6 97>``, where a byte-level token's bytes are not valid UTF-8 on their own; else the raw
    token (SentencePiece byte tokens already read ``<0xE6>``).

    >>> bytes_label("æĹ")  # the first two of the three bytes of 日
    '<E6 97>'
    >>> bytes_label("<0xE6>")
    '<0xE6>'
    """
    data = byte_level_bytes(raw_token)
    if not data:
        return raw_token
    try:
        data.decode("utf-8")
        return raw_token  # whole characters: not a byte-level fragment
    except UnicodeDecodeError:
        pass
    return "<" + " ".join(f"{b:02X}" for b in data) + ">"


def readable_raw_token(raw_token: str) -> str:
    """The tokenizer's own token in a form a person can read: a byte-level BPE token (GPT-2,
    SmolLM2) decoded from its byte alphabet, spaces and newlines shown as ``␣`` and ``↵``, and
    part of a character as its bytes; WordPiece and SentencePiece tokens unchanged.

    >>> [readable_raw_token(t) for t in ("Ġworld", "æľ¬", "æĹ", "##テ", "[CLS]", "Ċ")]
    ['␣world', '本', '<E6 97>', '##テ', '[CLS]', '↵']
    """
    data = byte_level_bytes(raw_token)
    if data is None:
        return raw_token
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return bytes_label(raw_token)
    return "".join(_VISIBLE_WHITESPACE.get(ch, ch) for ch in text)


def broken_as_bytes(labels: Sequence[str], raw_tokens: Sequence[str]) -> list[str]:
    """``labels`` with each label of a broken character (a sequence cut inside a character shows
    ``\ufffd``) replaced by the token's bytes, where :func:`bytes_label` can read them.

    >>> broken_as_bytes(["ok", "\ufffd"], ["ok", "æĹ"])
    ['ok', '<E6 97>']
    """
    out = list(labels)
    for t, (label, raw) in enumerate(zip(labels, raw_tokens, strict=True)):
        if "\ufffd" in label and bytes_label(raw) != raw:
            out[t] = bytes_label(raw)
    return out


def decoded_piece(ids: Sequence[int], start: int, end: int, decode: Decode) -> str:
    """The text ``ids[start:end]`` adds after ``ids[:start]``: decoded with a few tokens before
    it, so a leading space comes out as it does inside the text, then the context cut off."""
    first = max(0, start - _DECODE_CONTEXT)
    before = decode(list(ids[first:start])) if first < start else ""
    after = decode(list(ids[first:end]))
    if after.startswith(before):
        return after[len(before) :]
    return decode(list(ids[start:end]))  # the context decoded differently: the piece alone


def offsets_by_decoding(ids: Sequence[int], decode: Decode) -> tuple[str, list[tuple[int, int]]]:
    """A text for ``ids`` and each token's ``(start, end)`` character offsets in it, by decoding.

    For token ids that never came from a text (a generated sequence), in the form fast tokenizers
    give for a text: the text is the concatenation of each token's decoded piece, and tokens
    holding pieces of one multi-byte character (a piece alone decodes to ``\ufffd``) all get that
    character's span, so :func:`labels_from_offsets` numbers them ``(k/n)``. A piece still broken
    after 4 tokens (a sequence cut inside a character) keeps its ``\ufffd``.

    >>> pieces = {0: b"Hi", 1: b" \\xe6\\x97", 2: b"\\xa5", 3: "本".encode()}
    >>> def decode(ids):
    ...     return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")
    >>> offsets_by_decoding([0, 1, 2, 3], decode)
    ('Hi 日本', [(0, 2), (2, 4), (2, 4), (4, 5)])
    """
    text_parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    length = 0
    t = 0
    while t < len(ids):
        end = t + 1
        piece = decoded_piece(ids, t, end, decode)
        # A character is at most 4 UTF-8 bytes, so at most 4 tokens need to be joined.
        while "\ufffd" in piece and end < len(ids) and end - t < 4:
            end += 1
            piece = decoded_piece(ids, t, end, decode)
        if "\ufffd" in piece:  # not a split character after all: the single token as it is
            end = t + 1
            piece = decoded_piece(ids, t, end, decode)
        text_parts.append(piece)
        offsets.extend([(length, length + len(piece))] * (end - t))
        length += len(piece)
        t = end
    return "".join(text_parts), offsets
