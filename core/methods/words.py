"""Words, not pieces: token-level attention merged into word-level attention that every view
and statistic reads unchanged; the words come from :mod:`core.methods.segmentation`.

**Attention.** For words ``u``, ``v`` with pieces ``P(u)``, ``P(v)`` (:func:`merge_attention`)::

    A[u, v] = mean_{i in P(u)} sum_{j in P(v)} a[i, j]

Attention *to* a word is the sum over its pieces (the attention its pieces receive together);
attention *from* a word is the mean over its pieces' rows. Each row of ``A`` is a mean of rows
that sum to 1, so it sums to 1. Words are contiguous and in order, so a decoder's causal mask
holds at word level: a word's row covers only the words up to and including itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.engine import budget
from core.engine.streaming import map_layers
from core.engine.tokenize import special_ids, tokenize_ids, unknown_token
from core.engine.tokens import mark_unknown
from core.methods.segmentation import (
    CjkRule,
    Groups,
    Words,
    character_words,
    groups_from_word_ids,
    merge_labels,
    word_ids,
)
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = [
    "CjkRule",
    "Groups",
    "Words",
    "character_words",
    "find_words",
    "groups_from_word_ids",
    "merge_attention",
    "merge_keys",
    "merge_labels",
    "truncate_groups",
    "word_analysis",
    "word_ids",
]


def _word_index(groups: Sequence[Sequence[int]], seq_len: int) -> Tensor:
    """The word of every token ``(seq_len,)``; checks that ``groups`` are contiguous runs that
    cover ``0 .. seq_len - 1`` in order (needed for the causal mask to hold at word level)."""
    expected = 0
    index = torch.empty(seq_len, dtype=torch.long)
    for w, group in enumerate(groups):
        if not group or list(group) != list(range(expected, expected + len(group))):
            raise ValueError(
                "groups must be non-empty runs of consecutive token positions covering "
                f"0..{seq_len - 1} in order; word {w} is {list(group)}"
            )
        index[expected : expected + len(group)] = w
        expected += len(group)
    if expected != seq_len:
        raise ValueError(f"groups cover {expected} tokens, the attention has {seq_len}")
    return index


def merge_keys(attn: Tensor, groups: Sequence[Sequence[int]]) -> Tensor:
    """Attention to each word: the sum over its pieces' columns, ``(..., T) -> (..., W)``.

    For one query's row (a generated token's attention over its context). The input is not
    modified.

    >>> merge_keys(torch.tensor([0.1, 0.2, 0.3, 0.4]), [(0,), (1, 2), (3,)])
    tensor([0.1000, 0.5000, 0.4000])
    """
    index = _word_index(groups, attn.shape[-1]).to(attn.device)
    out = torch.zeros(*attn.shape[:-1], len(groups), dtype=attn.dtype, device=attn.device)
    return out.index_add_(-1, index, attn)  # (..., W): a fresh tensor, the input untouched


def merge_attention(attn: Tensor, groups: Sequence[Sequence[int]]) -> Tensor:
    """Word-level attention ``A[u, v] = mean_{i in u} sum_{j in v} a[i, j]``: ``(..., T, T) ->
    (..., W, W)``.

    Attention *to* a word is the sum over its pieces (columns summed), attention *from* a word the
    mean over its pieces (rows averaged), so rows still sum to 1. ``groups`` are the token
    positions of each word: contiguous, in order, covering every token. The input is not modified.

    Tokens ``a``, ``b1 b2`` (one word), ``c`` under a causal mask:

    >>> a = torch.tensor([[1.0, 0.0, 0.0, 0.0],
    ...                   [0.5, 0.5, 0.0, 0.0],
    ...                   [0.2, 0.3, 0.5, 0.0],
    ...                   [0.1, 0.2, 0.3, 0.4]])
    >>> words = merge_attention(a, [(0,), (1, 2), (3,)])
    >>> words  # row "b" = mean of rows b1, b2; column "b" = b1 + b2
    tensor([[1.0000, 0.0000, 0.0000],
            [0.3500, 0.6500, 0.0000],
            [0.1000, 0.5000, 0.4000]])
    >>> words.sum(-1)
    tensor([1., 1., 1.])
    """
    seq_len = attn.shape[-1]
    if attn.dim() < 2 or attn.shape[-2] != seq_len:
        raise ValueError(f"attention must be (..., T, T), got {tuple(attn.shape)}")
    index = _word_index(groups, seq_len).to(attn.device)
    n_words = len(groups)
    to_words = torch.zeros(*attn.shape[:-1], n_words, dtype=attn.dtype, device=attn.device)
    to_words.index_add_(-1, index, attn)  # (..., T, W): columns summed
    summed = torch.zeros(*attn.shape[:-2], n_words, n_words, dtype=attn.dtype, device=attn.device)
    summed.index_add_(-2, index, to_words)  # (..., W, W): rows summed
    sizes = torch.bincount(index, minlength=n_words).to(attn.dtype)  # (W,)
    return summed / sizes.unsqueeze(-1)  # (..., W, W): rows averaged


def truncate_groups(groups: Sequence[Sequence[int]], length: int) -> Groups:
    """The groups of the first ``length`` tokens (a generation step's context): positions from
    ``length`` on are dropped, and a word left empty with them.

    >>> truncate_groups([(0,), (1, 2), (3,)], 2)
    ((0,), (1,))
    """
    out = [tuple(t for t in group if t < length) for group in groups]
    return tuple(g for g in out if g)


def _offsets_of(
    loaded: LoadedModel, analysis: Analysis
) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...], tuple[int | None, ...]]:
    """Texts, offsets and sequence ids for the tokens of ``analysis``: the ones it carries from
    its tokenization, else (a slow tokenizer gives none) by decoding its token ids."""
    if analysis.offsets is not None and analysis.sequence_ids is not None:
        return analysis.texts, analysis.offsets, analysis.sequence_ids
    decoded = tokenize_ids(loaded, analysis.token_ids, max_tokens=len(analysis.token_ids))
    assert decoded.offsets is not None and decoded.sequence_ids is not None
    return decoded.texts, decoded.offsets, decoded.sequence_ids


def find_words(loaded: LoadedModel, analysis: Analysis, *, cjk: CjkRule = "character") -> Words:
    """How the tokens of ``analysis`` (made by ``loaded``) group into words."""
    texts, offsets, sequence_ids = _offsets_of(loaded, analysis)
    specials = special_ids(loaded.tokenizer)
    special = tuple(
        flag or token_id in specials
        for flag, token_id in zip(analysis.special, analysis.token_ids, strict=True)
    )
    ids = word_ids(texts, offsets, sequence_ids, special, cjk=cjk)
    groups = groups_from_word_ids(ids)
    labels = merge_labels(texts, offsets, sequence_ids, analysis.raw_tokens, groups, special)
    # A word with an unknown token in it is marked as that token is: "😀 [UNK]".
    unk_id, unk_token = unknown_token(loaded.tokenizer)
    unknown = [any(analysis.token_ids[t] == unk_id for t in g) for g in groups]
    labels = tuple(mark_unknown(labels, [unk_id if u else -1 for u in unknown], unk_id, unk_token))
    return Words(
        groups=groups,
        labels=labels,
        special=tuple(len(g) == 1 and special[g[0]] for g in groups),
        word_of_token=ids,
    )


def _merged_attention(loaded: LoadedModel, analysis: Analysis, groups: Groups) -> Tensor:
    """``merge_attention`` of every layer: from the held weights, or (long inputs) layer by
    layer from a new forward pass, so the token-level weights are never all held at once."""
    n_words = len(groups)
    # The word-level analysis holds every layer, like a short token-level one does.
    if not budget.fits(analysis.n_layers, analysis.n_heads, n_words):
        limit = budget.max_seq_len(analysis.n_layers, analysis.n_heads)
        raise InputError("error.words_too_long", words=n_words, limit=limit)
    if len(analysis.held_layers) == analysis.n_layers:
        return merge_attention(analysis.attentions, groups)  # (L, H, W, W)

    def merged(layer: int, weights: Tensor) -> Tensor:
        return merge_attention(weights.float(), groups).cpu()  # (H, W, W)

    return torch.stack(map_layers(loaded, analysis.model_inputs(), merged))  # (L, H, W, W)


def word_analysis(
    loaded: LoadedModel,
    analysis: Analysis,
    *,
    cjk: CjkRule = "character",
    words: Words | None = None,
) -> Analysis:
    """``analysis`` with words in place of tokens: attention merged by :func:`merge_attention`,
    every statistic recomputed, so every view and table works on it unchanged.

    ``kind``, ``model_name``, ``text``, ``pair``, ``truncated``, ``n_input_tokens`` (still counted
    in tokens) and ``max_tokens`` are kept. Per word, ``tokens`` is the word as written,
    ``raw_tokens`` its pieces' readable labels joined by ``|`` (``token|ization``), ``token_ids``
    (and segment id) its first piece's and ``special`` whether it is a special token. The result
    is derived (``derived_from="words"``): it is shown, never run as model input. Pass ``words``
    (from :func:`find_words`) to reuse a grouping.
    """
    words = words or find_words(loaded, analysis, cjk=cjk)
    merged = _merged_attention(loaded, analysis, words.groups)  # (L, H, W, W)
    b_start = analysis.sentence_b_start
    return analysis.derive(
        merged,
        via="words",
        tokens=words.labels,
        token_ids=tuple(analysis.token_ids[g[0]] for g in words.groups),
        token_type_ids=(
            tuple(analysis.token_type_ids[g[0]] for g in words.groups)
            if analysis.token_type_ids is not None
            else None
        ),
        raw_tokens=tuple("|".join(analysis.tokens[t] for t in g) for g in words.groups),
        special=words.special,
        sentence_b_start=words.word_of_token[b_start] if b_start is not None else None,
        offsets=None,
        sequence_ids=None,
    )
