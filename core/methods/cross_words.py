"""Cross-attention over tokens or words, with which source units are special tokens: what the
Translation page's head view, model view and head statistics of cross-attention read.

Words merge each axis the way the words toggle merges self-attention (:mod:`core.methods.words`):
queries (target pieces) are averaged over their word's pieces, keys (source pieces) summed, so
every target word's row still sums to 1 (:func:`core.methods.alignment.merge_rectangular`)::

    A[u, v] = mean_{i in P(u)} sum_{j in P(v)} a[i, j]

The word-level result is derived: it is shown, never run as model input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.engine.seq2seq import CrossAttention
from core.engine.tokenize import Tokenized, special_ids
from core.methods.alignment import merge_rectangular, token_words

if TYPE_CHECKING:
    from core.engine.models import LoadedModel
    from core.engine.seq2seq import Seq2SeqAnalysis

__all__ = ["CrossUnits", "cross_units"]


@dataclass(frozen=True, eq=False)
class CrossUnits:
    """Cross-attention over tokens or words: ``cross.query_tokens`` are the target's units,
    ``cross.key_tokens`` the source's, ``key_special`` which source units are special tokens."""

    cross: CrossAttention  # (n_layers, n_heads, U_tgt, V_src)
    key_special: tuple[bool, ...]  # (V_src,)
    words: bool


def _special(loaded: LoadedModel, tokenized: Tokenized) -> tuple[bool, ...]:
    """Each token's flag: marked special by the tokenizer, or one of its special ids."""
    ids = tokenized.input_ids[0].tolist()
    specials = special_ids(loaded.tokenizer)
    return tuple(bool(s) or i in specials for s, i in zip(tokenized.special, ids, strict=True))


def cross_units(loaded: LoadedModel, result: Seq2SeqAnalysis, *, words: bool) -> CrossUnits:
    """``result``'s cross-attention over tokens, or (``words``) over target and source words:
    rows averaged over a target word's pieces, columns summed over a source word's pieces.
    A source word is special when it is one special token (``</s>``)."""
    cross = result.cross
    special = _special(loaded, result.source)  # (T_src,)
    if not words:
        return CrossUnits(cross, special, words=False)
    src_groups, src_labels = token_words(loaded, result.source)
    tgt_groups, tgt_labels = token_words(loaded, result.target)
    merged = merge_rectangular(cross.weights, tgt_groups, src_groups)  # (L, H, U, V)
    key_special = tuple(len(g) == 1 and special[g[0]] for g in src_groups)
    return CrossUnits(CrossAttention(merged, tgt_labels, src_labels), key_special, words=True)
