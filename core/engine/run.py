"""Running a model on a tokenization: one forward pass, statistics layer by layer, one
:class:`~core.engine.analysis.Analysis` out.

:func:`analyze` tokenizes a text (through :mod:`core.engine.tokenize`, the only module that calls
a tokenizer) and runs it; :func:`analyze_ids` runs an exact sequence of token ids (a generated
text), which re-tokenizing its text could split differently; :func:`with_layers` recomputes the
full weights of layers a long analysis did not keep, from the analysis' own inputs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from core.engine import budget
from core.engine.analysis import Analysis
from core.engine.model_kinds import require_kind
from core.engine.streaming import recompute_layers, run_inputs, stream_statistics
from core.engine.tokenize import Tokenized, tokenize, tokenize_ids
from core.policy.errors import UnsupportedModelError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "DEFAULT_KEEP_BYTES",
    "KeepLayers",
    "Method",
    "analyze",
    "analyze_ids",
    "forward_all_layers",
    "with_layers",
]

Method = Literal["layers", "all"]
KeepLayers = Literal["auto", "all", "none"] | Sequence[int]
# Hold every layer's weights while they fit the budget (core.engine.budget); beyond it only
# statistics and the chosen layers.
DEFAULT_KEEP_BYTES = budget.DEFAULT_BUDGET_BYTES


def forward_all_layers(loaded: LoadedModel, inputs: dict[str, Tensor]) -> Tensor:
    """The all-layers path: one pass with ``output_attentions=True``; returns ``(n_layers,
    n_heads, seq_len, seq_len)`` float32 on the CPU."""
    with torch.inference_mode():
        out = loaded.model.base_model(**run_inputs(loaded, inputs), output_attentions=True)
    attentions = out.attentions
    if not attentions or any(a is None for a in attentions):
        raise UnsupportedModelError("error.no_attention", model=loaded.title)
    return torch.stack([layer[0] for layer in attentions]).float().cpu()  # (L, H, T, T)


def _layers_to_keep(
    keep: KeepLayers, n_layers: int, n_heads: int, seq_len: int, keep_bytes: int
) -> tuple[int, ...]:
    """Which layers' full weights to hold.

    >>> _layers_to_keep("auto", 6, 12, 512, DEFAULT_KEEP_BYTES)  # 75 MB: all of them
    (0, 1, 2, 3, 4, 5)
    >>> _layers_to_keep("auto", 30, 9, 2048, DEFAULT_KEEP_BYTES)  # 4.5 GB: none
    ()
    >>> _layers_to_keep([3, 1], 30, 9, 2048, DEFAULT_KEEP_BYTES)
    (1, 3)
    """
    if keep == "all":
        return tuple(range(n_layers))
    if keep == "none":
        return ()
    if keep == "auto":
        fits = budget.fits(n_layers, n_heads, seq_len, keep_bytes)
        return tuple(range(n_layers)) if fits else ()
    return tuple(sorted({int(layer) for layer in keep if 0 <= int(layer) < n_layers}))


def analyze(
    loaded: LoadedModel,
    text: str,
    pair: str | None = None,
    *,
    max_tokens: int | None = None,
    keep_layers: KeepLayers = "auto",
    keep_bytes: int = DEFAULT_KEEP_BYTES,
    method: Method = "layers",
) -> Analysis:
    """Analyse ``text`` (and an optional second sentence, encoders only) under ``loaded``.

    Input longer than the model's limit (or ``max_tokens``) is truncated; ``truncated`` and
    ``n_input_tokens`` say so. ``method="layers"`` (default) takes the statistics layer by layer
    as the forward pass runs (:mod:`core.engine.streaming`) and holds the weights of
    ``keep_layers`` only: ``"auto"`` holds all of them while they fit in ``keep_bytes``, none
    beyond. ``method="all"`` asks the model for every layer at once (``output_attentions=True``)
    and holds everything; both give the same statistics.
    """
    require_kind(loaded, "text")  # an image or encoder-decoder model: a message, not a crash
    tokenized = tokenize(loaded, text, pair, max_tokens=max_tokens)
    return run_tokenized(
        loaded,
        tokenized,
        max_tokens=max_tokens,
        keep_layers=keep_layers,
        keep_bytes=keep_bytes,
        method=method,
    )


def analyze_ids(
    loaded: LoadedModel,
    token_ids: Sequence[int],
    *,
    max_tokens: int | None = None,
    keep_layers: KeepLayers = "auto",
    keep_bytes: int = DEFAULT_KEEP_BYTES,
    method: Method = "layers",
) -> Analysis:
    """Analyse an exact sequence of token ids (a prompt and what was generated from it).

    Nothing is re-tokenized and no special tokens are added, so position t is token
    ``token_ids[t]``; the analysis' ``text`` is the ids decoded
    (:func:`core.engine.tokenize.tokenize_ids`). For a text that came from the tokenizer,
    ``analyze_ids(loaded, analyze(loaded, text).token_ids)`` gives the same attention as
    ``analyze(loaded, text)``. Options as for :func:`analyze`.
    """
    require_kind(loaded, "text")
    tokenized = tokenize_ids(loaded, token_ids, max_tokens=max_tokens)
    return run_tokenized(
        loaded,
        tokenized,
        max_tokens=max_tokens,
        keep_layers=keep_layers,
        keep_bytes=keep_bytes,
        method=method,
    )


def run_tokenized(
    loaded: LoadedModel,
    tokenized: Tokenized,
    *,
    max_tokens: int | None = None,
    keep_layers: KeepLayers = "auto",
    keep_bytes: int = DEFAULT_KEEP_BYTES,
    method: Method = "layers",
) -> Analysis:
    """The forward pass and statistics shared by :func:`analyze` and :func:`analyze_ids`."""
    inputs = tokenized.inputs
    seq_len = tokenized.input_ids.shape[-1]
    meta = {
        "model_name": loaded.name,
        "kind": loaded.kind,
        "text": tokenized.texts[0],
        "pair": tokenized.texts[1] if len(tokenized.texts) > 1 else None,
        "token_ids": tuple(tokenized.input_ids[0].tolist()),
        "token_type_ids": (
            tuple(tokenized.extra_inputs["token_type_ids"][0].tolist())
            if "token_type_ids" in tokenized.extra_inputs
            else None
        ),
        "raw_tokens": tokenized.raw_tokens,
        "special": tokenized.special,
        "sentence_b_start": tokenized.sentence_b_start,
        "offsets": tokenized.offsets,
        "sequence_ids": tokenized.sequence_ids,
        "truncated": tokenized.truncated,
        "n_input_tokens": tokenized.n_input_tokens,
        "max_tokens": min(max_tokens or loaded.max_tokens, loaded.max_tokens),
    }
    if method == "layers":
        keep = _layers_to_keep(keep_layers, loaded.n_layers, loaded.n_heads, seq_len, keep_bytes)
        try:
            started = time.perf_counter()
            gathered = stream_statistics(loaded, inputs, keep=keep)
        except UnsupportedModelError:
            method = "all"  # a model that does not declare its attention modules
        else:
            total = time.perf_counter() - started
            weights = tuple(gathered.kept.get(layer) for layer in range(loaded.n_layers))
            return Analysis.from_statistics(
                gathered.statistics,
                weights,
                tokenized.tokens,
                forward_seconds=total - gathered.stats_seconds,
                stats_seconds=gathered.stats_seconds,
                **meta,
            )
    started = time.perf_counter()
    attn = forward_all_layers(loaded, inputs)  # (L, H, T, T)
    forward_seconds = time.perf_counter() - started
    return Analysis.from_attentions(attn, tokenized.tokens, forward_seconds=forward_seconds, **meta)


def with_layers(loaded: LoadedModel, result: Analysis, layers: Sequence[int]) -> Analysis:
    """``result`` with the full weights of ``layers`` held too, recomputed by one forward pass
    that stops after the highest missing layer. ``result`` itself is not changed."""
    missing = [layer for layer in layers if result.layer_weights[layer] is None]
    if not missing:
        return result
    return result.holding(recompute_layers(loaded, result.model_inputs(), missing))
