"""The alignment view's numbers: how much each target word looks at each source word through an
encoder-decoder's cross-attention, for one layer's head average or one head.

Words merge pieces the way the words toggle does (:mod:`core.methods.words`): attention *to* a
source word is the sum over its pieces, attention *from* a target word the mean over its pieces,
so every target row still sums to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.engine.tokenize import Tokenized, special_ids, tokenize_ids
from core.methods.segmentation import Groups, groups_from_word_ids, merge_labels, word_ids

if TYPE_CHECKING:
    from core.engine.models import LoadedModel
    from core.engine.seq2seq import Seq2SeqAnalysis

__all__ = ["Alignment", "alignment", "merge_rectangular", "token_words"]


@dataclass(frozen=True)
class Alignment:
    """Cross-attention of one layer (a head or the head average) between target and source
    units (words or tokens)."""

    source: tuple[str, ...]
    target: tuple[str, ...]
    weights: Tensor  # (len(target), len(source)), rows sum to 1
    layer: int
    head: int | None  # None: the head average
    words: bool

    def strongest(self) -> tuple[int, ...]:
        """For each target unit, the source unit it attends to most."""
        return tuple(int(i) for i in self.weights.argmax(dim=-1))


def _index(groups: Groups, length: int) -> Tensor:
    index = torch.empty(length, dtype=torch.long)
    for w, group in enumerate(groups):
        index[list(group)] = w
    return index


def merge_rectangular(attn: Tensor, rows: Groups, cols: Groups) -> Tensor:
    """``A[u, v] = mean_{i in u} sum_{j in v} a[i, j]``: ``(..., Q, K) -> (..., U, V)``, rows
    grouped by ``rows`` (averaged), columns by ``cols`` (summed). The input is not modified.

    >>> a = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    >>> merge_rectangular(a, ((0, 1),), ((0,), (1, 2)))  # mean of (0.2, 0.6); of (0.8, 0.4)
    tensor([[0.4000, 0.6000]])
    """
    q, k = attn.shape[-2:]
    col_index, row_index = _index(cols, k), _index(rows, q)
    to_cols = torch.zeros(*attn.shape[:-1], len(cols), dtype=attn.dtype)
    to_cols.index_add_(-1, col_index, attn)  # (..., Q, V)
    summed = torch.zeros(*attn.shape[:-2], len(rows), len(cols), dtype=attn.dtype)
    summed.index_add_(-2, row_index, to_cols)  # (..., U, V)
    sizes = torch.bincount(row_index, minlength=len(rows)).to(attn.dtype)  # (U,)
    return summed / sizes.unsqueeze(-1)


def token_words(loaded: LoadedModel, tokenized: Tokenized) -> tuple[Groups, tuple[str, ...]]:
    """How the tokens of ``tokenized`` group into words, and each word as written (the rules of
    :mod:`core.methods.segmentation`; offsets come from decoding where the tokenizer gives
    none)."""
    if tokenized.offsets is None or tokenized.sequence_ids is None:
        ids = tokenized.input_ids[0].tolist()
        tokenized = tokenize_ids(loaded, ids, max_tokens=len(ids))
    specials = special_ids(loaded.tokenizer)
    ids = tokenized.input_ids[0].tolist()
    special = tuple(s or i in specials for s, i in zip(tokenized.special, ids, strict=True))
    assert tokenized.offsets is not None and tokenized.sequence_ids is not None
    word_of = word_ids(tokenized.texts, tokenized.offsets, tokenized.sequence_ids, special)
    groups = groups_from_word_ids(word_of)
    labels = merge_labels(
        tokenized.texts,
        tokenized.offsets,
        tokenized.sequence_ids,
        tokenized.raw_tokens,
        groups,
        special,
    )
    return groups, tuple(labels)


def _single(length: int) -> Groups:
    return tuple((i,) for i in range(length))


def alignment(
    loaded: LoadedModel,
    result: Seq2SeqAnalysis,
    layer: int,
    head: int | None = None,
    *,
    words: bool = True,
    rows: Sequence[int] | None = None,
) -> Alignment:
    """Cross-attention of ``layer`` (``head``, or the head average when None) between the target
    and the source, over words (``words``) or tokens; ``rows`` keeps only those target units."""
    cross = result.cross
    attn = cross.layer_average(layer) if head is None else cross.head(layer, head)  # (Tt, Ts)
    if words:
        src_groups, src_labels = token_words(loaded, result.source)
        tgt_groups, tgt_labels = token_words(loaded, result.target)
    else:
        src_groups, src_labels = _single(len(cross.key_tokens)), cross.key_tokens
        tgt_groups, tgt_labels = _single(len(cross.query_tokens)), cross.query_tokens
    merged = merge_rectangular(attn, tgt_groups, src_groups)  # (U, V)
    if rows is not None:
        merged = merged[list(rows)]
        tgt_labels = tuple(tgt_labels[i] for i in rows)
    return Alignment(
        source=tuple(src_labels),
        target=tuple(tgt_labels),
        weights=merged,
        layer=layer,
        head=head,
        words=words,
    )
