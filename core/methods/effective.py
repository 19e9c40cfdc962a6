"""Effective attention: attention rollout across layers, and norm-based attention per head.

Raw weights say where a head looks, not how much it moves: :func:`rollout` follows attention
through the residual stream across layers (Abnar & Zuidema 2020), and :func:`norm_based_attention`
weighs each weight by the size of the vector it moves (Kobayashi et al. 2020), read with forward
hooks on the value and output projections that are always removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from core.engine import budget
from core.engine.analysis import Analysis
from core.engine.hooks import HookSet, architecture_for, output_matrix, projections
from core.engine.run import forward_all_layers
from core.engine.streaming import map_layers
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "EFFECTIVE_MODES",
    "AttentionCapture",
    "EffectiveMode",
    "NormAttention",
    "capture_attention",
    "layer_norm_attention",
    "norm_based_attention",
    "effective_analysis",
    "rollout",
    "rollout_layer_by_layer",
    "transformed_values",
]

EffectiveMode = Literal["raw", "rollout", "norm"]
EFFECTIVE_MODES: tuple[EffectiveMode, ...] = ("raw", "rollout", "norm")


def rollout(attentions: Tensor, *, residual: float = 0.5) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

    Each layer's head average is mixed with the identity for the residual connection,
    ``Ã_l = (1 - residual) * mean_h a_l + residual * I`` (``residual = 0.5`` in the paper), rows
    renormalised to sum to 1, and multiplied across layers: ``R_l = Ã_l Ã_{l-1} ... Ã_0``.
    ``R[l, i, j]`` is how much of position i after layer l traces back to input token j; rows sum
    to 1. Shapes: ``(n_layers, n_heads, T, T) -> (n_layers, T, T)``; the input is not modified.

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
    """
    return _rolled_out(list(_with_residual(attentions.mean(dim=1), residual)))  # (L, T, T)


def _with_residual(head_mean: Tensor, residual: float) -> Tensor:
    """``Ã = (1 - residual) * head_mean + residual * I``, rows renormalised: ``(..., T, T)``."""
    if not 0.0 <= residual <= 1.0:
        raise ValueError(f"residual must lie in [0, 1], got {residual}")
    seq_len = head_mean.shape[-1]
    eye = torch.eye(seq_len, dtype=head_mean.dtype, device=head_mean.device)  # (T, T)
    mixed = (1.0 - residual) * head_mean + residual * eye
    return mixed / mixed.sum(dim=-1, keepdim=True)


def _rolled_out(mixed: list[Tensor]) -> Tensor:
    """``R_l = Ã_l Ã_{l-1} ... Ã_0`` for every layer, in place over ``mixed``: ``(L, T, T)``."""
    for layer in range(1, len(mixed)):
        mixed[layer] = mixed[layer] @ mixed[layer - 1]  # (T, T)
    return torch.stack(mixed)


