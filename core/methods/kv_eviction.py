"""Simulated KV-cache eviction: how much of each query's attention a cache of ``B`` keys would
keep, per layer, under two policies, with no generation (every query of the text is a decoding
step that had the keys before it):

- **StreamingLLM** (Xiao et al. 2024): the first ``sink`` tokens and the ``B - sink`` most recent;
  kept mass ``sum_{j < sink} a_ij + sum_{i - (B - sink) < j <= i, j >= sink} a_ij``.
- **Heavy hitters** (H2O, Zhang et al. 2023): the ``B / 2`` most recent keys and the ``B / 2``
  keys with the most attention received over the whole text (``received_by_head``, per head).
  H2O picks its heavy hitters greedily from the attention seen so far; this uses the whole text's
  totals, an oracle, so it is an upper bound of what H2O keeps at that budget.

A query with ``i < B`` keys before it keeps everything under both. Decoders only: an encoder has
no cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.engine.attention_fn import blocks_to, uses_attnscope
from core.engine.hooks import attention_modules
from core.engine.streaming import map_layers, run_inputs
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = ["BUDGETS", "Eviction", "kept_mass", "simulate_eviction"]

BUDGETS = (64, 128, 256, 512, 1024, 2048)
SINK = 4


@dataclass(frozen=True, eq=False)
class Eviction:
    """Kept attention mass, mean over queries: ``(L, H, n_budgets)`` per policy."""

    budgets: tuple[int, ...]
    streaming: Tensor  # (L, H, n_budgets)
    heavy: Tensor  # (L, H, n_budgets)
    sink: int = SINK

    def layer_means(self) -> tuple[Tensor, Tensor]:
        """``(L, n_budgets)`` each: the head-averaged kept mass of both policies."""
        return self.streaming.mean(dim=1), self.heavy.mean(dim=1)


def kept_mass(
    weights: Tensor, start: int, budget: int, heavy: Tensor, *, sink: int = SINK
) -> tuple[Tensor, Tensor]:
    """Kept mass of rows ``start..start+b`` of one layer's causal weights ``(H, b, K)`` at
    ``budget`` keys: ``(StreamingLLM (H, b), heavy hitters (H, b))``. ``heavy`` ``(H, T)``:
    True on each head's heavy-hitter keys.

    >>> w = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0],
    ...                    [0.5, 0.1, 0.1, 0.3]]])  # (1, 4, 4): query 3 looks at all four
    >>> hh = torch.tensor([[True, False, False, False]])  # key 0 is the heavy hitter
    >>> streaming, heavy = kept_mass(w[:, 3:], 3, 2, hh, sink=1)  # keep key 0 and key 3
    >>> round(streaming.item(), 4), round(heavy.item(), 4)  # H2O: key 3 (recent) and key 0
    (0.8, 0.8)
    """
    heads, rows, reach = weights.shape
    queries = torch.arange(start, start + rows)[:, None]  # (b, 1)
    keys = torch.arange(reach)[None, :]  # (1, K)
    recent = budget - sink
    keep_streaming = (keys < sink) | (keys > queries - recent)  # (b, K)
    keep_heavy = (keys > queries - budget // 2)[None] | heavy[:, None, :reach]  # (H, b, K)
    everything = queries < budget  # (b, 1): fewer keys than the budget, nothing evicted
    streaming = (weights * (keep_streaming | everything)).sum(dim=-1)  # (H, b)
    heavy_kept = (weights * (keep_heavy | everything[None])).sum(dim=-1)  # (H, b)
    return streaming, heavy_kept


def _heavy_sets(received: Tensor, budget: int) -> Tensor:
    """``(L, H, T)`` True on each head's ``budget // 2`` most attended keys."""
    k = min(budget // 2, received.shape[-1])
    top = received.topk(k, dim=-1).indices  # (L, H, k)
    return torch.zeros_like(received, dtype=torch.bool).scatter_(-1, top, True)


def simulate_eviction(
    loaded: LoadedModel,
    analysis: Analysis,
    budgets: Sequence[int] = BUDGETS,
    *,
    progress: Callable[[int], None] | None = None,
) -> Eviction:
    """Both policies at every budget below the text's length, for every layer and head, from
    the held weights or, for a long text, one more forward pass in blocks of queries.
    ``progress(layer)`` hears each layer as it completes."""
    if analysis.kind != "decoder":
        raise InputError("error.eviction_encoder")
    budgets = tuple(b for b in budgets if b < analysis.seq_len) or (max(1, analysis.seq_len // 2),)
    n_layers, n_heads, seq_len = analysis.n_layers, analysis.n_heads, analysis.seq_len
    heavy = [_heavy_sets(analysis.received_by_head, b) for b in budgets]  # each (L, H, T)
    streaming = torch.zeros(n_layers, n_heads, len(budgets))
    heavy_kept = torch.zeros(n_layers, n_heads, len(budgets))
    rows_seen = [0] * n_layers

    def on_block(layer: int, start: int, weights: Tensor, logits: Tensor | None = None) -> None:
        weights = weights.float().cpu()
        for n, budget in enumerate(budgets):
            s, h = kept_mass(weights, start, budget, heavy[n][layer])
            streaming[layer, :, n] += s.sum(dim=-1)
            heavy_kept[layer, :, n] += h.sum(dim=-1)
        rows_seen[layer] += weights.shape[1]
        if progress is not None and rows_seen[layer] == seq_len:
            progress(layer)

    if all(w is not None for w in analysis.layer_weights):
        for layer, weights in enumerate(analysis.layer_weights):
            on_block(layer, 0, weights)
    elif uses_attnscope(loaded.model):
        modules, _ = attention_modules(loaded.model)
        with torch.inference_mode(), blocks_to(on_block, {m: i for i, m in enumerate(modules)}):
            loaded.model.base_model(**run_inputs(loaded, analysis.model_inputs()))
    else:
        map_layers(loaded, analysis.model_inputs(), lambda layer, w: on_block(layer, 0, w))
    return Eviction(budgets, streaming / seq_len, heavy_kept / seq_len)
