"""Per-head attention statistics and pattern labels for every layer x head.

Pure functions from attention ``(..., query_pos, key_pos)`` (usually ``(n_layers, n_heads, T, T)``)
to ``(...)``, each defined with its paper, plus :class:`HeadStats` (all of them for one analysis)
and :func:`label_heads` (one :data:`HeadPattern` per head, by the rules in
:data:`PATTERN_THRESHOLDS`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from core.engine import stats

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = [
    "HEAD_METRICS",
    "PATTERN_THRESHOLDS",
    "HeadMetric",
    "HeadPattern",
    "HeadStats",
    "MetricInfo",
    "PatternRule",
    "confidence",
    "first_token_share",
    "key_share",
    "label_heads",
    "mean_distance",
    "next_share",
    "previous_share",
    "punctuation_positions",
    "self_share",
]

HeadMetric = Literal[
    "entropy",
    "normalized_entropy",
    "confidence",
    "mean_distance",
    "first_token",
    "cls",
    "sep",
    "punctuation",
    "punctuation_or_sep",
    "self_token",
    "previous_token",
    "next_token",
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


def confidence(attn: Tensor) -> Tensor:
    """Confidence ``C = mean_i max_j a[i, j]`` (Voita et al. 2019, "Analyzing Multi-Head
    Self-Attention"): how sharply a head's queries focus. 1: every query looks at one key; ``1/T``:
    uniform. Shapes: ``(..., query_pos, key_pos) -> (...)``.

    >>> confidence(torch.tensor([[1.0, 0.0], [0.25, 0.75]]))  # (1 + 0.75) / 2
    tensor(0.8750)
    """
    return attn.amax(dim=-1).mean(dim=-1)


def mean_distance(attn: Tensor) -> Tensor:
    """Mean attention distance ``D = mean_i sum_j a[i, j] * |i - j|`` in tokens (Vig & Belinkov
    2019, "Analyzing the Structure of Attention in a Transformer Language Model"). 0: every query
    looks at itself. Shapes: ``(..., query_pos, key_pos) -> (...)``.

    Row 0 looks at key 1, every other row at the previous key: distance 1 everywhere.

    >>> mean_distance(torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    tensor(1.)
    """
    positions = torch.arange(attn.shape[-1], device=attn.device)
    distance = (positions[:, None] - positions[None, :]).abs().to(attn.dtype)  # (T, T)
    return (attn * distance).sum(dim=-1).mean(dim=-1)


def key_share(attn: Tensor, keys: Tensor) -> Tensor:
    """Share of attention on the key positions where ``keys`` (bool, ``(key_pos,)``) is true:
    ``S = mean_i sum_{j in keys} a[i, j]`` (Clark et al. 2019, "What Does BERT Look At?", measure
    it for [CLS], [SEP] and punctuation). Shapes: ``(..., query_pos, key_pos) -> (...)``.

    >>> a = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.25, 0.25, 0.5]])
    >>> key_share(a, torch.tensor([False, False, True]))  # (0 + 1 + 0.5) / 3
    tensor(0.5000)
    """
    return (attn * keys.to(attn.device, attn.dtype)).sum(dim=-1).mean(dim=-1)


def first_token_share(attn: Tensor) -> Tensor:
    """Share of attention on the first token, ``S = mean_i a[i, 0]``: the attention sink (Xiao et
    al. 2023, "Efficient Streaming Language Models with Attention Sinks"); in BERT that token is
    [CLS]. In a decoder query 0 sees only key 0, so it always adds ``1/T``.

    >>> first_token_share(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    tensor(0.7500)
    """
    return attn[..., 0].mean(dim=-1)


def self_share(attn: Tensor) -> Tensor:
    """Share of attention on the token itself, ``S = mean_i a[i, i]`` (Clark et al. 2019).

    >>> self_share(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    tensor(0.7500)
    """
    return attn.diagonal(dim1=-2, dim2=-1).mean(dim=-1)


def _off_diagonal_share(attn: Tensor, offset: int) -> Tensor:
    if attn.shape[-1] < 2:  # no query has a neighbour
        return torch.zeros(attn.shape[:-2], dtype=attn.dtype, device=attn.device)
    return attn.diagonal(offset=offset, dim1=-2, dim2=-1).mean(dim=-1)


def previous_share(attn: Tensor) -> Tensor:
    """Share of attention on the previous token, ``S = mean_{i >= 1} a[i, i - 1]`` (Clark et al.
    2019). Averaged over the ``T - 1`` queries that have a previous token, so a head that always
    looks one token back scores exactly 1. Shapes: ``(..., T, T) -> (...)``.

    >>> previous_share(torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]))
    tensor(0.7500)
    """
    return _off_diagonal_share(attn, -1)


def next_share(attn: Tensor) -> Tensor:
    """Share of attention on the next token, ``S = mean_{i <= T - 2} a[i, i + 1]`` (Clark et al.
    2019), over the ``T - 1`` queries that have a next token. Always 0 in a causal decoder.

    >>> next_share(torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]))
    tensor(0.7500)
    """
    return _off_diagonal_share(attn, 1)


_FRAGMENT = re.compile(
    r"\(\d+/\d+\)$"
)  # the "(k/n)" core.engine.tokens appends to split characters


def punctuation_positions(tokens: Sequence[str], special: Sequence[bool] | None = None) -> Tensor:
    """Which tokens are punctuation: a label made only of Unicode punctuation (categories ``P*``:
    ``. , ! ? ; : ( ) " ' …`` and ``。 、 「 」``), ignoring a ``(k/n)`` fragment suffix; special
    tokens never count. Returns a bool tensor ``(seq_len,)``.

    >>> punctuation_positions(["[CLS]", "Hi", ",", "you", "...", "。(1/2)", "[SEP]"],
    ...                       [True, False, False, False, False, False, True])
    tensor([False, False,  True, False,  True,  True, False])
    """
    flags = special if special is not None else [False] * len(tokens)
    result = []
    for token, is_special in zip(tokens, flags, strict=True):
        bare = _FRAGMENT.sub("", token) or token
        result.append(
            not is_special
            and bool(bare)
            and all(unicodedata.category(ch).startswith("P") for ch in bare)
        )
    return torch.tensor(result, dtype=torch.bool)


@dataclass(frozen=True)
class MetricInfo:
    """How a head metric is named, defined and cited (for tables, tooltips and the README)."""

    title: str
    definition: str
    reference: str
    get: Callable[[HeadStats], Tensor]


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
# neighbourhood without one fixed offset), else "mixed".
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
    names = [*_SHARE_PATTERNS, *_FALLBACK_PATTERNS]
    shape = metrics[thresholds[names[0]].metric].shape  # (L, H)
    share_values = torch.stack(
        [metrics[thresholds[name].metric].float() for name in _SHARE_PATTERNS]
    )  # (5, L, H)
    share_hits = torch.stack(
        [thresholds[name].holds(metrics[thresholds[name].metric]) for name in _SHARE_PATTERNS]
    )  # (5, L, H)
    # argmax returns the first of equal maxima, so ties go to the earlier pattern.
    best = torch.where(share_hits, share_values, torch.full_like(share_values, -1.0)).argmax(0)
    any_share = share_hits.any(dim=0)  # (L, H)
    fallback_hits = [thresholds[n].holds(metrics[thresholds[n].metric]) for n in _FALLBACK_PATTERNS]
    labels: list[tuple[HeadPattern, ...]] = []
    for layer in range(shape[0]):
        row: list[HeadPattern] = []
        for head in range(shape[1]):
            if any_share[layer, head]:
                row.append(_SHARE_PATTERNS[int(best[layer, head])])
                continue
            fallbacks = zip(_FALLBACK_PATTERNS, fallback_hits, strict=True)
            row.append(next((n for n, hit in fallbacks if hit[layer, head]), "mixed"))
        labels.append(tuple(row))
    return tuple(labels)


@dataclass(frozen=True, eq=False)
class HeadStats:
    """Every head statistic for one analysis; each tensor is ``(n_layers, n_heads)``, float32.

    Definitions and papers are in :data:`HEAD_METRICS` and this module's functions. ``cls`` is the
    share on the first token when it is a special token ([CLS], ``<s>``, a BOS), else 0; ``sep`` the
    share on every other special token ([SEP], ``</s>``); ``punctuation`` the share on punctuation
    (:func:`punctuation_positions`); ``punctuation_or_sep`` the share on either.
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

    @classmethod
    def from_attentions(
        cls,
        attentions: Tensor,
        tokens: Sequence[str],
        *,
        causal: bool,
        special: Sequence[bool] | None = None,
        thresholds: Mapping[HeadPattern, PatternRule] = PATTERN_THRESHOLDS,
    ) -> HeadStats:
        """All statistics of ``attentions`` ``(n_layers, n_heads, T, T)`` (not modified) for the
        token labels ``tokens`` and their special-token flags.

        >>> prev = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> result = HeadStats.from_attentions(prev.reshape(1, 1, 3, 3), ["a", "b", "."],
        ...                                    causal=False)
        >>> result.mean_distance, result.previous_token, result.patterns
        (tensor([[1.]]), tensor([[1.]]), (('previous-token',),))
        """
        attn = attentions.detach().float()  # (L, H, T, T)
        seq_len = attn.shape[-1]
        if attn.dim() != 4 or attn.shape[-2] != seq_len or len(tokens) != seq_len:
            raise ValueError(
                f"attentions must be (L, H, T, T) with T = {len(tokens)} tokens, "
                f"got {tuple(attn.shape)}"
            )
        masks = _KeyMasks.of(tokens, special)
        return cls.from_metrics(_metric_values(attn, masks, causal), thresholds)

    @classmethod
    def from_metrics(
        cls,
        metrics: Mapping[HeadMetric, Tensor],
        thresholds: Mapping[HeadPattern, PatternRule] = PATTERN_THRESHOLDS,
    ) -> HeadStats:
        """Head statistics from already computed metrics, each ``(n_layers, n_heads)``."""
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
        )

    @classmethod
    def from_analysis(cls, analysis: Analysis, loaded: LoadedModel | None = None) -> HeadStats:
        """All statistics of an :class:`~core.engine.analysis.Analysis`. When it does not hold every
        layer (a long input), ``loaded`` recomputes them one layer at a time, never holding
        more than one layer's weights."""
        if len(analysis.held_layers) == analysis.n_layers:
            return cls.from_attentions(
                analysis.attentions,
                analysis.tokens,
                causal=analysis.causal,
                special=analysis.special,
            )
        if loaded is None:
            raise ValueError("a long analysis needs the model to recompute its layers")
        from core.engine.streaming import map_layers

        masks = _KeyMasks.of(analysis.tokens, analysis.special)  # once, not once per layer

        def on_layer(layer: int, weights: Tensor) -> dict[HeadMetric, Tensor]:
            attn = weights.float().unsqueeze(0)  # (1, H, T, T)
            return _metric_values(attn, masks, analysis.causal)

        per_layer = map_layers(loaded, analysis.model_inputs(), on_layer)
        metrics = {
            name: torch.cat([layer[name] for layer in per_layer]).cpu()  # (L, H)
            for name in per_layer[0]
        }
        return cls.from_metrics(metrics)

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
        """One row per head, layer by layer: ``layer``, ``head``, ``pattern`` and every metric."""
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


