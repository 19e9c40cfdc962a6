"""Statistics of a padded batch of texts, with the padding kept out of every number.

A batch of ``B`` texts of unequal lengths is padded to ``T`` tokens (right or left) and run in
one forward pass; each layer's weights arrive as ``(B, H, T, T)`` (see
:func:`core.engine.streaming.map_batch_layers`). Texts of the same length ``n`` are then cut out
together as ``(G, H, n, n)``, exactly the weights a one-text analysis sees, and handed to the
same statistics functions :func:`core.engine.run.analyze` and
:class:`core.methods.head_stats.HeadStats` use (they are vectorised over leading axes). Padded
queries and keys never enter a statistic because they are never in the block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import Tensor

from core.engine import budget, stats
from core.engine.streaming import layer_statistics, map_batch_layers
from core.engine.tokenize import Tokenized, pad_token_id
from core.methods.detectors import duplicate_pattern, pattern_score
from core.methods.head_metrics import HEAD_METRICS, KeyMasks, metric_values
from core.methods.head_stats import PATTERNS as PATTERN_NAMES
from core.methods.head_stats import pattern_index

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "DUPLICATE",
    "METRICS",
    "BatchOptions",
    "BatchStatistics",
    "PaddingSide",
    "batch_statistics",
    "padded_inputs",
    "plan_batches",
]

PaddingSide = Literal["right", "left"]
METRICS: tuple[str, ...] = tuple(HEAD_METRICS)
PATTERNS = np.array(PATTERN_NAMES, dtype=object)  # pattern labels by index
# The duplicate-token detector score's column (core.methods.detectors); the previous-token
# detector score is the ``previous_token`` metric itself.
DUPLICATE = "duplicate_token"
# One layer's weights of one batch may take at most this much (the forward pass holds a few
# copies: scores, probabilities); longer texts get smaller batches.
LAYER_BYTES = budget.DEFAULT_BUDGET_BYTES // 4


@dataclass(frozen=True)
class BatchOptions:
    """How a corpus is batched and what is kept of it."""

    batch_size: int = 32  # texts per forward pass, at most
    chunk_size: int = 256  # texts per stored chunk (the unit a run resumes from)
    padding_side: PaddingSide = "right"
    max_tokens: int | None = None  # truncate longer texts (None: the model's limit)
    top_k: int = 3  # most-attended positions kept per text and head
    top_n: int = 20  # strongest (text, query, key) instances kept per head
    sort_by_length: bool = True  # sorted batches waste little on padding


@dataclass
class BatchStatistics:
    """Every statistic of a batch, by text: arrays with the batch axis first.

    ``metrics[name]`` and ``metrics[name + "_choice"]``: ``(B, L, H)`` float32, the
    :data:`core.methods.head_metrics.HEAD_METRICS` over every query and over the queries with a
    choice, and ``metrics["duplicate_token"]``, the duplicate-token detector score
    (:func:`core.methods.detector_scores.text_scores`; NaN for a text where no token repeats;
    its ``previous_token`` is the previous-token detector score); ``patterns`` /
    ``patterns_choice``: ``(B, L, H)`` label indices into :data:`PATTERNS`; ``layer`` holds
    ``layer_entropy`` and ``layer_entropy_choice`` ``(B, L)``; ``top`` holds ``positions`` and
    ``shares`` ``(B, L, H, k)`` (plain ranking) and ``visible_positions`` / ``visible_shares``
    (keys >= 1 by attention per query that can see them), -1 / NaN where a text has fewer than
    ``k`` keys; ``instances`` holds the candidate strongest instances as parallel arrays
    (``layer``, ``head``, ``item``, ``query``, ``key``, ``weight``; ``item`` is the batch index).
    """

    metrics: dict[str, np.ndarray]
    patterns: np.ndarray
    patterns_choice: np.ndarray
    layer: dict[str, np.ndarray]
    top: dict[str, np.ndarray]
    instances: dict[str, np.ndarray]


def plan_batches(
    lengths: Sequence[int], n_heads: int, batch_size: int, layer_bytes: int = LAYER_BYTES
) -> list[list[int]]:
    """Consecutive runs of indices into ``lengths`` (taken in the given order), each at most
    ``batch_size`` long and with one layer's ``(B, H, T, T)`` weights within ``layer_bytes``
    (``T`` the batch's longest text). Depends only on the lengths, so every engine and every
    resumed run forms the same batches.

    >>> plan_batches([3, 3, 4, 9], n_heads=1, batch_size=2)
    [[0, 1], [2, 3]]
    >>> plan_batches([10, 10, 10], n_heads=1, batch_size=8, layer_bytes=800)  # 400 bytes each
    [[0, 1], [2]]
    """
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index, length in enumerate(lengths):
        widest = max(longest, length)
        size = budget.attention_bytes(1, n_heads, widest) * (len(current) + 1)
        if current and (len(current) >= batch_size or size > layer_bytes):
            batches.append(current)
            current, widest = [], length
        current.append(index)
        longest = widest
    if current:
        batches.append(current)
    return batches


def padded_inputs(
    tokenized: Sequence[Tokenized], side: PaddingSide, pad_id: int
) -> dict[str, Tensor]:
    """The model inputs of a batch, each ``(B, T)`` with ``T`` the longest text: ``input_ids``
    (``pad_id`` on padding), ``attention_mask`` (1 on real tokens) and the segment ids the texts
    carry. Left padding adds ``position_ids`` so that each text's first real token is position 0,
    as in a one-text analysis.

    >>> from core.engine.tokenize import Tokenized
    >>> def tok(ids):
    ...     return Tokenized(torch.tensor([ids]), {}, (), (), (), None, False, len(ids))
    >>> padded_inputs([tok([5, 6, 7]), tok([8])], "left", pad_id=0)["position_ids"]
    tensor([[0, 1, 2],
            [0, 0, 0]])
    """
    lengths = [t.input_ids.shape[-1] for t in tokenized]
    width = max(lengths)
    batch = len(tokenized)
    ids = torch.full((batch, width), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros(batch, width, dtype=torch.long)  # (B, T)
    extra_keys = {key for t in tokenized for key in t.extra_inputs if key != "attention_mask"}
    extra = {key: torch.zeros(batch, width, dtype=torch.long) for key in sorted(extra_keys)}
    for b, (item, n) in enumerate(zip(tokenized, lengths, strict=True)):
        span = slice(0, n) if side == "right" else slice(width - n, width)
        ids[b, span] = item.input_ids[0]
        mask[b, span] = 1
        for key, values in item.extra_inputs.items():
            if key in extra:
                extra[key][b, span] = values[0]
    inputs = {"input_ids": ids, "attention_mask": mask, **extra}
    if side == "left":
        inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp_min(0)  # (B, T)
    return inputs


def _stacked_masks(tokenized: Sequence[Tokenized]) -> KeyMasks:
    """The texts' key masks (each ``(n,)``, texts of one length) stacked to ``(G, 1, 1, n)``, so
    they broadcast over heads and queries in :func:`core.methods.head_metrics.metric_values`."""
    each = [KeyMasks.of(t.tokens, t.special) for t in tokenized]
    return KeyMasks(
        first_special=torch.stack([m.first_special for m in each])[:, None, None, :],
        other_special=torch.stack([m.other_special for m in each])[:, None, None, :],
        punctuation=torch.stack([m.punctuation for m in each])[:, None, None, :],
    )


def _duplicate_patterns(tokenized: Sequence[Tokenized]) -> Tensor:
    """The duplicate-token patterns of texts of one length, ``(G, 1, n, n)`` (broadcast over
    heads): query i -> every earlier position with its token id, special tokens left out."""
    ids = torch.stack([t.input_ids[0] for t in tokenized])  # (G, n)
    special = torch.tensor([list(t.special) for t in tokenized], dtype=torch.bool)  # (G, n)
    return duplicate_pattern(ids, special)[:, None]  # (G, 1, n, n)


def _top(values: Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`core.engine.stats.top_k_positions` of ``values`` ``(G, H, n)``, padded to ``k``
    columns with -1 / NaN: ``(G, H, k)`` positions and shares."""
    shape = (*values.shape[:-1], k)
    positions, shares = np.full(shape, -1, np.int32), np.full(shape, np.nan, np.float32)
    if values.shape[-1] > 0:
        found, where = stats.top_k_positions(values, k)  # (G, H, min(k, n))
        shares[..., : found.shape[-1]] = found.numpy()
        positions[..., : found.shape[-1]] = where.numpy()
    return positions, shares


def _instances(block: Tensor, causal: bool, top_n: int) -> tuple[Tensor, ...]:
    """Candidates for the strongest instances of each head in ``block`` ``(G, H, n, n)``: each
    text's ``top_n`` largest weights per head, then, per head, those at least its ``top_n``-th
    largest over the group (ties kept), over the queries with a choice and weights above 0.
    Returns ``(head, g, query, key, weight)``, each ``(m,)``."""
    n_texts, n_heads, n, _ = block.shape
    if causal:  # query 0 of a decoder sees only itself: its [1] is no choice
        choice = stats.choice_queries(n, causal=causal)  # (n,)
        block = block.masked_fill(~choice[None, None, :, None], -1.0)  # (G, H, n, n)
    flat = block.reshape(n_texts, n_heads, n * n)  # (G, H, n*n)
    weight, where = flat.topk(min(top_n, n * n), dim=-1)  # (G, H, k)
    per_head = weight.transpose(0, 1).reshape(n_heads, -1)  # (H, G * k)
    threshold = per_head.topk(min(top_n, per_head.shape[1]), dim=1).values[:, -1]  # (H,)
    keep = (weight >= threshold[None, :, None]) & (weight > 0)  # (G, H, k)
    g, head, rank = torch.nonzero(keep, as_tuple=True)
    cell = where[g, head, rank]
    return head, g, cell // n, cell % n, weight[g, head, rank]


def batch_statistics(
    loaded: LoadedModel, tokenized: Sequence[Tokenized], options: BatchOptions
) -> BatchStatistics:
    """Every statistic of each text in ``tokenized``, from one padded forward pass.

    Equal, to float rounding, to one-at-a-time :func:`core.engine.run.analyze` and
    :meth:`core.methods.head_stats.HeadStats.from_analysis` of each text (tested for encoders
    and decoders, right and left padding).
    """
    n_texts, n_layers, n_heads = len(tokenized), loaded.n_layers, loaded.n_heads
    causal, k = loaded.causal, options.top_k
    lengths = [t.input_ids.shape[-1] for t in tokenized]
    width = max(lengths)
    groups: dict[int, list[int]] = {}
    for b, n in enumerate(lengths):
        groups.setdefault(n, []).append(b)
    masks = {n: _stacked_masks([tokenized[b] for b in items]) for n, items in groups.items()}
    shape = (n_texts, n_layers, n_heads)
    metrics = {
        f"{name}{suffix}": np.zeros(shape, np.float32)
        for suffix in ("", "_choice")
        for name in METRICS
    }
    metrics[DUPLICATE] = np.full(shape, np.nan, np.float32)  # NaN: no token repeats
    duplicates = {
        n: _duplicate_patterns([tokenized[b] for b in items]) for n, items in groups.items()
    }
    patterns = np.zeros(shape, dtype=np.int8)  # indices into PATTERNS
    choices = np.zeros(shape, dtype=np.int8)
    layer = {
        name: np.zeros((n_texts, n_layers), np.float32)
        for name in ("layer_entropy", "layer_entropy_choice")
    }
    top = {
        "positions": np.full((*shape, k), -1, np.int32),
        "shares": np.full((*shape, k), np.nan, np.float32),
        "visible_positions": np.full((*shape, k), -1, np.int32),
        "visible_shares": np.full((*shape, k), np.nan, np.float32),
    }
    found: list[tuple[int, Tensor, Tensor, Tensor, Tensor, Tensor]] = []

    def on_layer(index: int, weights: Tensor) -> None:
        attn = weights.float()  # (B, H, T, T)
        for n, items in groups.items():
            rows = torch.tensor(items)
            span = slice(0, n) if options.padding_side == "right" else slice(width - n, width)
            whole = len(items) == n_texts and n == width
            block = attn if whole else attn[rows][:, :, span, span]  # (G, H, n, n): own weights
            block = block.cpu()
            summary = layer_statistics(block, causal=causal)
            for name in layer:
                layer[name][items, index] = summary[name].numpy()  # (G,)
            # An encoder's queries all have a choice: both scopes are the same numbers.
            scopes = {"all": ("",), "choice": ("_choice",)} if causal else {"all": ("", "_choice")}
            for scope, suffixes in scopes.items():
                values = metric_values(block, masks[n], causal, scope)  # each (G, H)
                labels = pattern_index(values).numpy()  # (G, H), indices into PATTERNS
                for suffix in suffixes:
                    for name, value in values.items():
                        metrics[f"{name}{suffix}"][items, index] = value.numpy()
                    (choices if suffix else patterns)[items, index] = labels
            duplicate = duplicates[n]  # (G, 1, n, n)
            metrics[DUPLICATE][items, index] = pattern_score(block, duplicate).numpy()  # (G, H)
            received = summary["received_by_head"]  # (G, H, n)
            top["positions"][items, index], top["shares"][items, index] = _top(received, k)
            visible = stats.visibility_normalized(received, causal=causal)[..., 1:]  # (G, H, n-1)
            where, shares = _top(visible, k)
            top["visible_positions"][items, index] = np.where(where >= 0, where + 1, -1)
            top["visible_shares"][items, index] = shares
            head, g, query, key, weight = _instances(block, causal, options.top_n)
            found.append((index, head, rows[g], query, key, weight))

    inputs = padded_inputs(tokenized, options.padding_side, pad_token_id(loaded))
    map_batch_layers(loaded, inputs, on_layer)
    instances = {
        "layer": np.concatenate([np.full(len(f[1]), f[0], np.int32) for f in found]),
        **{
            name: np.concatenate([f[i].numpy() for f in found]).astype(kind)
            for i, name, kind in (
                (1, "head", np.int32),
                (2, "item", np.int32),
                (3, "query", np.int32),
                (4, "key", np.int32),
                (5, "weight", np.float32),
            )
        },
    }
    return BatchStatistics(metrics, patterns, choices, layer, top, instances)
