"""Head detector scores (TransformerLens's head detector, Nanda & Bloom 2022): how much of a
head's attention lands where a detection pattern says it should. Pure functions: attention and
patterns in, scores out; no model. :mod:`core.methods.induction` runs the model.

A *pattern* ``P`` is a ``(T, T)`` matrix of weights in [0, 1] (usually 0/1) over ``(query_pos,
key_pos)``; row ``i`` marks the keys query ``i`` "should" attend to. The score of a head with
attention ``A`` (rows summing to 1) is

    score(A, P) = mean_{i in R} sum_j A[i, j] * P[i, j],    R = {i : sum_j P[i, j] > 0}

the attention mass on the pattern's positions, averaged over the query rows that have at least
one target (``rows="target"``, the default). TransformerLens's ``detect_head`` with
``error_measure="mul"`` computes ``sum(A * P) / sum(A)``, which is the same mean but over *every*
query row (``rows="all"``): rows with nothing to find count as 0. We default to the rows with a
target because it makes the best possible score 1 for every pattern: over all rows the induction
score of a sequence repeated twice could never exceed about 1/2 (the first half has no earlier
occurrence), and the previous-token score never 1 (query 0 has no previous token). With
``rows="target"`` the previous-token score is exactly
:func:`core.methods.head_metrics.previous_share`.

Patterns (all lower triangular, as TransformerLens's, except where an encoder's pattern says
otherwise): previous token ``i -> i - 1``; duplicate token ``i -> j`` for every earlier ``j < i``
with the same token id (special tokens excluded); induction ``i -> j + 1`` for every earlier
``j < i`` with the same token id as ``i``, i.e. the token after its earlier occurrence. On a
sequence of ``n`` random tokens repeated twice these are ``i -> i - n`` and ``i -> i - n + 1``
for the second half.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "CUSTOM_PATTERNS",
    "PatternRows",
    "CustomPattern",
    "custom_pattern",
    "duplicate_pattern",
    "first_token_pattern",
    "induction_pattern",
    "offset_pattern",
    "pattern_score",
    "sentence_start_pattern",
    "token_pattern",
]

PatternRows = Literal["target", "all"]
CustomPattern = Literal["previous", "offset", "first_token", "sentence_start", "token"]
CUSTOM_PATTERNS: tuple[CustomPattern, ...] = (
    "previous",
    "first_token",
    "sentence_start",
    "token",
    "offset",
)
# A sentence ends after one of these (Latin and CJK full stops, question and exclamation marks).
_SENTENCE_END = re.compile(r"[.!?。！？]\s*$")


def pattern_score(attn: Tensor, pattern: Tensor, rows: PatternRows = "target") -> Tensor:
    """Each head's score against ``pattern``: attention ``(..., T, T)``, pattern ``(T, T)`` or
    broadcastable ``(..., T, T)`` -> ``(...)`` float32 (see the module docstring).

    ``rows="target"``: ``mean_{i in R} sum_j A[i, j] P[i, j]`` over the rows ``R`` where ``P`` has
    a target; NaN when no row has one. ``rows="all"``: TransformerLens's ``sum(A * P) / sum(A)``.

    >>> attn = torch.tensor([[1.0, 0.0, 0.0], [0.75, 0.25, 0.0], [0.0, 0.5, 0.5]])
    >>> prev = offset_pattern(3, 1)  # rows 1 and 2 have a target: 0.75 and 0.5
    >>> pattern_score(attn, prev), pattern_score(attn, prev, rows="all")
    (tensor(0.6250), tensor(0.4167))
    """
    attn = attn.float()
    pattern = pattern.to(attn.dtype).to(attn.device)
    mass = (attn * pattern).sum(dim=-1)  # (..., T): each query row's mass on its targets
    if rows == "all":
        return mass.sum(dim=-1) / attn.sum(dim=(-2, -1))
    if rows != "target":
        raise ValueError(f"rows must be 'target' or 'all', got {rows!r}")
    has = (pattern.sum(dim=-1) > 0).to(attn.dtype)  # (..., T) or (T,)
    has = has.expand(mass.shape)  # (..., T)
    return (mass * has).sum(dim=-1) / has.sum(dim=-1)  # 0 / 0 = NaN: no target anywhere


def offset_pattern(seq_len: int, offset: int) -> Tensor:
    """``P[i, i - offset] = 1`` where that key exists: offset 1 is the previous token, 0 the
    token itself, -1 the next one (encoders). ``(T, T)``.

    >>> offset_pattern(3, 1)
    tensor([[0., 0., 0.],
            [1., 0., 0.],
            [0., 1., 0.]])
    """
    if abs(offset) >= seq_len:
        return torch.zeros(seq_len, seq_len)
    return torch.diag(torch.ones(seq_len - abs(offset)), -offset)


def duplicate_pattern(token_ids: Tensor, special: Tensor | None = None) -> Tensor:
    """``P[i, j] = 1`` where ``j < i`` and ``token_ids[j] == token_ids[i]`` (neither special):
    every earlier occurrence of the query's token. ``token_ids`` ``(..., T)`` -> ``(..., T, T)``.

    >>> duplicate_pattern(torch.tensor([7, 8, 7, 7]))
    tensor([[0., 0., 0., 0.],
            [0., 0., 0., 0.],
            [1., 0., 0., 0.],
            [1., 0., 1., 0.]])
    """
    same = token_ids[..., :, None] == token_ids[..., None, :]  # (..., T, T)
    if special is not None:
        ordinary = ~special.bool()
        same = same & ordinary[..., :, None] & ordinary[..., None, :]
    return same.float().tril(-1)


def induction_pattern(token_ids: Tensor, special: Tensor | None = None) -> Tensor:
    """``P[i, j + 1] = 1`` where ``j < i`` is an earlier occurrence of query ``i``'s token: the
    token that followed it last time (TransformerLens's induction pattern: the duplicate pattern
    shifted one key to the right). ``(..., T)`` -> ``(..., T, T)``.

    >>> induction_pattern(torch.tensor([5, 6, 5, 6]))  # 5 6 | 5 6: row 2 -> 1, row 3 -> 2
    tensor([[0., 0., 0., 0.],
            [0., 0., 0., 0.],
            [0., 1., 0., 0.],
            [0., 0., 1., 0.]])
    """
    duplicate = duplicate_pattern(token_ids, special)  # (..., T, T)
    shifted = torch.zeros_like(duplicate)
    shifted[..., :, 1:] = duplicate[..., :, :-1]  # key j -> key j + 1
    return shifted.tril()


def first_token_pattern(seq_len: int, special: Sequence[bool] | None = None) -> Tensor:
    """Every query attends to the first token that is not special (the first token when all
    are, or when ``special`` is not given). ``(T, T)``.

    >>> first_token_pattern(3, [True, False, False])[:, 1].tolist()
    [1.0, 1.0, 1.0]
    """
    first = 0
    if special is not None:
        first = next((i for i, s in enumerate(special) if not s), 0)
    pattern = torch.zeros(seq_len, seq_len)
    pattern[:, first] = 1.0
    return pattern


def token_pattern(tokens: Sequence[str], target: str) -> Tensor:
    """Every query attends to every token whose label is ``target`` (``[SEP]``, ``.``, ...),
    compared without surrounding spaces. ``(T, T)``; all zero when no token matches.

    >>> token_pattern(["[CLS]", "hi", "[SEP]"], "[SEP]")[0].tolist()
    [0.0, 0.0, 1.0]
    """
    wanted = target.strip()
    hits = torch.tensor([token.strip() == wanted for token in tokens], dtype=torch.float32)
    return hits[None, :].expand(len(tokens), len(tokens)).clone()


def sentence_start_pattern(tokens: Sequence[str], special: Sequence[bool] | None = None) -> Tensor:
    """Every query attends to the first token of its own sentence: a sentence starts at the
    first non-special token and after every token that ends with ``.``, ``!``, ``?`` or a CJK
    full stop. Special tokens start nothing and look at the sentence they sit in. ``(T, T)``.

    >>> sentence_start_pattern(["Hi", ".", "Yes", "no"]).argmax(dim=1).tolist()
    [0, 0, 2, 2]
    """
    seq_len = len(tokens)
    special = list(special) if special is not None else [False] * seq_len
    pattern = torch.zeros(seq_len, seq_len)
    start, pending = None, True
    for i, token in enumerate(tokens):
        if not special[i] and pending:
            start, pending = i, False
        pattern[i, start if start is not None and start <= i else i] = 1.0
        if not special[i] and _SENTENCE_END.search(token):
            pending = True
    first = next((i for i, s in enumerate(special) if not s), 0)
    pattern[:first, :] = 0.0  # specials before any sentence look at the first one
    pattern[:first, first] = 1.0
    return pattern


def custom_pattern(
    kind: CustomPattern,
    tokens: Sequence[str],
    special: Sequence[bool],
    *,
    causal: bool,
    offset: int = 1,
    target: str = "[SEP]",
) -> Tensor:
    """One of the patterns a user can pick, for a text's ``tokens`` ``(T, T)``; in a decoder
    (``causal``) keys after the query are dropped, as the head cannot see them.

    >>> custom_pattern("offset", ["a", "b", "c"], [False] * 3, causal=False, offset=-1)[0]
    tensor([0., 1., 0.])
    """
    seq_len = len(tokens)
    if kind == "previous":
        pattern = offset_pattern(seq_len, 1)
    elif kind == "offset":
        pattern = offset_pattern(seq_len, offset)
    elif kind == "first_token":
        pattern = first_token_pattern(seq_len, special)
    elif kind == "sentence_start":
        pattern = sentence_start_pattern(tokens, special)
    elif kind == "token":
        pattern = token_pattern(tokens, target)
    else:
        raise ValueError(f"kind must be one of {CUSTOM_PATTERNS}, got {kind!r}")
    return pattern.tril() if causal else pattern