@dataclass(frozen=True)
class _KeyMasks:
    """Which key positions count for the [CLS], [SEP] and punctuation shares, each ``(T,)``."""

    first_special: Tensor  # the first token, when it is a special token ([CLS], <s>)
    other_special: Tensor  # every other special token ([SEP], </s>)
    punctuation: Tensor

    @classmethod
    def of(cls, tokens: Sequence[str], special: Sequence[bool] | None) -> _KeyMasks:
        seq_len = len(tokens)
        flags = torch.tensor(
            list(special) if special is not None else [False] * seq_len, dtype=torch.bool
        )  # (T,)
        first_special = torch.zeros(seq_len, dtype=torch.bool)
        first_special[0] = bool(flags[0])
        return cls(
            first_special=first_special,
            other_special=flags & ~first_special,
            punctuation=punctuation_positions(tokens, flags.tolist()),
        )


def _metric_values(attn: Tensor, masks: _KeyMasks, causal: bool) -> dict[HeadMetric, Tensor]:
    """Every metric of ``attn`` ``(L, H, T, T)``, each ``(L, H)``."""
    rows = stats.row_entropy(attn)  # (L, H, T): the costly part, taken once for both entropies
    metrics: dict[HeadMetric, Tensor] = {
        "entropy": rows.mean(dim=-1),
        "normalized_entropy": stats.normalize_row_entropy(rows, causal=causal).mean(dim=-1),
        "confidence": confidence(attn),
        "mean_distance": mean_distance(attn),
        "first_token": first_token_share(attn),
        "cls": key_share(attn, masks.first_special),
        "sep": key_share(attn, masks.other_special),
        "punctuation": key_share(attn, masks.punctuation),
        "punctuation_or_sep": key_share(attn, masks.punctuation | masks.other_special),
        "self_token": self_share(attn),
        "previous_token": previous_share(attn),
        "next_token": next_share(attn),
    }
    return metrics


