"""Attention rollout (Abnar & Zuidema 2020) and what it needs on deep decoders: a start layer, a
variant that leaves the attention sink out, and a check that says when rollout has collapsed onto
the sink (in SmolLM2 every row puts 0.99 on token 0 from about layer 13 on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.engine.streaming import map_layers

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "COLLAPSE_THRESHOLD",
    "RolloutCollapse",
    "rollout",
    "rollout_collapse",
    "rollout_layer_by_layer",
    "without_sink",
]

# Rollout has collapsed onto the sink when every query i >= 1 traces at least this much to token 0.
COLLAPSE_THRESHOLD = 0.99


def rollout(
    attentions: Tensor, *, residual: float = 0.5, start: int = 0, exclude_sink: bool = False
) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

    Each layer's head average is mixed with the identity for the residual connection,
    ``Ã_l = (1 - residual) * mean_h a_l + residual * I`` (``residual = 0.5`` in the paper), rows
    renormalised to sum to 1, and multiplied across layers: ``R_l = Ã_l Ã_{l-1} ... Ã_start``.
    ``R[l, i, j]`` is how much of position i after layer l traces back to token j at the input of
    layer ``start`` (0, the default: the input tokens); rows sum to 1. Layers below ``start``
    are the identity, so layer indices keep their meaning and ``rollout(a, start=s)[e]`` is the
    rollout over layers s..e. ``exclude_sink`` applies :func:`without_sink` to each head average
    first. Shapes: ``(n_layers, n_heads, T, T) -> (n_layers, T, T)``; the input is not modified.

    Identity attention rolls out to the identity; two layers where every query looks at token 0:
    ``Ã = [[1, 0], [.5, .5]]`` and ``Ã Ã = [[1, 0], [.75, .25]]``.

    >>> rollout(torch.eye(2).expand(3, 4, 2, 2))[-1]
    tensor([[1., 0.],
            [0., 1.]])
    >>> rollout(torch.tensor([[1.0, 0.0], [1.0, 0.0]]).expand(2, 1, 2, 2))
    tensor([[[1.0000, 0.0000],
             [0.5000, 0.5000]],
    <BLANKLINE>
            [[1.0000, 0.0000],
             [0.7500, 0.2500]]])
    >>> rollout(torch.tensor([[1.0, 0.0], [1.0, 0.0]]).expand(2, 1, 2, 2), start=1)[:, 1]
    tensor([[0.0000, 1.0000],
            [0.5000, 0.5000]])
    """
    head_mean = attentions.mean(dim=1)  # (L, T, T)
    if exclude_sink:
        head_mean = without_sink(head_mean)
    return _rolled_out(list(_with_residual(head_mean, residual)), start)  # (L, T, T)


def without_sink(attn: Tensor) -> Tensor:
    """Attention with the sink left out: each row's weight on token 0 removed and the rest
    renormalised, ``a'[i, j] = a[i, j] / sum_{k >= 1} a[i, k]`` for ``j >= 1`` and ``a'[i, 0] =
    0``. A row with nothing beyond token 0 becomes the identity row (the query keeps itself;
    for query 0 of a decoder, which sees only itself, that is its own row). Shapes: ``(..., T,
    T) -> (..., T, T)``; rows still sum to 1; the input is not modified.

    Attention to the sink is read as "doing nothing" (Xiao et al. 2023; Bondarenko et al. 2023,
    "Quantizable Transformers: Removing Outliers by Helping Attention Heads Do Nothing"), so this
    follows what the rest of the attention mixes.

    >>> without_sink(torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.8, 0.1, 0.1]]))
    tensor([[1.0000, 0.0000, 0.0000],
            [0.0000, 1.0000, 0.0000],
            [0.0000, 0.5000, 0.5000]])
    """
    seq_len = attn.shape[-1]
    rest = attn[..., 1:].sum(dim=-1, keepdim=True)  # (..., T, 1)
    renormalised = attn / rest.clamp_min(torch.finfo(attn.dtype).tiny)  # (..., T, T)
    renormalised[..., 0] = 0.0
    eye = torch.eye(seq_len, dtype=attn.dtype, device=attn.device)  # (T, T)
    return torch.where(rest > 0, renormalised, eye)


