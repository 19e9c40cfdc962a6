"""Attention × gradient per head and gradient-weighted rollout (Chefer, Gur & Wolf 2021, "Generic
Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers"), from
one forward and one backward pass of an analysis' own inputs towards an attribution target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.engine import budget
from core.methods.attribution_target import Target, input_embeddings, target_function
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = [
    "AttentionGradients",
    "attention_gradients",
    "check_size",
    "gradient_rollout",
    "relevance_row",
]


def check_size(
    n_layers: int, n_heads: int, seq_len: int, budget_bytes: int = budget.DEFAULT_BUDGET_BYTES
) -> None:
    """Refuse (an :class:`InputError` naming the longest input allowed) when every layer's
    attention and its gradient, two ``L x H x T x T`` float32 maps, do not fit in the budget:
    :func:`core.engine.budget.fits` with twice the heads.

    >>> check_size(30, 9, 498)  # SmolLM2 up to 498 tokens
    >>> check_size(30, 9, 499)
    Traceback (most recent call last):
    ...
    core.policy.errors.InputError: Attention × gradient holds ...
    """
    if not budget.fits(n_layers, 2 * n_heads, seq_len, budget_bytes):
        limit = budget.max_seq_len(n_layers, 2 * n_heads, budget_bytes)
        raise InputError("error.attribution_too_long", tokens=seq_len, limit=limit)


def gradient_rollout(attentions: Tensor, gradients: Tensor) -> Tensor:
    """Chefer et al. 2021, eqs. 5-6: each layer's head average of the positive part of gradient ×
    attention, ``Ā_l = E_h[(∇A_l ⊙ A_l)^+]``, accumulated from the first layer up as ``R_0 = I +
    Ā_0``, ``R_l = R_{l-1} + Ā_l R_{l-1}``. ``R[l, i, j]`` is the relevance of input token j to
    position i after layer l (rows do not sum to 1). Shapes: ``attentions``, ``gradients``
    ``(n_layers, n_heads, T, T) -> (n_layers, T, T)``.

    One layer, one head: ``Ā = [[0, 0], [1, 0]]`` (the gradient's negative part is dropped), so
    ``R = I + Ā``; a second equal layer adds ``Ā R = [[0, 0], [1, 0]]``:

    >>> a = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
    >>> g = torch.tensor([[[[-1.0, 3.0], [2.0, -4.0]]]])
    >>> gradient_rollout(torch.cat([a, a]), torch.cat([g, g]))
    tensor([[[1., 0.],
             [1., 1.]],
    <BLANKLINE>
            [[1., 0.],
             [2., 1.]]])
    """
    cam = (gradients * attentions).clamp_min(0.0).mean(dim=1)  # (L, T, T)
    seq_len = attentions.shape[-1]
    relevance = torch.eye(seq_len, dtype=cam.dtype, device=cam.device)  # (T, T)
    rolled = []
    for layer_cam in cam:  # (T, T)
        relevance = relevance + layer_cam @ relevance
        rolled.append(relevance)
    return torch.stack(rolled)  # (L, T, T)


def relevance_row(matrix: Tensor, query_positions: tuple[int, ...]) -> Tensor:
    """What a target reads from a ``(T, T)`` query × key map: the row of its position, or the
    mean of the rows of every position its pools read (encoders), ``(T,)``.

    >>> relevance_row(torch.tensor([[1.0, 0.0], [0.0, 3.0]]), (0, 1))
    tensor([0.5000, 1.5000])
    """
    return matrix[list(query_positions)].mean(dim=0)


@dataclass(frozen=True, eq=False)
class AttentionGradients:
    """One pass's attention and the target's gradient with respect to it, float32 on the CPU."""

    attentions: Tensor  # (n_layers, n_heads, T, T)
    gradients: Tensor  # (n_layers, n_heads, T, T): d target / d A[l, h, i, j]
    value: float  # the target's value on the input

    @property
    def product(self) -> Tensor:
        """Attention × gradient, ``A ⊙ ∇A``, signed, ``(n_layers, n_heads, T, T)``."""
        return self.attentions * self.gradients

    @property
    def rollout(self) -> Tensor:
        """:func:`gradient_rollout` of this pass, ``(n_layers, T, T)``."""
        return gradient_rollout(self.attentions, self.gradients)


def attention_gradients(
    loaded: LoadedModel,
    analysis: Analysis,
    target: Target,
    *,
    budget_bytes: int = budget.DEFAULT_BUDGET_BYTES,
) -> AttentionGradients:
    """Every layer's attention weights and ``∂ target / ∂ A`` from one forward and one backward
    pass of ``analysis``' own inputs (gradients enabled even under an outer inference mode);
    refused by :func:`check_size` past ``budget_bytes``."""
    check_size(analysis.n_layers, analysis.n_heads, analysis.seq_len, budget_bytes)
    embeds = input_embeddings(loaded, analysis)  # (1, T, d)
    f = target_function(loaded, analysis, target, output_attentions=True)
    with torch.inference_mode(False), torch.enable_grad():
        embeds = embeds.clone().requires_grad_(True)
        values, attentions = f(embeds)
        gradients = torch.autograd.grad(values.sum(), list(attentions))
    return AttentionGradients(
        attentions=torch.stack([a[0] for a in attentions]).detach().float().cpu(),  # (L, H, T, T)
        gradients=torch.stack([g[0] for g in gradients]).float().cpu(),  # (L, H, T, T)
        value=float(values[0].detach()),
    )
