"""Statistics gathered from blocks of query rows, as ``"attnscope"`` attention hands them
over (:mod:`core.engine.attention_fn`): the same numbers as
:func:`core.engine.streaming.layer_statistics` over a whole layer, without ever holding a
layer's ``(H, T, T)`` weights.

Every statistic is a sum over query rows, so a layer's value is its blocks' values put
together: row entropies are written row by row, received attention is a running column sum, and
thumbnails are max-pooled over keys per row, then over queries once the layer is complete
(adaptive max pooling is separable: the max over a rectangle is the max over its rows of the max
over its columns).

Row entropy is taken from the logits, with no log over ``b x S``: with ``m = max_j z_j`` and
``p = softmax(z)``, ``ln p_j = z_j - logsumexp(z)`` and ``logsumexp(z) = m - ln max_j p_j``, so

    ``H = -sum_j p_j ln p_j = -ln max_j p_j - (sum_j p_j z_j - m)``,

two row maxima and one dot product per row. A row whose keys are all masked (logits all at the
dtype's minimum) is uniform and gets ``ln S``, as eager gives.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from core.engine import stats
from core.engine.long_range import LongRangeAccumulator

__all__ = ["BlockAccumulator", "entropy_from_logits", "pool_keys"]


def entropy_from_logits(weights: Tensor, logits: Tensor) -> Tensor:
    """Row entropies ``(..., b)`` of ``weights = softmax(logits)`` ``(..., b, S)``.

    >>> z = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    >>> entropy_from_logits(torch.softmax(z, -1), z)  # ln 2; the same as -sum p ln p
    tensor([0.6931, 0.3653])
    >>> stats.row_entropy(torch.softmax(z, -1))
    tensor([0.6931, 0.3653])
    """
    peak = logits.amax(dim=-1)  # (..., b)
    keys = weights.shape[-1]
    # sum_j p_j z_j as a batched (1 x S) @ (S x 1) product: 2.5x faster than vecdot or a
    # multiply-and-sum on a CPU (SmolLM2 at 2048 tokens, one thread)
    dot = torch.bmm(weights.reshape(-1, 1, keys), logits.reshape(-1, keys, 1)).reshape(peak.shape)
    entropy = (dot - peak).neg_().sub_(weights.amax(dim=-1).log()).clamp_min_(0.0)
    # a row with every key masked is uniform (eager's softmax of equal logits): ln S
    nothing_seen = peak <= torch.finfo(logits.dtype).min / 2
    return torch.where(nothing_seen, torch.full_like(entropy, math.log(keys)), entropy)


@dataclass
class BlockAccumulator:
    """One forward pass's statistics, filled block by block; :meth:`statistics` stacks them as
    :func:`core.engine.streaming.stream_statistics` returns them. ``keep``: the layers whose
    full weights are assembled; ``thumbnail``: the pooled maps' size, or 0 for none."""

    n_layers: int
    n_heads: int
    seq_len: int
    causal: bool
    keep: frozenset[int] = frozenset()
    thumbnail: int = 0
    seconds: float = 0.0
    kept: dict[int, Tensor] = field(default_factory=dict)
    rows_seen: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        L, H, T = self.n_layers, self.n_heads, self.seq_len  # noqa: N806
        self.row_entropy = torch.zeros(L, H, T)  # (L, H, T)
        self.layer_rows = torch.zeros(L, T)  # (L, T): entropy of the head-averaged rows
        self.received = torch.zeros(L, H, T)  # (L, H, T): column sums so far
        self.col_pooled = (
            torch.zeros(H, T, self.thumbnail) if self.thumbnail else None
        )  # (H, T, S) of the layer in progress
        self.pooled = torch.zeros(L, H, self.thumbnail, self.thumbnail) if self.thumbnail else None
        self.rows_seen = [0] * L
        self.long_range = LongRangeAccumulator(L, H, T, causal=self.causal)

    def __call__(self, layer: int, start: int, weights: Tensor, logits: Tensor) -> None:
        """One block: queries ``start..start+b`` of ``layer``, weights and logits ``(H, b, K)``
        over keys ``0..K`` (``K <= T``; the keys past ``K`` weigh 0)."""
        began = time.perf_counter()
        heads, rows, reach = weights.shape
        stop = start + rows
        self.row_entropy[layer, :, start:stop] = entropy_from_logits(weights, logits).cpu()
        self.layer_rows[layer, start:stop] = stats.row_entropy(weights.mean(dim=0)).cpu()
        self.received[layer, :, :reach] += weights.sum(dim=1).cpu()  # (H, K)
        self.long_range(layer, start, weights)
        if self.col_pooled is not None:
            self.col_pooled[:, start:stop] = self._pool_keys(weights).cpu()  # (H, b, S')
        if layer in self.keep:
            if layer not in self.kept:
                self.kept[layer] = torch.zeros(self.n_heads, self.seq_len, self.seq_len)
            self.kept[layer][:, start:stop, :reach] = weights.cpu()
        self.rows_seen[layer] += rows
        if self.rows_seen[layer] == self.seq_len and self.col_pooled is not None:
            by_rows = self.col_pooled.transpose(1, 2)  # (H, S', T)
            pooled = torch.nn.functional.adaptive_max_pool1d(by_rows, self.thumbnail)
            self.pooled[layer] = pooled.transpose(1, 2)  # (H, S', S')
        self.seconds += time.perf_counter() - began

    def _pool_keys(self, weights: Tensor) -> Tensor:
        """Each row of ``weights`` ``(H, b, K)`` max-pooled over the keys (:func:`pool_keys`)."""
        return pool_keys(weights, self.seq_len, self.thumbnail)

    def complete(self) -> bool:
        """Whether every layer's every query row arrived."""
        return all(seen == self.seq_len for seen in self.rows_seen)

    def statistics(self) -> dict[str, object]:
        """The statistics of :func:`core.engine.streaming.layer_statistics`, stacked over
        layers, plus ``pooled_maps``."""
        choice = stats.choice_queries(self.seq_len, causal=self.causal)  # (T,)
        normalized = stats.normalize_row_entropy(self.row_entropy, causal=self.causal)
        return {
            "head_entropy": self.row_entropy.mean(dim=-1),  # (L, H)
            "normalized_head_entropy": normalized.mean(dim=-1),  # (L, H)
            "layer_entropy": self.layer_rows.mean(dim=-1),  # (L,)
            "received_by_head": self.received / self.seq_len,  # (L, H, T)
            "head_entropy_choice": stats.query_mean(self.row_entropy, choice),  # (L, H)
            "normalized_head_entropy_choice": stats.query_mean(normalized, choice),  # (L, H)
            "layer_entropy_choice": stats.query_mean(self.layer_rows, choice),  # (L,)
            "pooled_maps": self.pooled,
            "long_range": self.long_range.result(),
        }


