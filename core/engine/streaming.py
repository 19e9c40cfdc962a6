"""Layer-by-layer attention: statistics computed as the forward pass produces each layer.

With ``output_attentions=True`` a model hands back every layer's weights at once, ``n_layers x
n_heads x T x T`` floats (4.5 GB for SmolLM2 at 2048 tokens). Here a forward hook on each
attention module reads that layer's weights (eager attention returns them from the module even
when they are not collected), folds them into the statistics, keeps them only if asked, and lets
them go; peak memory then grows with one layer's ``n_heads x T x T``. The hooks are always
removed, even when the forward pass fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import torch
from torch import Tensor, nn

from core.engine import stats
from core.engine.attention_fn import blocks_to, uses_attnscope
from core.engine.block_stats import BlockAccumulator
from core.engine.hooks import HookSet, attention_modules
from core.engine.long_range import LongRangeAccumulator
from core.policy.errors import UnsupportedModelError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "LayerStatistics",
    "THUMBNAIL_SIZE",
    "capture_attention",
    "layer_statistics",
    "map_batch_layers",
    "map_layers",
    "run_inputs",
    "recompute_layers",
    "stream_statistics",
]

THUMBNAIL_SIZE = 32

LayerCallback = Callable[[int, Tensor], None]


class _StopForward(Exception):
    """Raised by a hook to end the forward pass once the last wanted layer has been seen."""


@contextmanager
def capture_attention(
    model: nn.Module,
    on_layer: LayerCallback,
    *,
    stop_after: int | None = None,
    whole_batch: bool = False,
) -> Iterator[None]:
    """Within the block, every forward pass of ``model`` calls ``on_layer(layer, weights)`` with
    each layer's ``(n_heads, T, T)`` weights (batch item 0) as they are computed, or the whole
    batch's ``(batch, n_heads, T, T)`` with ``whole_batch``.

    With ``stop_after=l`` the pass ends right after layer ``l`` (the block swallows the stop), so
    recomputing one early layer does not pay for the layers above it.
    """
    modules, index = attention_modules(model)

    def make_hook(layer: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: object, output: object) -> None:
            weights = output[index] if isinstance(output, tuple | list) else None
            if weights is None:
                raise UnsupportedModelError("error.no_attention_layer", layer=layer)
            on_layer(layer, weights if whole_batch else weights[0])  # (B, H, T, T) or (H, T, T)
            if stop_after is not None and layer >= stop_after:
                raise _StopForward

        return hook

    # HookSet removes the hooks whatever happens, and runs them only for this thread's forward
    # passes: a cached model is shared by every session, and two sessions analysing at once
    # must not get each other's weights.
    with HookSet() as hooks:
        for layer, module in enumerate(modules):
            hooks.forward(module, make_hook(layer))
        with suppress(_StopForward):
            yield


@dataclass(frozen=True, eq=False)
class LayerStatistics:
    """Everything computed from the attention of every layer, plus the layers that were kept.

    ``statistics`` holds what :func:`layer_statistics` returns, stacked over layers:
    ``head_entropy`` and ``normalized_head_entropy`` ``(L, H)``, ``layer_entropy`` ``(L,)``,
    the same three over queries with a choice (``*_choice``), ``received_by_head`` ``(L, H,
    T)``, and ``pooled_maps`` ``(L, H, S, S)`` (None when every layer was kept: thumbnails are
    then made from the weights when a view asks).
    """

    statistics: dict[str, object]  # tensors, and long_range: a LongRange
    kept: dict[int, Tensor]  # layer -> (n_heads, seq_len, seq_len) float32 on the CPU
    stats_seconds: float  # time spent in the statistics, inside the forward pass


def layer_statistics(attn: Tensor, *, causal: bool) -> dict[str, Tensor]:
    """The statistics of one layer's ``(n_heads, T, T)`` (or all layers' ``(L, H, T, T)``)
    attention; both paths of :func:`core.engine.analysis.analyze` use this one definition.

    The ``*_choice`` keys average over the queries that have a choice
    (:func:`core.engine.stats.choice_queries`: ``i >= 1`` in a decoder, every query in an
    encoder); the others over every query, as they always have.

    >>> out = layer_statistics(torch.full((2, 3, 3), 1 / 3), causal=False)
    >>> out["head_entropy"], out["layer_entropy"]
    (tensor([1.0986, 1.0986]), tensor(1.0986))
    >>> causal_uniform = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    >>> out = layer_statistics(causal_uniform.expand(1, 3, 3), causal=True)
    >>> out["normalized_head_entropy"], out["normalized_head_entropy_choice"]
    (tensor([0.6667]), tensor([1.]))
    """
    seq_len = attn.shape[-1]
    choice = stats.choice_queries(seq_len, causal=causal).to(attn.device)  # (T,)
    rows = stats.row_entropy(attn)  # (..., H, T)
    normalized = stats.normalize_row_entropy(rows, causal=causal)  # (..., H, T)
    layer_rows = stats.row_entropy(stats.layer_average(attn))  # (..., T), for the choice
    return {
        "head_entropy": rows.mean(dim=-1),  # (..., H)
        "normalized_head_entropy": normalized.mean(dim=-1),  # (..., H)
        "layer_entropy": stats.layer_entropy(attn),  # (...,)
        "received_by_head": stats.received_attention(attn),  # (..., H, T)
        "head_entropy_choice": stats.query_mean(rows, choice),  # (..., H)
        "normalized_head_entropy_choice": stats.query_mean(normalized, choice),  # (..., H)
        "layer_entropy_choice": stats.query_mean(layer_rows, choice),  # (...,)
    }


def run_inputs(loaded: LoadedModel, inputs: dict[str, Tensor]) -> dict[str, object]:
    """Keyword arguments for the base model: ``inputs`` on the model's device, no KV cache."""
    kwargs: dict[str, object] = dict(loaded.place(inputs))
    kwargs["return_dict"] = True
    if loaded.kind == "decoder":
        kwargs["use_cache"] = False  # no KV cache: nothing comes after this pass
    return kwargs