def _with_residual(head_mean: Tensor, residual: float) -> Tensor:
    """``Ã = (1 - residual) * head_mean + residual * I``, rows renormalised: ``(..., T, T)``."""
    if not 0.0 <= residual <= 1.0:
        raise ValueError(f"residual must lie in [0, 1], got {residual}")
    seq_len = head_mean.shape[-1]
    eye = torch.eye(seq_len, dtype=head_mean.dtype, device=head_mean.device)  # (T, T)
    mixed = (1.0 - residual) * head_mean + residual * eye
    return mixed / mixed.sum(dim=-1, keepdim=True)


def _rolled_out(mixed: list[Tensor], start: int = 0) -> Tensor:
    """``R_l = Ã_l Ã_{l-1} ... Ã_start`` for every layer (the identity below ``start``), in place
    over ``mixed``: ``(L, T, T)``."""
    if not 0 <= start < max(1, len(mixed)):
        raise ValueError(f"start must be a layer 0..{len(mixed) - 1}, got {start}")
    for layer in range(start):
        size, like = mixed[layer].shape[-1], mixed[layer]
        mixed[layer] = torch.eye(size, dtype=like.dtype, device=like.device)
    for layer in range(start + 1, len(mixed)):
        mixed[layer] = mixed[layer] @ mixed[layer - 1]  # (T, T)
    return torch.stack(mixed)


def rollout_layer_by_layer(
    loaded: LoadedModel,
    inputs: dict[str, Tensor],
    *,
    residual: float = 0.5,
    start: int = 0,
    exclude_sink: bool = False,
) -> Tensor:
    """:func:`rollout` from each layer's mixed head average ``(T, T)``, taken as the forward pass
    runs, so the raw weights of all layers are never held: ``inputs`` (each ``(1, T)``) ->
    ``(n_layers, T, T)``, equal to ``rollout(attentions, ...)`` with the same options."""

    def mixed(layer: int, weights: Tensor) -> Tensor:
        head_mean = weights.float().mean(dim=0)  # (T, T)
        if exclude_sink:
            head_mean = without_sink(head_mean)
        return _with_residual(head_mean, residual).cpu()  # (T, T)

    return _rolled_out(map_layers(loaded, inputs, mixed), start)  # (L, T, T)


@dataclass(frozen=True, eq=False)
class RolloutCollapse:
    """Whether rollout has collapsed onto the sink: ``sink_floor[l] = min_{i >= 1} R[l, i, 0]``,
    the least any query traces back to token 0 after layer l, and the first layer where it
    reaches ``threshold`` (None: never). Past that layer every row says "token 0", whatever the
    text: the rollout there shows the sink, not the model's use of the content."""

    sink_floor: Tensor  # (n_layers,)
    threshold: float
    first_layer: int | None

    @property
    def collapsed(self) -> bool:
        return self.first_layer is not None

    @property
    def n_collapsed(self) -> int:
        """How many layers, from ``first_layer`` on, are collapsed."""
        return int((self.sink_floor >= self.threshold).sum())


def rollout_collapse(rolled: Tensor, *, threshold: float = COLLAPSE_THRESHOLD) -> RolloutCollapse:
    """Say when a rollout ``(n_layers, T, T)`` (or ``(n_layers, 1, T, T)``, as a derived analysis
    holds it) has collapsed onto token 0: every query ``i >= 1`` traces at least ``threshold``
    (0.99) back to it. A one-token text never collapses.

    >>> r = rollout(torch.tensor([[1.0, 0.0], [1.0, 0.0]]).expand(8, 1, 2, 2))
    >>> found = rollout_collapse(r)  # R[l, 1, 0] = 1 - 0.5 ** (l + 1)
    >>> found.first_layer, round(float(found.sink_floor[6]), 4)  # 1 - 1/128 >= 0.99
    (6, 0.9922)
    """
    rows = rolled.reshape(rolled.shape[0], rolled.shape[-2], rolled.shape[-1])  # (L, T, T)
    if rows.shape[-1] < 2:
        floor = torch.zeros(rows.shape[0])
    else:
        floor = rows[:, 1:, 0].amin(dim=-1).float().cpu()  # (L,)
    hits = (floor >= threshold).nonzero()
    first = int(hits[0, 0]) if len(hits) else None
    return RolloutCollapse(sink_floor=floor, threshold=threshold, first_layer=first)
