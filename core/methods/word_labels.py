"""Each word as written: the label of a group of tokens (:func:`merge_labels`), cut from the
original text by the pieces' character offsets, never a tokenizer marker or a byte piece. The
groups come from :mod:`core.methods.segmentation`.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.engine.tokens import byte_level_bytes, make_visible, readable_raw_token

__all__ = ["merge_labels"]


def merge_labels(
    texts: Sequence[str],
    offsets: Sequence[tuple[int, int]],
    sequence_ids: Sequence[int | None],
    raw_tokens: Sequence[str],
    groups: Sequence[Sequence[int]],
    special: Sequence[bool] | None = None,
) -> tuple[str, ...]:
    """Each word as written in the original text: the characters from its first piece's start to
    its last piece's end, made visible (:func:`core.engine.tokens.make_visible`). Never a tokenizer
    marker (``##``, ``Ġ``, ``▁``) or a byte piece; a special token keeps its own name.

    >>> merge_labels(["日本 ok"], [(0, 1), (0, 1), (1, 2), (2, 5)], [0, 0, 0, 0],
    ...              ["æĹ", "¥", "æľ¬", "Ġok"], [(0, 1), (2,), (3,)])
    ('日', '本', 'ok')
    """
    labels: list[str] = []
    for group in groups:
        if len(group) == 1 and (
            sequence_ids[group[0]] is None or (special is not None and special[group[0]])
        ):
            t = group[0]
            seq = sequence_ids[t]
            start, end = offsets[t]
            named = texts[seq][start:end] if seq is not None and end > start else raw_tokens[t]
            labels.append(make_visible(named))
            continue
        spans = [
            (sequence_ids[t], *offsets[t])
            for t in group
            if sequence_ids[t] is not None and offsets[t][1] > offsets[t][0]
        ]
        if not spans:  # no characters at all: the raw pieces, markers read as spaces
            labels.append(make_visible("".join(_marker_text(raw_tokens[t]) for t in group)))
            continue
        seq = spans[0][0]
        start = min(s for _, s, _ in spans)
        end = max(e for _, _, e in spans)
        label = texts[seq][start:end]
        if "\ufffd" in label:  # a text cut inside a character: that character's bytes
            label = _with_broken_bytes(texts, offsets, sequence_ids, raw_tokens, group)
        labels.append(make_visible(label))
    return tuple(labels)


def _with_broken_bytes(
    texts: Sequence[str],
    offsets: Sequence[tuple[int, int]],
    sequence_ids: Sequence[int | None],
    raw_tokens: Sequence[str],
    group: Sequence[int],
) -> str:
    """A word's text with each piece that decodes to ``\ufffd`` (part of a character the text
    stops inside) shown as its bytes, ``<E3 82>`` (:func:`core.engine.tokens.readable_raw_token`).

    >>> _with_broken_bytes(["ab\ufffd"], [(0, 2), (2, 3)], [0, 0], ["ab", "ãĤ"], (0, 1))
    'ab<E3 82>'
    """
    parts: list[str] = []
    previous = None
    for t in group:
        seq = sequence_ids[t]
        span = offsets[t]
        if seq is None or span == previous:
            continue
        previous = span
        piece = texts[seq][span[0] : span[1]]
        parts.append(readable_raw_token(raw_tokens[t]) if "\ufffd" in piece else piece)
    return "".join(parts)


def _marker_text(raw: str) -> str:
    """What a raw token with no character offsets stands for: SentencePiece's ``▁`` and
    byte-level ``Ġ``/``Ċ`` read as the whitespace they mark, WordPiece's ``##`` dropped.

    >>> [_marker_text(raw) for raw in ("▁", "Ġ", "ĊĊ", "##ing", "<0xE6>")]
    [' ', ' ', '\\n\\n', 'ing', '<0xE6>']
    """
    if raw.startswith("##") and len(raw) > 2:
        return raw[2:]
    data = byte_level_bytes(raw)
    if data is not None and not raw.isascii():
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    return raw.replace("▁", " ")