LayerResult = TypeVar("LayerResult")


def map_layers(
    loaded: LoadedModel,
    inputs: dict[str, Tensor],
    fn: Callable[[int, Tensor], LayerResult],
    *,
    stop_after: int | None = None,
) -> list[LayerResult]:
    """One forward pass of ``inputs`` (each ``(1, T)``) calling ``fn(layer, weights)`` on each
    layer's ``(n_heads, T, T)`` weights as they are computed; its answers in layer order. With
    ``stop_after=l`` the pass ends after layer ``l``. Raises :class:`UnsupportedModelError` when
    a layer's attention went unseen (a model whose modules are not where transformers says)."""
    results: list[LayerResult] = []

    def on_layer(layer: int, weights: Tensor) -> None:
        results.append(fn(layer, weights))

    with (
        torch.inference_mode(),
        capture_attention(loaded.model, on_layer, stop_after=stop_after),
    ):
        loaded.model.base_model(**run_inputs(loaded, inputs))
    expected = loaded.n_layers if stop_after is None else stop_after + 1
    if len(results) != expected:
        raise UnsupportedModelError("error.layer_count", expected=expected, got=len(results))
    return results


def map_batch_layers(
    loaded: LoadedModel,
    inputs: dict[str, Tensor],
    fn: Callable[[int, Tensor], LayerResult],
) -> list[LayerResult]:
    """One forward pass of a padded batch, calling ``fn(layer, weights)`` on each layer's ``(B,
    n_heads, T, T)`` weights as they are computed; its answers in layer order.

    ``inputs`` are each ``(B, T)``: ``input_ids``, ``attention_mask`` (1 on real tokens, 0 on
    padding) and, for left padding, ``position_ids`` counting from each text's first real token.
    The weights of padded queries and keys are whatever the model makes of them: the caller
    reads each text's own block (see :mod:`core.corpus.batch`). Only one layer's weights are
    alive at a time.
    """
    results: list[LayerResult] = []

    def on_layer(layer: int, weights: Tensor) -> None:
        results.append(fn(layer, weights))

    with (
        torch.inference_mode(),
        capture_attention(loaded.model, on_layer, whole_batch=True),
    ):
        loaded.model.base_model(**run_inputs(loaded, inputs))
    if len(results) != loaded.n_layers:
        raise UnsupportedModelError("error.layer_count", expected=loaded.n_layers, got=len(results))
    return results


