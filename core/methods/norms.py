"""Norm-based attention: how large the vectors are that attention moves, not only its weights.

:func:`norm_based_attention` is Kobayashi et al. 2020 ("Attention is Not Only a Weight: Analyzing
Transformers with Vector Norms"): ``||a_ij f_h(x_j)||`` per head and ``||sum_h a_ij f_h(x_j)||``
per layer. :func:`residual_norm_attention` is Kobayashi et al. 2021 ("Incorporating Residual and
Normalization Layers into Analysis of Masked Language Models"), which adds the residual connection
and, in post-LN models (BERT), the LayerNorm after it. Both read one forward pass with hooks on
the value and output projections, the residual stream and the norm, always removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.engine.hooks import HookSet, architecture_for, output_matrix, projections
from core.engine.run import forward_all_layers

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = [
    "AttentionCapture",
    "NormAttention",
    "ResidualNormAttention",
    "attention_residual_norms",
    "capture_attention",
    "layer_norm_attention",
    "norm_based_attention",
    "residual_norm_attention",
    "transformed_values",
]


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
    residuals: tuple[Tensor, ...] = ()  # n_layers x (T, hidden): x entering the attention block
    norm_inputs: tuple[Tensor | None, ...] = ()  # post-LN: n_layers x (T, hidden), LN's input


def capture_attention(loaded: LoadedModel, inputs: dict[str, Tensor]) -> AttentionCapture:
    """One forward pass of ``loaded.model.base_model`` over ``inputs`` (an analysis'
    :meth:`~core.engine.analysis.Analysis.model_inputs`) recording attention weights, the value
    projection's output, the output projection's input, the residual stream entering each
    attention block and (post-LN models) the input of the LayerNorm after it, in every layer. The
    hooks are removed when the pass ends, also when it raises."""
    architecture = architecture_for(loaded.model)
    modules = projections(loaded)
    values: dict[int, Tensor] = {}
    head_outputs: dict[int, Tensor] = {}
    residuals: dict[int, Tensor] = {}
    norm_inputs: dict[int, Tensor] = {}

    def keep_values(layer: int):
        def hook(module, args, output):
            values[layer] = architecture.value_part(output)[0].detach().float().cpu()  # (T, KVd)

        return hook

    def keep_input(store: dict[int, Tensor], layer: int):
        def hook(module, args):
            store[layer] = args[0][0].detach().float().cpu()  # (T, width)

        return hook

    with HookSet() as hooks:
        for found in modules:
            hooks.forward(found.value, keep_values(found.layer))
            hooks.forward_pre(found.output, keep_input(head_outputs, found.layer))  # (T, H d)
            if found.residual_in is not None:
                hooks.forward_pre(found.residual_in, keep_input(residuals, found.layer))
            if found.post_norm is not None:
                hooks.forward_pre(found.post_norm, keep_input(norm_inputs, found.layer))
        attentions = forward_all_layers(loaded, inputs)  # (L, H, T, T)
    return AttentionCapture(
        attentions=attentions,
        values=tuple(values[m.layer] for m in modules),
        head_outputs=tuple(head_outputs[m.layer] for m in modules),
        w_o=tuple(output_matrix(architecture, m.output).detach().float().cpu() for m in modules),
        residuals=tuple(residuals[m.layer] for m in modules if m.layer in residuals),
        norm_inputs=tuple(norm_inputs.get(m.layer) for m in modules),
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


def attention_residual_norms(
    attn: Tensor,
    transformed: Tensor,
    residual: Tensor,
    *,
    ln_weight: Tensor | None = None,
    ln_scale: Tensor | None = None,
) -> Tensor:
    """Kobayashi et al. 2021's norm of what token j adds to position i through attention and the
    residual connection: ``N[i, j] = ||g_i(sum_h a[h, i, j] f_h(x_j) + [i = j] x_i)||``.

    ``f_h`` as in :func:`transformed_values`; ``residual`` ``(T, hidden)`` is ``x``, the stream
    entering the block. Without ``ln_weight`` (pre-LN models) ``g_i`` is the identity. With it
    (post-LN, BERT: ``y_i = LN(x_i + sum_j sum_h a f_h(x_j) + b_O)``) it is the LayerNorm split
    over the sum's terms, ``g_i(z) = γ ⊙ (z - mean(z)) / s_i`` with ``s_i = ln_scale[i]`` the
    standard deviation ``sqrt(Var(u_i) + eps)`` of the norm's whole input ``u_i``: LayerNorm is
    linear once ``s_i`` is fixed, so ``y_i = sum_j g_i(F_ij) + g_i(b_O) + β`` exactly, and the
    bias terms, which no token contributes, are left out. Shapes: ``attn (H, T, T)``,
    ``transformed (H, T, hidden)``, ``residual (T, hidden)``, ``ln_weight (hidden,)``,
    ``ln_scale (T,)`` -> ``(T, T)``. Off the diagonal it is :func:`layer_norm_attention` of the
    normed vectors; the diagonal adds the residual.

    One head, two tokens, hidden size 2; query 1 looks only at token 0:

    >>> a = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    >>> f = torch.tensor([[[3.0, 0.0], [0.0, 1.0]]])
    >>> x = torch.tensor([[0.0, 4.0], [1.0, 1.0]])
    >>> attention_residual_norms(a, f, x)  # [[||(3, 4)||, 0], [||(3, 0)||, ||(1, 1)||]]
    tensor([[5.0000, 0.0000],
            [3.0000, 1.4142]])

    With a LayerNorm of weight 1 and scale 1 each vector is centred first: ``(3, 4)`` becomes
    ``(-0.5, 0.5)``, ``(3, 0)`` becomes ``(1.5, -1.5)`` and ``(1, 1)`` becomes 0.

    >>> attention_residual_norms(a, f, x, ln_weight=torch.ones(2), ln_scale=torch.ones(2))
    tensor([[0.7071, 0.0000],
            [2.1213, 0.0000]])
    """
    if ln_weight is not None:
        transformed = (transformed - transformed.mean(dim=-1, keepdim=True)) * ln_weight
        residual = (residual - residual.mean(dim=-1, keepdim=True)) * ln_weight
    norms = layer_norm_attention(attn, transformed)  # (T, T): the attention part, i != j
    diagonal = attn.diagonal(dim1=-2, dim2=-1)  # (H, T): a[h, i, i]
    own = torch.einsum("hi,hie->ie", diagonal, transformed) + residual  # (T, hidden)
    norms = norms.clone()
    norms.diagonal().copy_(own.norm(dim=-1))
    if ln_scale is not None:
        norms = norms / ln_scale[:, None]
    return norms


@dataclass(frozen=True, eq=False)
class ResidualNormAttention:
    """Norm-based attention with the residual connection (and, post-LN, the LayerNorm), per layer:
    ``norms[l, i, j]`` from :func:`attention_residual_norms`, float32 on the CPU. Lengths, not
    probabilities: a row's share ``norms[l, i, j] / sum_j norms[l, i, j]`` says how much of what
    the block writes at position i comes from token j, the diagonal including the residual (the
    token keeping itself). ``layer_norm`` says whether the LayerNorm was split in (BERT-like
    post-LN models) or there was none after the residual (pre-LN: Llama, GPT-2)."""

    tokens: tuple[str, ...]
    norms: Tensor  # (n_layers, T, T)
    layer_norm: bool

    @property
    def residual_share(self) -> Tensor:
        """The diagonal's share of each row, ``(n_layers, T)``: how much position i keeps of
        itself (Kobayashi et al. 2021's "preserving" ratio, with the attention to itself)."""
        rows = self.norms.sum(dim=-1).clamp_min(1e-12)  # (L, T)
        return self.norms.diagonal(dim1=-2, dim2=-1) / rows


def residual_norm_attention(loaded: LoadedModel, analysis: Analysis) -> ResidualNormAttention:
    """Kobayashi et al. 2021 over ``analysis``' own inputs (one forward pass, no tokenizing).

    Post-LN models (BERT, RoBERTa): ``||g_i(sum_h a_ij f_h(x_j) + [i = j] x_i)||`` with the
    attention block's LayerNorm split as in :func:`attention_residual_norms`, the paper's
    definition. Pre-LN models (Llama, Mistral, Qwen2 with RMSNorm; GPT-2 with LayerNorm) put the
    norm before the attention, inside ``f`` (the values are computed from the normed input), and
    add the attention output to the raw stream, ``x_i + sum_j sum_h a f_h(norm(x_j)) + b_O``; no
    norm follows inside the block, so the exact split is ``||sum_h a_ij f_h(norm(x_j)) + [i = j]
    x_i||``: the paper's attention-plus-residual measure, with no LayerNorm step to add. The
    output bias ``b_O`` (and LayerNorm's ``β``) belong to no token and are left out.
    """
    capture = capture_attention(loaded, analysis.model_inputs())
    modules = projections(loaded)
    norms = []
    for layer, attn in enumerate(capture.attentions):  # attn: (H, T, T)
        f = transformed_values(
            capture.values[layer],
            capture.w_o[layer],
            n_heads=loaded.n_heads,
            n_kv_heads=loaded.n_kv_heads,
        )  # (H, T, hidden)
        norm_module, norm_input = modules[layer].post_norm, capture.norm_inputs[layer]
        weight = scale = None
        if norm_module is not None and norm_input is not None:
            weight = norm_module.weight.detach().float().cpu()  # (hidden,)
            variance = norm_input.var(dim=-1, unbiased=False)  # (T,)
            scale = (variance + norm_module.eps).sqrt()
        residual = capture.residuals[layer]  # (T, hidden)
        norms.append(attention_residual_norms(attn, f, residual, ln_weight=weight, ln_scale=scale))
    return ResidualNormAttention(
        tokens=analysis.tokens,
        norms=torch.stack(norms),
        layer_norm=any(m.post_norm is not None for m in modules),
    )