HEAD_METRICS: dict[HeadMetric, MetricInfo] = {
    "entropy": MetricInfo(
        "entropy (nats)",
        "mean_i -sum_j a[i,j] ln a[i,j]",
        "core.engine.stats.head_entropy",
        lambda s: s.entropy,
    ),
    "normalized_entropy": MetricInfo(
        "normalised entropy",
        "mean_i of row entropy / ln(keys query i can see)",
        "core.engine.stats.normalized_head_entropy",
        lambda s: s.normalized_entropy,
    ),
    "confidence": MetricInfo(
        "confidence",
        "mean_i max_j a[i,j]",
        "Voita et al. 2019, Analyzing Multi-Head Self-Attention",
        lambda s: s.confidence,
    ),
    "mean_distance": MetricInfo(
        "mean distance (tokens)",
        "mean_i sum_j a[i,j] |i-j|",
        "Vig & Belinkov 2019, Analyzing the Structure of Attention in a Transformer LM",
        lambda s: s.mean_distance,
    ),
    "first_token": MetricInfo(
        "first-token share",
        "mean_i a[i,0]",
        "Xiao et al. 2023, Efficient Streaming Language Models with Attention Sinks",
        lambda s: s.first_token,
    ),
    "cls": MetricInfo(
        "[CLS] share",
        "mean_i a[i,0] when token 0 is special ([CLS], <s>, BOS), else 0",
        "Clark et al. 2019, What Does BERT Look At?",
        lambda s: s.cls,
    ),
    "sep": MetricInfo(
        "[SEP] share",
        "mean_i sum of a[i,j] over special tokens j > 0 ([SEP], </s>)",
        "Clark et al. 2019, What Does BERT Look At?",
        lambda s: s.sep,
    ),
    "punctuation": MetricInfo(
        "punctuation share",
        "mean_i sum of a[i,j] over punctuation tokens j",
        "Clark et al. 2019, What Does BERT Look At?",
        lambda s: s.punctuation,
    ),
    "punctuation_or_sep": MetricInfo(
        "punctuation or [SEP] share",
        "mean_i sum of a[i,j] over punctuation and separator tokens j",
        "Clark et al. 2019, What Does BERT Look At?",
        lambda s: s.punctuation_or_sep,
    ),
    "self_token": MetricInfo(
        "self share",
        "mean_i a[i,i]",
        "Clark et al. 2019, What Does BERT Look At?",
        lambda s: s.self_token,
    ),
    "previous_token": MetricInfo(
        "previous-token share",
        "mean over i >= 1 of a[i,i-1]",
        "Clark et al. 2019, What Does BERT Look At?",
        lambda s: s.previous_token,
    ),
    "next_token": MetricInfo(
        "next-token share",
        "mean over i <= T-2 of a[i,i+1]",
        "Clark et al. 2019, What Does BERT Look At?",
        lambda s: s.next_token,
    ),
}
