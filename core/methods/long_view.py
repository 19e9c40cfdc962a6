"""One layer of a long text, for the eye: a max-pooled overview of every head's ``T x T`` map and
the exact weights of a window of queries and keys, without holding the layer's weights.

A browser cannot draw a ``T x T`` heatmap at thousands of tokens (SmolLM2's full context is 67
million cells a head). The overview's cell (r, c) is the largest weight of the queries and keys
in its span (adaptive max pooling, :func:`core.engine.stats.pooled_attention`, or its faster
equal-bin form :func:`core.engine.block_stats.pool_keys`), so a sharp stripe (a sink column, the
diagonal) stays visible however small it is; the window shows the weights themselves, labelled
with their tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.nn.functional import pad

from core.engine import stats
from core.engine.attention_fn import blocks_to, uses_attnscope
from core.engine.block_stats import pool_keys
from core.engine.hooks import attention_modules
from core.engine.streaming import recompute_layers, run_inputs

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = ["OVERVIEW_SIZE", "LayerWindow", "layer_top_keys", "layer_window"]

OVERVIEW_SIZE = 128


@dataclass(frozen=True, eq=False)
class LayerWindow:
    """Every head of one layer: ``overview`` ``(H, S, S)`` max-pooled, ``window`` ``(H, r, k)``
    the exact weights of queries ``rows`` and keys ``keys``."""

    layer: int
    overview: Tensor  # (H, S, S)
    window: Tensor  # (H, len(rows), len(keys))
    rows: range
    keys: range


class _Done(Exception):
    """Ends the forward pass once the wanted layer is complete."""


def _from_weights(attn: Tensor, layer: int, rows: range, keys: range, size: int) -> LayerWindow:
    overview = stats.pooled_attention(attn, min(size, attn.shape[-1]))  # (H, S, S)
    window = attn[:, rows.start : rows.stop, keys.start : keys.stop].clone()
    return LayerWindow(layer, overview, window, rows, keys)


def _blocks_of_layer(
    loaded: LoadedModel, analysis: Analysis, layer: int, take: Callable[[int, Tensor], None]
) -> None:
    """One pass of ``analysis``' inputs in blocks of queries, ``take(start, weights (H, b, K))``
    called on each block of ``layer`` only; the pass ends once that layer is complete."""
    seen = [0]

    def on_block(at: int, start: int, weights: Tensor, logits: Tensor) -> None:
        if at != layer:
            return
        take(start, weights)
        seen[0] += weights.shape[1]
        if seen[0] == analysis.seq_len:
            raise _Done

    modules, _ = attention_modules(loaded.model)
    try:
        with torch.inference_mode(), blocks_to(on_block, {m: i for i, m in enumerate(modules)}):
            loaded.model.base_model(**run_inputs(loaded, analysis.model_inputs()))
    except _Done:
        pass


def layer_window(
    loaded: LoadedModel,
    analysis: Analysis,
    layer: int,
    rows: range,
    keys: range,
    *,
    size: int = OVERVIEW_SIZE,
) -> LayerWindow:
    """The overview and window of ``layer``: from its held weights, else from a pass that stops
    after it, in blocks of queries under ``"attnscope"`` attention (memory ``O(block x T)``) or
    recomputing the whole layer under eager."""
    seq_len = analysis.seq_len
    rows = range(max(0, rows.start), min(seq_len, rows.stop))
    keys = range(max(0, keys.start), min(seq_len, keys.stop))
    held = analysis.layer_weights[layer]
    if held is not None:
        return _from_weights(held, layer, rows, keys, size)
    if not uses_attnscope(loaded.model):
        attn = recompute_layers(loaded, analysis.model_inputs(), [layer])[layer]
        return _from_weights(attn, layer, rows, keys, size)
    size = min(size, seq_len)
    n_heads = loaded.n_heads
    by_row = torch.zeros(n_heads, seq_len, size)  # (H, T, S): each row max-pooled over keys
    window = torch.zeros(n_heads, len(rows), len(keys))

    def take(start: int, weights: Tensor) -> None:
        heads, count, reach = weights.shape
        full = pad(weights.float(), (0, seq_len - reach))  # (H, b, T): keys past reach weigh 0
        by_row[:, start : start + count] = pool_keys(weights.float(), seq_len, size).cpu()
        low, high = max(rows.start, start), min(rows.stop, start + count)
        if low < high:
            part = full[:, low - start : high - start, keys.start : keys.stop]
            window[:, low - rows.start : high - rows.start] = part.cpu()

    _blocks_of_layer(loaded, analysis, layer, take)
    overview = pool_keys(by_row.transpose(1, 2), seq_len, size).transpose(1, 2)  # (H, S, S)
    return LayerWindow(layer, overview, window, rows, keys)


def layer_top_keys(
    loaded: LoadedModel, analysis: Analysis, layer: int, k: int = 32
) -> tuple[Tensor, Tensor]:
    """Each row's ``k`` strongest keys in ``layer``, ``(values (H, T, k), indices (H, T, k))``,
    largest first: what the head view draws of a long text, gathered block by block by a pass
    that stops after ``layer`` (memory ``O(H x T x k)``), or from the layer's weights when held
    or under eager."""
    seq_len = analysis.seq_len
    k = min(k, seq_len)
    held = analysis.layer_weights[layer]
    if held is None and not uses_attnscope(loaded.model):
        held = recompute_layers(loaded, analysis.model_inputs(), [layer])[layer]
    if held is not None:
        values, indices = torch.topk(held, k, dim=-1)
        return values, indices
    values = torch.zeros(loaded.n_heads, seq_len, k)
    indices = torch.zeros(loaded.n_heads, seq_len, k, dtype=torch.long)

    def take(start: int, weights: Tensor) -> None:
        count, reach = weights.shape[1], weights.shape[2]
        full = weights if reach >= k else pad(weights, (0, k - reach))  # (H, b, >= k)
        top = torch.topk(full.float(), k, dim=-1)  # ties and zero weights: any key, weight 0
        values[:, start : start + count] = top.values.cpu()
        indices[:, start : start + count] = top.indices.cpu()

    _blocks_of_layer(loaded, analysis, layer, take)
    return values, indices