def pool_keys(weights: Tensor, seq_len: int, size: int) -> Tensor:
    """Each row of ``weights`` ``(H, b, K)`` max-pooled over ``seq_len`` keys into ``size`` bins
    as ``adaptive_max_pool1d`` bins them (the keys past ``K`` weigh 0), ``(H, b, size)``. When
    ``size`` divides ``seq_len`` the bins are equal runs of keys and a reshape takes their
    maxima (25x faster than the adaptive pool); otherwise the adaptive pool itself.

    >>> w = torch.tensor([[[0.125, 0.5, 0.25, 0.125], [0.75, 0.125, 0.5, 0.25]]])  # (1, 2, 4)
    >>> pool_keys(w, 4, 2).tolist(), pool_keys(w[..., :3], 4, 2).tolist()  # all keys; 3 of 4
    ([[[0.5, 0.25], [0.75, 0.5]]], [[[0.5, 0.25], [0.75, 0.5]]])
    >>> pool_keys(w, 4, 3).tolist() == torch.nn.functional.adaptive_max_pool1d(w, 3).tolist()
    True
    """
    heads, rows, reach = weights.shape
    if seq_len % size:
        full = torch.nn.functional.pad(weights, (0, seq_len - reach))  # (H, b, T)
        pooled = torch.nn.functional.adaptive_max_pool1d(
            full.reshape(heads * rows, 1, seq_len), size
        )  # (H * b, 1, S')
        return pooled.reshape(heads, rows, size)
    step = seq_len // size
    out = weights.new_zeros(heads, rows, size)  # bins past the reach: max of zeros
    whole = reach // step
    if whole:
        out[..., :whole] = weights[..., : whole * step].reshape(heads, rows, whole, step).amax(-1)
    if reach % step:  # a bin cut by the reach: its keys past K weigh 0, below any weight
        out[..., whole] = weights[..., whole * step :].amax(-1)
    return out
