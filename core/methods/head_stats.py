"""Per-head statistics and pattern labels for every layer x head of one analysis:
:class:`HeadStats` (every metric of :mod:`core.methods.head_metrics`) and :func:`label_heads` (one
:data:`HeadPattern` per head, by the rules in :data:`PATTERN_THRESHOLDS`). The metric functions
are re-exported here under their old names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from core.methods.head_metrics import (
    HEAD_METRICS,
    QUERY_SCOPES,
    HeadMetric,
    KeyMasks,
    MetricInfo,
    QueryScope,
    confidence,
    cross_metric_values,
    first_token_share,
    key_share,
    mean_distance,
    metric_values,
    next_share,
    previous_share,
    punctuation_positions,
    self_share,
)

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = [
    "HEAD_METRICS",
    "PATTERNS",
    "PATTERN_THRESHOLDS",
    "QUERY_SCOPES",
    "HeadMetric",
    "HeadPattern",
    "HeadStats",
    "MetricInfo",
    "PatternRule",
    "QueryScope",
    "confidence",
    "first_token_share",
    "key_share",
    "label_heads",
    "pattern_index",
    "mean_distance",
    "next_share",
    "previous_share",
    "punctuation_positions",
    "self_share",
]

HeadPattern = Literal[
    "first-token sink",
    "previous-token",
    "next-token",
    "self",
    "punctuation/separator",
    "broad",
    "positional-local",
    "mixed",
]


@dataclass(frozen=True)
class PatternRule:
    """A head gets the pattern when ``metric`` is at least ``at_least`` (or at most ``at_most``)."""

    metric: HeadMetric
    at_least: float | None = None
    at_most: float | None = None

    def holds(self, value: Tensor) -> Tensor:
        if self.at_least is not None:
            return value >= self.at_least
        return value <= self.at_most

    def describe(self) -> str:
        """``"previous_token >= 0.5"`` and the like."""
        if self.at_least is not None:
            return f"{self.metric} >= {self.at_least:g}"
        return f"{self.metric} <= {self.at_most:g}"


# The rules behind :func:`label_heads`. The five share patterns come first: a head whose share is
# at least 0.5 for one of them (most of its attention, the ">50 %" heads of Clark et al. 2019) gets
# the one with the largest share; ties go to the earlier entry. A head with none of them is
# "broad" when its normalised entropy is at least 0.75 (spread nearly uniformly over what it can
# see), else "positional-local" when its mean distance is at most 1.5 tokens (it looks at its
# neighbourhood without one fixed offset), else "mixed". The rules read whichever metrics they
# are given: HeadStats over queries="choice" compares shares that all average over the queries
# i >= 1 of a decoder (like with like), while over "all" the first-token and self shares count
# query 0's forced [1] and the previous-token share does not. Re-checked against both bundled
# models in the README (Statistics).
PATTERN_THRESHOLDS: dict[HeadPattern, PatternRule] = {
    "first-token sink": PatternRule("first_token", at_least=0.5),
    "previous-token": PatternRule("previous_token", at_least=0.5),
    "next-token": PatternRule("next_token", at_least=0.5),
    "self": PatternRule("self_token", at_least=0.5),
    "punctuation/separator": PatternRule("punctuation_or_sep", at_least=0.5),
    "broad": PatternRule("normalized_entropy", at_least=0.75),
    "positional-local": PatternRule("mean_distance", at_most=1.5),
}
_SHARE_PATTERNS: tuple[HeadPattern, ...] = (
    "first-token sink",
    "previous-token",
    "next-token",
    "self",
    "punctuation/separator",
)
_FALLBACK_PATTERNS: tuple[HeadPattern, ...] = ("broad", "positional-local")
# Every label, in the order of :func:`pattern_index`.
PATTERNS: tuple[HeadPattern, ...] = (*_SHARE_PATTERNS, *_FALLBACK_PATTERNS, "mixed")


def label_heads(
    metrics: Mapping[HeadMetric, Tensor],
    thresholds: Mapping[HeadPattern, PatternRule] = PATTERN_THRESHOLDS,
) -> tuple[tuple[HeadPattern, ...], ...]:
    """One :data:`HeadPattern` per head from its metrics (each ``(n_layers, n_heads)``), by the
    rules of :data:`PATTERN_THRESHOLDS`. Returns ``n_layers`` tuples of ``n_heads`` labels.

    >>> metrics = {
    ...     "first_token": torch.tensor([[0.9, 0.1, 0.1, 0.0]]),
    ...     "previous_token": torch.tensor([[0.6, 0.8, 0.0, 0.0]]),
    ...     "next_token": torch.zeros(1, 4), "self_token": torch.zeros(1, 4),
    ...     "punctuation_or_sep": torch.zeros(1, 4),
    ...     "normalized_entropy": torch.tensor([[0.1, 0.2, 0.9, 0.3]]),
    ...     "mean_distance": torch.tensor([[3.0, 1.0, 4.0, 5.0]]),
    ... }
    >>> label_heads(metrics)
    (('first-token sink', 'previous-token', 'broad', 'mixed'),)
    """
    return tuple(
        tuple(PATTERNS[i] for i in row) for row in pattern_index(metrics, thresholds).tolist()
    )


def pattern_index(
    metrics: Mapping[HeadMetric, Tensor],
    thresholds: Mapping[HeadPattern, PatternRule] = PATTERN_THRESHOLDS,
) -> Tensor:
    """:func:`label_heads` as indices into :data:`PATTERNS`, a long tensor shaped like the
    metrics (any leading axes, e.g. ``(texts, n_heads)`` in corpus mode), with no Python loop
    over heads.

    >>> metrics = {name: torch.zeros(2) for name in HEAD_METRICS}
    >>> metrics["previous_token"] = torch.tensor([0.9, 0.0])
    >>> [PATTERNS[i] for i in pattern_index(metrics).tolist()]
    ['previous-token', 'positional-local']
    """
    share_values = torch.stack(
        [metrics[thresholds[name].metric].float() for name in _SHARE_PATTERNS]
    )  # (5, ...)
    share_hits = torch.stack(
        [thresholds[name].holds(metrics[thresholds[name].metric]) for name in _SHARE_PATTERNS]
    )  # (5, ...)
    # argmax returns the first of equal maxima, so ties go to the earlier pattern.
    best = torch.where(share_hits, share_values, torch.full_like(share_values, -1.0)).argmax(0)
    index = torch.full_like(best, len(PATTERNS) - 1)  # "mixed"
    for offset in reversed(range(len(_FALLBACK_PATTERNS))):  # the first rule that holds wins
        name = _FALLBACK_PATTERNS[offset]
        hit = thresholds[name].holds(metrics[thresholds[name].metric])
        index = torch.where(hit, len(_SHARE_PATTERNS) + offset, index)
    return torch.where(share_hits.any(dim=0), best, index)


@dataclass(frozen=True, eq=False)
class HeadStats:
    """Every head statistic for one analysis; each tensor is ``(n_layers, n_heads)``, float32.

    Definitions and papers are in :data:`HEAD_METRICS` and this module's functions. ``cls`` is the
    share on the first token when it is a special token ([CLS], ``<s>``, a BOS), else 0; ``sep`` the
    share on every other special token ([SEP], ``</s>``); ``punctuation`` the share on punctuation
    (:func:`punctuation_positions`); ``punctuation_or_sep`` the share on either. ``queries`` says
    which queries every metric averages over: ``"all"`` (default, the earlier definitions) or
    ``"choice"`` (those that see more than one key; in a decoder ``i >= 1``), see
    :mod:`core.methods.head_metrics`.
    """

    entropy: Tensor
    normalized_entropy: Tensor
    confidence: Tensor
    mean_distance: Tensor
    first_token: Tensor
    cls: Tensor
    sep: Tensor
    punctuation: Tensor
    punctuation_or_sep: Tensor
    self_token: Tensor
    previous_token: Tensor
    next_token: Tensor
    patterns: tuple[tuple[HeadPattern, ...], ...]  # (n_layers, n_heads)
    queries: QueryScope = "all"

    @classmethod
    def from_attentions(
        cls,
        attentions: Tensor,
        tokens: Sequence[str],
        *,
        causal: bool,
        special: Sequence[bool] | None = None,
        thresholds: Mapping[HeadPattern, PatternRule] = PATTERN_THRESHOLDS,
        queries: QueryScope = "all",
    ) -> HeadStats:
        """All statistics of ``attentions`` ``(n_layers, n_heads, T, T)`` (not modified) for the
        token labels ``tokens`` and their special-token flags, averaged over ``queries``.

        >>> prev = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> result = HeadStats.from_attentions(prev.reshape(1, 1, 3, 3), ["a", "b", "."],
        ...                                    causal=False)
        >>> result.mean_distance, result.previous_token, result.patterns
        (tensor([[1.]]), tensor([[1.]]), (('previous-token',),))

        A causal head that looks only at token 0 (query 0 has no other key):

        >>> sink = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
        >>> plain = HeadStats.from_attentions(sink.reshape(1, 1, 3, 3), "abc", causal=True)
        >>> choice = HeadStats.from_attentions(sink.reshape(1, 1, 3, 3), "abc", causal=True,
        ...                                    queries="choice")
        >>> plain.self_token, choice.self_token, choice.first_token  # 1/3: query 0's a[0, 0]
        (tensor([[0.3333]]), tensor([[0.]]), tensor([[1.]]))
        """
        attn = attentions.detach().float()  # (L, H, T, T)
        seq_len = attn.shape[-1]
        if attn.dim() != 4 or attn.shape[-2] != seq_len or len(tokens) != seq_len:
            raise ValueError(
                f"attentions must be (L, H, T, T) with T = {len(tokens)} tokens, "
                f"got {tuple(attn.shape)}"
            )
        masks = KeyMasks.of(tokens, special)
        return cls.from_metrics(metric_values(attn, masks, causal, queries), thresholds, queries)

    @classmethod
    def from_cross_attention(
        cls,
        attentions: Tensor,
        key_tokens: Sequence[str],
        *,
        key_special: Sequence[bool] | None = None,
        thresholds: Mapping[HeadPattern, PatternRule] = PATTERN_THRESHOLDS,
    ) -> HeadStats:
        """Statistics of cross-attention ``(n_layers, n_heads, T_tgt, T_src)`` (not modified),
        the shares over the source tokens ``key_tokens``; the position metrics are NaN
        (:func:`core.methods.head_metrics.cross_metric_values`), so a head is labelled a
        first-token sink, punctuation/separator, broad or mixed.

        >>> a = torch.tensor([[[[0.9, 0.1], [0.8, 0.2]]]])  # (1, 1, 2, 2): 2 target, 2 source
        >>> result = HeadStats.from_cross_attention(a, ["▁le", "</s>"], key_special=[False, True])
        >>> result.first_token, result.sep, result.patterns
        (tensor([[0.8500]]), tensor([[0.1500]]), (('first-token sink',),))
        """
        attn = attentions.detach().float()  # (L, H, T_tgt, T_src)
        if attn.dim() != 4 or attn.shape[-1] != len(key_tokens):
            raise ValueError(
                f"attentions must be (L, H, T_tgt, T_src) with T_src = {len(key_tokens)} "
                f"tokens, got {tuple(attn.shape)}"
            )
        masks = KeyMasks.of(key_tokens, key_special)
        return cls.from_metrics(cross_metric_values(attn, masks), thresholds)

    @classmethod
    def from_metrics(
        cls,
        metrics: Mapping[HeadMetric, Tensor],
        thresholds: Mapping[HeadPattern, PatternRule] = PATTERN_THRESHOLDS,
        queries: QueryScope = "all",
    ) -> HeadStats:
        """Head statistics from already computed metrics, each ``(n_layers, n_heads)``, averaged
        over ``queries``."""
        return cls(
            entropy=metrics["entropy"],
            normalized_entropy=metrics["normalized_entropy"],
            confidence=metrics["confidence"],
            mean_distance=metrics["mean_distance"],
            first_token=metrics["first_token"],
            cls=metrics["cls"],
            sep=metrics["sep"],
            punctuation=metrics["punctuation"],
            punctuation_or_sep=metrics["punctuation_or_sep"],
            self_token=metrics["self_token"],
            previous_token=metrics["previous_token"],
            next_token=metrics["next_token"],
            patterns=label_heads(metrics, thresholds),
            queries=queries,
        )

    @classmethod
    def from_analysis(
        cls, analysis: Analysis, loaded: LoadedModel | None = None, *, queries: QueryScope = "all"
    ) -> HeadStats:
        """All statistics of an :class:`~core.engine.analysis.Analysis`, averaged over
        ``queries``. When it does not hold every layer (a long input), ``loaded`` recomputes
        them one layer at a time, never holding more than one layer's weights."""
        if len(analysis.held_layers) == analysis.n_layers:
            return cls.from_attentions(
                analysis.attentions,
                analysis.tokens,
                causal=analysis.causal,
                special=analysis.special,
                queries=queries,
            )
        if loaded is None:
            raise ValueError("a long analysis needs the model to recompute its layers")
        from core.engine.streaming import map_layers

        masks = KeyMasks.of(analysis.tokens, analysis.special)  # once, not once per layer

        def on_layer(layer: int, weights: Tensor) -> dict[HeadMetric, Tensor]:
            attn = weights.float().unsqueeze(0)  # (1, H, T, T)
            return metric_values(attn, masks, analysis.causal, queries)

        per_layer = map_layers(loaded, analysis.model_inputs(), on_layer)
        metrics = {
            name: torch.cat([layer[name] for layer in per_layer]).cpu()  # (L, H)
            for name in per_layer[0]
        }
        return cls.from_metrics(metrics, queries=queries)

    @property
    def n_layers(self) -> int:
        return self.entropy.shape[0]

    @property
    def n_heads(self) -> int:
        return self.entropy.shape[1]

    def metric(self, name: HeadMetric) -> Tensor:
        """One metric by name, ``(n_layers, n_heads)``."""
        return HEAD_METRICS[name].get(self)

    def metrics(self) -> dict[HeadMetric, Tensor]:
        """Every metric by name (the order of :data:`HEAD_METRICS`)."""
        return {name: info.get(self) for name, info in HEAD_METRICS.items()}

    def rows(self) -> list[dict[str, Any]]:
        """One row per head, layer by layer: ``layer``, ``head``, ``pattern`` and every metric
        (averaged over :attr:`queries`)."""
        values = {name: tensor.tolist() for name, tensor in self.metrics().items()}
        return [
            {
                "layer": layer,
                "head": head,
                "pattern": self.patterns[layer][head],
                **{name: column[layer][head] for name, column in values.items()},
            }
            for layer in range(self.n_layers)
            for head in range(self.n_heads)
        ]
