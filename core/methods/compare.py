"""Compare two analyses: two texts under one model, or one text under two models that share a
tokenizer. Attention is compared where the token sequences align; head statistics everywhere.

Alignment: tokens are matched by ``(token id, raw token)`` with :class:`difflib.SequenceMatcher`
(``autojunk`` off), which keeps the longest common runs in order. Identical sequences align
everywhere; "The cat sat." against "The dog sat." aligns every token but "cat"/"dog".
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from core.engine.analysis import Analysis
from core.methods.head_stats import HEAD_METRICS, HeadMetric, HeadPattern, HeadStats
from core.policy.errors import InputError

__all__ = [
    "Comparison",
    "HeadStatChange",
    "PatternChange",
    "align_tokens",
    "compare",
    "stat_changes",
]


def align_tokens(
    a: Sequence[object], b: Sequence[object]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Positions ``(in a, in b)`` of the tokens the two sequences share, in order, from
    :class:`difflib.SequenceMatcher` matching blocks (longest common runs first, ``autojunk`` off).

    >>> align_tokens(["The", "cat", "sat", "."], ["The", "dog", "sat", "."])
    ((0, 2, 3), (0, 2, 3))
    >>> align_tokens(["a", "b"], ["x", "a", "b"])
    ((0, 1), (1, 2))
    """
    matcher = difflib.SequenceMatcher(None, list(a), list(b), autojunk=False)
    pairs = [
        (block.a + k, block.b + k)
        for block in matcher.get_matching_blocks()
        for k in range(block.size)
    ]
    return tuple(p for p, _ in pairs), tuple(q for _, q in pairs)


@dataclass(frozen=True)
class HeadStatChange:
    """One head statistic before (``a``) and after (``b``); ``change = after - before``."""

    layer: int
    head: int
    metric: HeadMetric
    before: float
    after: float
    change: float


@dataclass(frozen=True)
class PatternChange:
    """A head whose pattern label differs between ``a`` and ``b``."""

    layer: int
    head: int
    before: HeadPattern
    after: HeadPattern


def stat_changes(stats_a: HeadStats, stats_b: HeadStats) -> tuple[HeadStatChange, ...]:
    """Every metric of every head, ``b - a``, sorted by absolute change, largest first (ties in
    metric, layer, head order). Metrics have different units (mean distance is in tokens, shares
    lie in [0, 1]), so filter by metric to rank heads fairly."""
    rows = []
    for name, info in HEAD_METRICS.items():
        before, after = info.get(stats_a).tolist(), info.get(stats_b).tolist()
        for layer, (row_a, row_b) in enumerate(zip(before, after, strict=True)):
            for head, (value_a, value_b) in enumerate(zip(row_a, row_b, strict=True)):
                rows.append(HeadStatChange(layer, head, name, value_a, value_b, value_b - value_a))
    return tuple(sorted(rows, key=lambda row: -abs(row.change)))  # sorted() is stable


@dataclass(frozen=True, eq=False)
class Comparison:
    """Two analyses side by side, ``b`` minus ``a``.

    ``difference[l, h, x, y] = b.attentions[l, h, qb[x], kb[y]] - a.attentions[l, h, qa[x],
    ka[y]]`` over the aligned positions (``positions_a``, ``positions_b``), so shape ``(n_layers,
    n_heads, n_aligned, n_aligned)``. Where sequences differ, rows restricted to the aligned keys
    no longer sum to 1. ``mean_abs_difference[l, h]`` is the mean of ``|difference|`` per head
    (NaN when nothing aligns). Head statistics use each whole sequence.
    """

    a: Analysis
    b: Analysis
    identical: bool  # the token sequences are the same
    positions_a: tuple[int, ...]
    positions_b: tuple[int, ...]
    tokens: tuple[str, ...]  # labels of the aligned tokens (from a)
    difference: Tensor  # (n_layers, n_heads, n_aligned, n_aligned)
    mean_abs_difference: Tensor  # (n_layers, n_heads)
    stats_a: HeadStats
    stats_b: HeadStats
    changes: tuple[HeadStatChange, ...]  # largest absolute change first
    pattern_changes: tuple[PatternChange, ...]

    @property
    def n_aligned(self) -> int:
        return len(self.positions_a)

    def top_changes(
        self, n: int = 20, metric: HeadMetric | None = None
    ) -> tuple[HeadStatChange, ...]:
        """The ``n`` largest changes, of one metric or of all."""
        rows = (c for c in self.changes if metric is None or c.metric == metric)
        return tuple(row for _, row in zip(range(n), rows))


def compare(a: Analysis, b: Analysis) -> Comparison:
    """Compare ``b`` with ``a``: two texts under one model, or one text under two models with the
    same tokenizer and the same number of layers and heads (otherwise an :class:`InputError` says
    which shapes differ)."""
    if (a.n_layers, a.n_heads) != (b.n_layers, b.n_heads):
        raise InputError(
            "error.compare_shapes",
            a=a.model_name or "A",
            a_layers=a.n_layers,
            a_heads=a.n_heads,
            b=b.model_name or "B",
            b_layers=b.n_layers,
            b_heads=b.n_heads,
        )
    keys_a = list(zip(a.token_ids, a.raw_tokens, strict=True))
    keys_b = list(zip(b.token_ids, b.raw_tokens, strict=True))
    positions_a, positions_b = align_tokens(keys_a, keys_b)
    index_a = torch.tensor(positions_a, dtype=torch.long)
    index_b = torch.tensor(positions_b, dtype=torch.long)
    aligned_a = a.attentions[:, :, index_a][:, :, :, index_a]  # (L, H, n, n)
    aligned_b = b.attentions[:, :, index_b][:, :, :, index_b]  # (L, H, n, n)
    difference = aligned_b - aligned_a
    if positions_a:
        mean_abs = difference.abs().mean(dim=(-2, -1))  # (L, H)
    else:
        mean_abs = torch.full((a.n_layers, a.n_heads), float("nan"))
    stats_a, stats_b = HeadStats.from_analysis(a), HeadStats.from_analysis(b)
    pattern_changes = tuple(
        PatternChange(layer, head, before, after)
        for layer, (row_a, row_b) in enumerate(zip(stats_a.patterns, stats_b.patterns, strict=True))
        for head, (before, after) in enumerate(zip(row_a, row_b, strict=True))
        if before != after
    )
    return Comparison(
        a=a,
        b=b,
        identical=keys_a == keys_b,
        positions_a=positions_a,
        positions_b=positions_b,
        tokens=tuple(a.tokens[p] for p in positions_a),
        difference=difference,
        mean_abs_difference=mean_abs,
        stats_a=stats_a,
        stats_b=stats_b,
        changes=stat_changes(stats_a, stats_b),
        pattern_changes=pattern_changes,
    )