def stream_statistics(
    loaded: LoadedModel,
    inputs: dict[str, Tensor],
    *,
    keep: Sequence[int] = (),
    thumbnail_size: int = THUMBNAIL_SIZE,
) -> LayerStatistics:
    """One forward pass of ``inputs`` (each ``(1, T)``), statistics gathered layer by layer.

    Only the layers in ``keep`` are held (float32, CPU); the others are dropped once their
    statistics are taken.
    """
    n_layers, n_heads = loaded.n_layers, loaded.n_heads
    seq_len = inputs["input_ids"].shape[-1]
    size = min(seq_len, thumbnail_size)
    wanted = set(keep)
    if uses_attnscope(loaded.model):
        return _block_statistics(loaded, inputs, wanted, size)
    out = {
        "head_entropy": torch.zeros(n_layers, n_heads),
        "normalized_head_entropy": torch.zeros(n_layers, n_heads),
        "layer_entropy": torch.zeros(n_layers),
        "received_by_head": torch.zeros(n_layers, n_heads, seq_len),
        "head_entropy_choice": torch.zeros(n_layers, n_heads),
        "normalized_head_entropy_choice": torch.zeros(n_layers, n_heads),
        "layer_entropy_choice": torch.zeros(n_layers),
    }
    # Thumbnails are only made here when some layer will be gone afterwards.
    pooled = None if wanted >= set(range(n_layers)) else torch.zeros(n_layers, n_heads, size, size)
    kept: dict[int, Tensor] = {}
    spent = [0.0]
    long_range = LongRangeAccumulator(n_layers, n_heads, seq_len, causal=loaded.causal)

    def on_layer(layer: int, weights: Tensor) -> None:
        started = time.perf_counter()
        attn = weights.float()  # (H, T, T)
        for key, value in layer_statistics(attn, causal=loaded.causal).items():
            out[key][layer] = value.cpu()
        if pooled is not None:
            pooled[layer] = stats.pooled_attention(attn, size).cpu()  # (H, S, S)
        long_range(layer, 0, attn)
        if layer in wanted:
            kept[layer] = attn.cpu()
        spent[0] += time.perf_counter() - started

    map_layers(loaded, inputs, on_layer)
    return LayerStatistics(
        statistics={**out, "pooled_maps": pooled, "long_range": long_range.result()},
        kept=kept,
        stats_seconds=spent[0],
    )


def _block_statistics(
    loaded: LoadedModel, inputs: dict[str, Tensor], wanted: set[int], size: int
) -> LayerStatistics:
    """:func:`stream_statistics` through ``"attnscope"`` attention: blocks of query rows, never
    a whole layer's weights (:mod:`core.engine.block_stats`)."""
    n_layers = loaded.n_layers
    thumbnail = 0 if wanted >= set(range(n_layers)) else size
    gather = BlockAccumulator(
        n_layers,
        loaded.n_heads,
        inputs["input_ids"].shape[-1],
        causal=loaded.causal,
        keep=frozenset(wanted),
        thumbnail=thumbnail,
    )
    modules, _ = attention_modules(loaded.model)
    with torch.inference_mode(), blocks_to(gather, {m: i for i, m in enumerate(modules)}):
        loaded.model.base_model(**run_inputs(loaded, inputs))
    if not gather.complete():
        raise UnsupportedModelError(
            "error.layer_count",
            expected=n_layers,
            got=sum(seen == gather.seq_len for seen in gather.rows_seen),
        )
    return LayerStatistics(
        statistics=gather.statistics(), kept=gather.kept, stats_seconds=gather.seconds
    )


def recompute_layers(
    loaded: LoadedModel, inputs: dict[str, Tensor], layers: Sequence[int]
) -> dict[int, Tensor]:
    """The full ``(n_heads, T, T)`` weights of ``layers``, by a forward pass that stops after the
    highest of them."""
    wanted = set(layers)
    if not wanted:
        return {}

    def held(layer: int, weights: Tensor) -> Tensor | None:
        return weights.float().cpu() if layer in wanted else None

    layer_weights = map_layers(loaded, inputs, held, stop_after=max(wanted))
    return {layer: layer_weights[layer] for layer in sorted(wanted)}
