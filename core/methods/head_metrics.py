"""Per-head attention metrics: pure functions from attention ``(..., query_pos, key_pos)``
(usually ``(n_layers, n_heads, T, T)``) to ``(...)``, each defined with its paper, and
:data:`HEAD_METRICS`, how each is named, defined and cited. :mod:`core.methods.head_stats` gathers
them per analysis and labels heads by them.

Every metric is a mean over query positions. ``queries`` (a bool ``(query_pos,)``) restricts it
to some of them; :data:`QueryScope` names the two sets used: ``"all"`` (every query, the
definitions of earlier versions and the default) and ``"choice"`` (the queries that see more than
one key, :func:`core.engine.stats.choice_queries`). In a causal decoder query 0 sees only itself,
so its row is ``[1]`` whatever the head does; over ``"all"`` it adds about ``1/T`` to the
first-token share, the self share and the confidence, and pulls entropies and distances down.

Cross-attention (:func:`cross_metric_values`) is rectangular, target queries x source keys: the
metrics that compare a query's position with a key's are left out there
(:data:`CROSS_NOT_APPLICABLE`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from core.engine import stats

if TYPE_CHECKING:
    from core.methods.head_stats import HeadStats

__all__ = [
    "CROSS_NOT_APPLICABLE",
    "HEAD_METRICS",
    "QUERY_SCOPES",
    "HeadMetric",
    "KeyMasks",
    "MetricInfo",
    "QueryScope",
    "confidence",
    "cross_metric_values",
    "first_token_share",
    "key_share",
    "mean_distance",
    "metric_values",
    "next_share",
    "previous_share",
    "punctuation_positions",
    "query_positions",
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
QueryScope = Literal["all", "choice"]
QUERY_SCOPES: tuple[QueryScope, ...] = ("all", "choice")


def query_positions(scope: QueryScope, seq_len: int, *, causal: bool) -> Tensor | None:
    """The queries a metric averages over: None (every one) for ``"all"``, the bool mask of
    :func:`core.engine.stats.choice_queries` for ``"choice"``.

    >>> query_positions("choice", 3, causal=True)
    tensor([False,  True,  True])
    """
    if scope == "all":
        return None
    if scope == "choice":
        return stats.choice_queries(seq_len, causal=causal)
    raise ValueError(f"queries must be one of {QUERY_SCOPES}, got {scope!r}")


def confidence(attn: Tensor, queries: Tensor | None = None) -> Tensor:
    """Confidence ``C = mean_i max_j a[i, j]`` (Voita et al. 2019, "Analyzing Multi-Head
    Self-Attention"): how sharply a head's queries focus. 1: every query looks at one key; ``1/T``:
    uniform. Shapes: ``(..., query_pos, key_pos) -> (...)``; ``queries`` as in the module doc.

    >>> confidence(torch.tensor([[1.0, 0.0], [0.25, 0.75]]))  # (1 + 0.75) / 2
    tensor(0.8750)
    >>> confidence(torch.tensor([[1.0, 0.0], [0.25, 0.75]]), torch.tensor([False, True]))
    tensor(0.7500)
    """
    return stats.query_mean(attn.amax(dim=-1), queries)


def mean_distance(attn: Tensor, queries: Tensor | None = None) -> Tensor:
    """Mean attention distance ``D = mean_i sum_j a[i, j] * |i - j|`` in tokens (Vig & Belinkov
    2019, "Analyzing the Structure of Attention in a Transformer Language Model"). 0: every query
    looks at itself. Shapes: ``(..., query_pos, key_pos) -> (...)``.

    Row 0 looks at key 1, every other row at the previous key: distance 1 everywhere.

    >>> mean_distance(torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    tensor(1.)
    """
    positions = torch.arange(attn.shape[-1], device=attn.device)
    distance = (positions[:, None] - positions[None, :]).abs().to(attn.dtype)  # (T, T)
    return stats.query_mean((attn * distance).sum(dim=-1), queries)


def key_share(attn: Tensor, keys: Tensor, queries: Tensor | None = None) -> Tensor:
    """Share of attention on the key positions where ``keys`` (bool, ``(key_pos,)``) is true:
    ``S = mean_i sum_{j in keys} a[i, j]`` (Clark et al. 2019, "What Does BERT Look At?", measure
    it for [CLS], [SEP] and punctuation). Shapes: ``(..., query_pos, key_pos) -> (...)``.

    >>> a = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.25, 0.25, 0.5]])
    >>> key_share(a, torch.tensor([False, False, True]))  # (0 + 1 + 0.5) / 3
    tensor(0.5000)
    """
    return stats.query_mean((attn * keys.to(attn.device, attn.dtype)).sum(dim=-1), queries)


def first_token_share(attn: Tensor, queries: Tensor | None = None) -> Tensor:
    """Share of attention on the first token, ``S = mean_i a[i, 0]``: the attention sink (Xiao et
    al. 2023, "Efficient Streaming Language Models with Attention Sinks"); in BERT that token is
    [CLS]. In a decoder query 0 sees only key 0, so over every query it always adds ``1/T``; over
    the queries with a choice (``i >= 1``) a head that only looks at token 0 scores exactly 1 and
    one that never does exactly 0.

    >>> causal = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]])
    >>> first_token_share(causal)  # (1 + 0 + 0) / 3: query 0's forced [1]
    tensor(0.3333)
    >>> first_token_share(causal, torch.tensor([False, True, True]))  # (0 + 0) / 2
    tensor(0.)
    """
    return stats.query_mean(attn[..., 0], queries)


def self_share(attn: Tensor, queries: Tensor | None = None) -> Tensor:
    """Share of attention on the token itself, ``S = mean_i a[i, i]`` (Clark et al. 2019).

    >>> self_share(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    tensor(0.7500)
    >>> self_share(torch.tensor([[1.0, 0.0], [0.5, 0.5]]), torch.tensor([False, True]))
    tensor(0.5000)
    """
    return stats.query_mean(attn.diagonal(dim1=-2, dim2=-1), queries)


def _off_diagonal_share(attn: Tensor, offset: int, queries: Tensor | None) -> Tensor:
    """``mean a[i, i + offset]`` over the queries in ``queries`` that have that neighbour."""
    if attn.shape[-1] < 2:  # no query has a neighbour
        return torch.zeros(attn.shape[:-2], dtype=attn.dtype, device=attn.device)
    values = attn.diagonal(offset=offset, dim1=-2, dim2=-1)  # (..., T - 1)
    if queries is None:
        return values.mean(dim=-1)
    # offset -1: the diagonal's entry k is query k + 1; offset +1: query k.
    return stats.query_mean(values, queries[1:] if offset < 0 else queries[:-1])


def previous_share(attn: Tensor, queries: Tensor | None = None) -> Tensor:
    """Share of attention on the previous token, ``S = mean_{i >= 1} a[i, i - 1]`` (Clark et al.
    2019). Averaged over the ``T - 1`` queries that have a previous token, so a head that always
    looks one token back scores exactly 1; in a decoder these are the queries with a choice, so
    ``"all"`` and ``"choice"`` agree. Shapes: ``(..., T, T) -> (...)``.

    >>> previous_share(torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]))
    tensor(0.7500)
    """
    return _off_diagonal_share(attn, -1, queries)


def next_share(attn: Tensor, queries: Tensor | None = None) -> Tensor:
    """Share of attention on the next token, ``S = mean_{i <= T - 2} a[i, i + 1]`` (Clark et al.
    2019), over the ``T - 1`` queries that have a next token (and are in ``queries``). Always 0
    in a causal decoder.

    >>> next_share(torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]))
    tensor(0.7500)
    """
    return _off_diagonal_share(attn, 1, queries)


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
class KeyMasks:
    """Which key positions count for the [CLS], [SEP] and punctuation shares, each ``(T,)``."""

    first_special: Tensor  # the first token, when it is a special token ([CLS], <s>)
    other_special: Tensor  # every other special token ([SEP], </s>)
    punctuation: Tensor

    @classmethod
    def of(cls, tokens: Sequence[str], special: Sequence[bool] | None) -> KeyMasks:
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


def metric_values(
    attn: Tensor, masks: KeyMasks, causal: bool, queries: QueryScope = "all"
) -> dict[HeadMetric, Tensor]:
    """Every metric of ``attn`` ``(L, H, T, T)``, each ``(L, H)``, averaged over the ``queries``
    (see :func:`query_positions`)."""
    q = query_positions(queries, attn.shape[-1], causal=causal)  # None or (T,)
    if q is not None:
        q = q.to(attn.device)
    rows = stats.row_entropy(attn)  # (L, H, T): the costly part, taken once for both entropies
    other = masks.punctuation | masks.other_special
    metrics: dict[HeadMetric, Tensor] = {
        "entropy": stats.query_mean(rows, q),
        "normalized_entropy": stats.query_mean(stats.normalize_row_entropy(rows, causal=causal), q),
        "confidence": confidence(attn, q),
        "mean_distance": mean_distance(attn, q),
        "first_token": first_token_share(attn, q),
        "cls": key_share(attn, masks.first_special, q),
        "sep": key_share(attn, masks.other_special, q),
        "punctuation": key_share(attn, masks.punctuation, q),
        "punctuation_or_sep": key_share(attn, other, q),
        "self_token": self_share(attn, q),
        "previous_token": previous_share(attn, q),
        "next_token": next_share(attn, q),
    }
    return metrics


# Query i of cross-attention is target token i, key j source token j: |i - j|, a[i, i] and
# a[i, i -+ 1] compare positions in two different sequences and mean nothing.
CROSS_NOT_APPLICABLE: tuple[HeadMetric, ...] = (
    "mean_distance",
    "self_token",
    "previous_token",
    "next_token",
)


def cross_metric_values(attn: Tensor, masks: KeyMasks) -> dict[HeadMetric, Tensor]:
    """Every metric of cross-attention ``attn`` ``(L, H, T_q, T_k)`` (queries: the target tokens,
    keys: the source tokens, ``masks`` over the source), each ``(L, H)``, averaged over every
    query (each sees all ``T_k`` keys, so ``"all"`` and ``"choice"`` agree). The same functions
    as self-attention; the normalised entropy divides by ``ln T_k``; the metrics of
    :data:`CROSS_NOT_APPLICABLE` are NaN.

    >>> a = torch.tensor([[[[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]]]])  # (1, 1, 2, 3)
    >>> m = cross_metric_values(a, KeyMasks.of(["cat", ",", "</s>"], [False, False, True]))
    >>> m["confidence"], m["first_token"], m["sep"], m["punctuation"]  # (.5+.75)/2, (.5+0)/2, ...
    (tensor([[0.6250]]), tensor([[0.2500]]), tensor([[0.3750]]), tensor([[0.3750]]))
    >>> m["normalized_entropy"], m["self_token"]  # (ln 2 + 0.5623) / 2 / ln 3
    (tensor([[0.5714]]), tensor([[nan]]))
    """
    rows = stats.row_entropy(attn)  # (L, H, T_q)
    n_keys = attn.shape[-1]
    other = masks.punctuation | masks.other_special
    blank = torch.full(attn.shape[:-2], float("nan"), dtype=attn.dtype, device=attn.device)
    metrics: dict[HeadMetric, Tensor] = {
        "entropy": rows.mean(dim=-1),
        "normalized_entropy": rows.mean(dim=-1) / max(stats.max_entropy(n_keys), 1e-12),
        "confidence": confidence(attn),
        "mean_distance": blank,
        "first_token": first_token_share(attn),
        "cls": key_share(attn, masks.first_special),
        "sep": key_share(attn, masks.other_special),
        "punctuation": key_share(attn, masks.punctuation),
        "punctuation_or_sep": key_share(attn, other),
        "self_token": blank,
        "previous_token": blank,
        "next_token": blank,
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
        "core.engine.stats.normalize_row_entropy",
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