def transformed_values(
    values: Tensor, w_o: Tensor, *, n_heads: int, n_kv_heads: int | None = None
) -> Tensor:
    """Every head's transformed value vectors ``f_h(x_j) = (x_j W_V + b_V)_h W_O^h`` (Kobayashi et
    al. 2020), the vector head h adds to a query's output per unit of attention on key j.

    ``values`` ``(T, n_kv_heads * head_dim)`` is the value projection's output (bias included),
    ``w_o`` ``(n_heads * head_dim, hidden)`` the output projection as ``y = x @ W_O`` (its bias left
    out: it does not depend on j). With grouped-query attention (``n_kv_heads < n_heads``) query
    head h reads KV head ``h // (n_heads // n_kv_heads)``, the order of ``repeat_kv`` in
    transformers' Llama. Returns ``(n_heads, T, hidden)``.

    One KV head serving two query heads, head_dim 1: both heads scale the same values.

    >>> transformed_values(torch.tensor([[1.0], [2.0]]), torch.tensor([[10.0], [100.0]]),
    ...                    n_heads=2, n_kv_heads=1).squeeze(-1)
    tensor([[ 10.,  20.],
            [100., 200.]])
    """
    n_kv = n_kv_heads or n_heads
    seq_len = values.shape[0]
    head_dim = w_o.shape[0] // n_heads
    v = values.reshape(seq_len, n_kv, head_dim).transpose(0, 1)  # (KV, T, d)
    v = v.repeat_interleave(n_heads // n_kv, dim=0)  # (H, T, d)
    w = w_o.reshape(n_heads, head_dim, w_o.shape[1])  # (H, d, hidden)
    return torch.bmm(v, w)  # (H, T, hidden)


def layer_norm_attention(attn: Tensor, transformed: Tensor) -> Tensor:
    """Norm-based attention of a whole layer, ``||sum_h a[h, i, j] f_h(x_j)||`` (Kobayashi et al.
    2020): the size of what key j adds to query i through all heads together.

    Computed from the Gram matrix ``G_j[h, g] = <f_h(x_j), f_g(x_j)>`` as ``sqrt(a_ijᵀ G_j a_ij)``,
    so the ``(T, T, hidden)`` vectors are never built. Shapes: ``attn (H, T, T)``, ``transformed
    (H, T, hidden) -> (T, T)``.

    >>> f = torch.tensor([[[3.0, 0.0]], [[0.0, 4.0]]])  # two heads, one token
    >>> layer_norm_attention(torch.ones(2, 1, 1), f)  # ||(3, 4)||
    tensor([[5.]])
    """
    gram = torch.einsum("hte,gte->thg", transformed, transformed)  # (T, H, H)
    squared = torch.einsum("hij,jhg,gij->ij", attn, gram, attn)  # (T, T)
    return squared.clamp_min(0.0).sqrt()


@dataclass(frozen=True)
class AttentionCapture:
    """What one forward pass shows of each layer's attention, float32 on the CPU."""

    attentions: Tensor  # (n_layers, n_heads, T, T)
    values: tuple[Tensor, ...]  # n_layers x (T, n_kv_heads * head_dim): x W_V + b_V
    head_outputs: tuple[Tensor, ...]  # n_layers x (T, n_heads * head_dim): the input of W_O
    w_o: tuple[Tensor, ...]  # n_layers x (n_heads * head_dim, hidden)


def capture_attention(loaded: LoadedModel, inputs: dict[str, Tensor]) -> AttentionCapture:
    """One forward pass of ``loaded.model.base_model`` over ``inputs`` (an analysis'
    :meth:`~core.engine.analysis.Analysis.model_inputs`) recording attention weights, the value
    projection's output and the output projection's input in every layer. The hooks are removed
    when the pass ends, also when it raises."""
    architecture = architecture_for(loaded.model)
    modules = projections(loaded)
    values: dict[int, Tensor] = {}
    head_outputs: dict[int, Tensor] = {}

    def keep_values(layer: int):
        def hook(module, args, output):
            values[layer] = architecture.value_part(output)[0].detach().float().cpu()  # (T, KVd)

        return hook

    def keep_head_outputs(layer: int):
        def hook(module, args):
            head_outputs[layer] = args[0][0].detach().float().cpu()  # (T, H d)

        return hook

    with HookSet() as hooks:
        for found in modules:
            hooks.forward(found.value, keep_values(found.layer))
            hooks.forward_pre(found.output, keep_head_outputs(found.layer))
        attentions = forward_all_layers(loaded, inputs)  # (L, H, T, T)
    return AttentionCapture(
        attentions=attentions,
        values=tuple(values[m.layer] for m in modules),
        head_outputs=tuple(head_outputs[m.layer] for m in modules),
        w_o=tuple(output_matrix(architecture, m.output).detach().float().cpu() for m in modules),
    )


@dataclass(frozen=True, eq=False)
class NormAttention:
    """Norm-based attention (Kobayashi et al. 2020, "Attention is Not Only a Weight: Analyzing
    Transformers with Vector Norms") for one text, float32 on the CPU.

    ``norms[l, h, i, j] = ||a[l, h, i, j] f_h(x_j)|| = a[l, h, i, j] * ||f_h(x_j)||`` with
    ``f_h(x) = (x W_V + b_V)_h W_O^h``; ``layer_norms[l, i, j] = ||sum_h a[l, h, i, j] f_h(x_j)||``.
    Rows do not sum to 1: the values are lengths in the hidden space.
    """

    tokens: tuple[str, ...]
    attentions: Tensor  # (n_layers, n_heads, T, T): the raw weights of the same pass
    value_norms: Tensor  # (n_layers, n_heads, T): ||f_h(x_j)||
    norms: Tensor  # (n_layers, n_heads, T, T)
    layer_norms: Tensor  # (n_layers, T, T)


def norm_based_attention(loaded: LoadedModel, analysis: Analysis) -> NormAttention:
    """Norm-based attention of ``analysis``' own inputs under ``loaded`` (no tokenizing), from one
    forward pass with hooks on the value and output projections (see :mod:`core.engine.hooks`
    for the supported families; others raise :class:`~core.policy.errors.UnsupportedModelError`)."""
    capture = capture_attention(loaded, analysis.model_inputs())
    value_norms, norms, layer_norms = [], [], []
    for layer, attn in enumerate(capture.attentions):  # attn: (H, T, T)
        f = transformed_values(
            capture.values[layer],
            capture.w_o[layer],
            n_heads=loaded.n_heads,
            n_kv_heads=loaded.n_kv_heads,
        )  # (H, T, hidden)
        f_norm = f.norm(dim=-1)  # (H, T)
        value_norms.append(f_norm)
        norms.append(attn * f_norm[:, None, :])  # (H, T, T)
        layer_norms.append(layer_norm_attention(attn, f))  # (T, T)
    return NormAttention(
        tokens=analysis.tokens,
        attentions=capture.attentions,
        value_norms=torch.stack(value_norms),
        norms=torch.stack(norms),
        layer_norms=torch.stack(layer_norms),
    )


def rollout_layer_by_layer(
    loaded: LoadedModel, inputs: dict[str, Tensor], *, residual: float = 0.5
) -> Tensor:
    """:func:`rollout` from each layer's mixed head average ``(T, T)``, taken as the forward pass
    runs, so the raw weights of all layers are never held: ``inputs`` (each ``(1, T)``) ->
    ``(n_layers, T, T)``, equal to ``rollout(attentions)``."""

    def mixed(layer: int, weights: Tensor) -> Tensor:
        return _with_residual(weights.float().mean(dim=0), residual)  # (T, T)

    return _rolled_out(map_layers(loaded, inputs, mixed)).cpu()  # (L, T, T)


def effective_analysis(loaded: LoadedModel, result: Analysis, mode: EffectiveMode) -> Analysis:
    """``result`` with its attention replaced, so every view shows the chosen kind:

    - ``"raw"``: the weights themselves (``result`` unchanged);
    - ``"rollout"``: :func:`rollout` per layer, as one "head" per layer (rows sum to 1);
    - ``"norm"``: :func:`norm_based_attention` per head, each row divided by its sum, i.e. the
      share of the row's transported vector lengths ``||a_ij f(x_j)|| / sum_j ||a_ij f(x_j)||``.
    """
    if mode == "raw":
        return result
    if mode == "rollout":
        rolled = rollout_layer_by_layer(loaded, result.model_inputs())  # (L, T, T)
        return result.derive(rolled.unsqueeze(1), via="rollout")  # (L, 1, T, T)
    # Norm-based attention holds every layer's (H, T, T) norms at once, like the raw weights do.
    if not budget.fits(result.n_layers, result.n_heads, result.seq_len):
        limit = budget.max_seq_len(result.n_layers, result.n_heads)
        raise InputError("error.norm_too_long", tokens=result.seq_len, limit=limit)
    norm = norm_based_attention(loaded, result)
    shares = norm.norms / norm.norms.sum(dim=-1, keepdim=True).clamp_min(1e-12)  # (L, H, T, T)
    return result.derive(shares, via="norm")
