"""Where attention goes along the sequence: how each head's mass splits between the attention sink
(the first tokens), a local window and the far context, and the mean attention at each distance
(in doubling bins), gathered block by block from the rows of every layer.

Split, for query i, averaged over queries (StreamingLLM's view, Xiao et al. 2024, "Efficient
Streaming Language Models with Attention Sinks"):

- ``sink  = sum_{j < SINK_TOKENS} a_ij``;
- ``local = sum_{j >= SINK_TOKENS, |i - j| < LOCAL_WINDOW} a_ij``;
- ``far   = 1 - sink - local``.

Distance profile: the distances ``d = |i - j|`` fall in bins ``[0, 1), [1, 2), [2, 4), [4, 8),
...``; ``mass[m]`` is the attention in bin m averaged over queries, and ``mean[m]`` is the mean
weight of one (query, key) pair in the bin, ``sum of a_ij over its pairs / its pair count``. A
bin's mass is a difference of a row's cumulative sums at the bin's edges, so a block costs one
cumulative sum and a few gathers, not a pass per bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "LOCAL_WINDOW",
    "SINK_TOKENS",
    "LongRange",
    "LongRangeAccumulator",
    "distance_edges",
    "long_range_of",
    "pair_counts",
]

SINK_TOKENS = 4  # StreamingLLM keeps the first four tokens
LOCAL_WINDOW = 64


def distance_edges(seq_len: int) -> tuple[int, ...]:
    """Bin edges ``0, 1, 2, 4, ..., 2^m`` with ``2^m >= seq_len``: bin m is ``[e_m, e_{m+1})``.

    >>> distance_edges(5), distance_edges(8)
    ((0, 1, 2, 4, 8), (0, 1, 2, 4, 8))
    """
    edges = [0, 1]
    while edges[-1] < seq_len:
        edges.append(edges[-1] * 2)
    return tuple(edges)


def pair_counts(seq_len: int, *, causal: bool) -> Tensor:
    """How many (query, key) pairs lie at a distance in each bin of :func:`distance_edges`:
    ``T - d`` pairs at distance d in a causal pass, ``2 (T - d)`` (``T`` at d = 0) otherwise.

    >>> pair_counts(4, causal=True)  # d=0: 4; d=1: 3; d=2,3: 2 + 1
    tensor([4., 3., 3.])
    >>> pair_counts(4, causal=False)
    tensor([4., 6., 6.])
    """
    edges = distance_edges(seq_len)
    d = torch.arange(seq_len, dtype=torch.float32)  # (T,)
    per_distance = seq_len - d if causal else torch.where(d == 0, seq_len - d, 2 * (seq_len - d))
    return torch.stack(
        [per_distance[lo:hi].sum() for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    )


@dataclass(frozen=True, eq=False)
class LongRange:
    """Every layer's and head's split and distance profile (see the module's formulas)."""

    sink: Tensor  # (L, H): attention on the first SINK_TOKENS tokens, mean over queries
    local: Tensor  # (L, H): on the other keys within LOCAL_WINDOW of the query
    mass: Tensor  # (L, H, n_bins): attention at each distance bin, mean over queries
    mean: Tensor  # (L, H, n_bins): the mean weight of one pair in each bin
    edges: tuple[int, ...]  # distance bin edges, n_bins + 1 of them
    sink_tokens: int = SINK_TOKENS
    window: int = LOCAL_WINDOW

    @property
    def far(self) -> Tensor:
        """``(L, H)``: the rest, ``1 - sink - local``."""
        return (1.0 - self.sink - self.local).clamp_min(0.0)


class LongRangeAccumulator:
    """Sums of :class:`LongRange`'s quantities over the query rows of ``n_layers`` layers."""

    def __init__(self, n_layers: int, n_heads: int, seq_len: int, *, causal: bool) -> None:
        self.seq_len, self.causal = seq_len, causal
        self.edges = torch.tensor(distance_edges(seq_len))  # (n_bins + 1,)
        n_bins = len(self.edges) - 1
        self.sink = torch.zeros(n_layers, n_heads)  # (L, H), summed over queries
        self.local = torch.zeros(n_layers, n_heads)  # (L, H)
        self.mass = torch.zeros(n_layers, n_heads, n_bins)  # (L, H, n_bins)

    def __call__(self, layer: int, start: int, weights: Tensor) -> None:
        """Rows ``start..start+b`` of ``layer``: ``weights`` ``(H, b, K)`` over keys ``0..K``."""
        heads, rows, reach = weights.shape
        cum = weights.cumsum(dim=-1)  # (H, b, K): cum[..., j] = sum of a_i0 .. a_ij
        queries = torch.arange(start, start + rows, device=weights.device)  # (b,)

        def at(index: Tensor) -> Tensor:  # cum at (b, n) key indices; 0 left of key 0
            gathered = cum.gather(-1, index.clamp(0, reach - 1).expand(heads, -1, -1))
            return torch.where(index < 0, torch.zeros((), device=cum.device), gathered)

        edges = self.edges.to(weights.device)
        left = at(queries[:, None] - edges[None, :])  # (H, b, n_bins + 1)
        mass = left[..., :-1] - left[..., 1:]  # keys j <= i at distance in each bin
        sink_edge = torch.full_like(queries, SINK_TOKENS - 1)[:, None]  # (b, 1)
        local_low = torch.maximum(queries[:, None] - LOCAL_WINDOW, sink_edge)  # (b, 1)
        if self.causal:
            local = at(queries[:, None]) - at(local_low)
        else:  # keys right of the query too; distance 0 counted once, on the left
            low = (queries[:, None] + edges[None, :-1].clamp_min(1) - 1).clamp_max(reach - 1)
            high = (queries[:, None] + edges[None, 1:] - 1).clamp_max(reach - 1)
            mass = mass + (at(high) - at(low))
            local = at((queries[:, None] + LOCAL_WINDOW - 1).clamp_max(reach - 1)) - at(local_low)
        self.mass[layer] += mass.sum(dim=1).cpu()
        self.local[layer] += local.clamp_min(0.0).sum(dim=(1, 2)).cpu()
        self.sink[layer] += at(sink_edge).sum(dim=(1, 2)).cpu()

    def result(self) -> LongRange:
        pairs = pair_counts(self.seq_len, causal=self.causal)  # (n_bins,)
        return LongRange(
            sink=self.sink / self.seq_len,
            local=self.local / self.seq_len,
            mass=self.mass / self.seq_len,
            mean=self.mass / pairs.clamp_min(1.0),
            edges=tuple(int(e) for e in self.edges),
        )


def long_range_of(attn: Tensor, *, causal: bool) -> LongRange:
    """:class:`LongRange` of held weights ``(L, H, T, T)``, each layer as one block.

    >>> uniform = torch.full((1, 1, 4, 4), 0.25)
    >>> long_range_of(uniform, causal=False).sink  # the first 4 tokens are all of them
    tensor([[1.]])
    """
    n_layers, n_heads, seq_len, _ = attn.shape
    gather = LongRangeAccumulator(n_layers, n_heads, seq_len, causal=causal)
    for layer in range(n_layers):
        gather(layer, 0, attn[layer])
    return gather.result()
