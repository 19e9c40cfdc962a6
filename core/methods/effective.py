"""Effective attention: what the views show instead of the raw weights, as a derived analysis.

:func:`effective_analysis` replaces an analysis' attention by attention rollout
(:mod:`core.methods.rollout`, Abnar & Zuidema 2020) or by norm-based attention
(:mod:`core.methods.norms`, Kobayashi et al. 2020 and 2021). The functions of both modules are
re-exported here under the names earlier versions had.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from core.engine import budget
from core.engine.analysis import Analysis
from core.methods.norms import (
    AttentionCapture,
    NormAttention,
    ResidualNormAttention,
    capture_attention,
    layer_norm_attention,
    norm_based_attention,
    residual_norm_attention,
    transformed_values,
)
from core.methods.rollout import (
    COLLAPSE_THRESHOLD,
    RolloutCollapse,
    rollout,
    rollout_collapse,
    rollout_layer_by_layer,
)
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "COLLAPSE_THRESHOLD",
    "EFFECTIVE_MODES",
    "AttentionCapture",
    "EffectiveMode",
    "NormAttention",
    "ResidualNormAttention",
    "RolloutCollapse",
    "capture_attention",
    "effective_analysis",
    "layer_norm_attention",
    "norm_based_attention",
    "residual_norm_attention",
    "rollout",
    "rollout_collapse",
    "rollout_layer_by_layer",
    "transformed_values",
]

EffectiveMode = Literal["raw", "rollout", "norm", "norm_residual"]
EFFECTIVE_MODES: tuple[EffectiveMode, ...] = ("raw", "rollout", "norm", "norm_residual")


def effective_analysis(
    loaded: LoadedModel,
    result: Analysis,
    mode: EffectiveMode,
    *,
    exclude_sink: bool = False,
    start_layer: int = 0,
) -> Analysis:
    """``result`` with its attention replaced, so every view shows the chosen kind:

    - ``"raw"``: the weights themselves (``result`` unchanged);
    - ``"rollout"``: :func:`rollout` per layer, as one "head" per layer (rows sum to 1), from
      ``start_layer`` (layers below it are the identity) and, with ``exclude_sink``, with token
      0's weight left out of every layer and the rest renormalised
      (:func:`core.methods.rollout.without_sink`); :func:`rollout_collapse` says when it has
      collapsed onto the sink;
    - ``"norm"``: :func:`norm_based_attention` per head (Kobayashi et al. 2020), each row divided
      by its sum: the share of the row's transported vector lengths ``||a_ij f(x_j)|| / sum_j
      ||a_ij f(x_j)||``, a share of lengths, not a probability;
    - ``"norm_residual"``: :func:`residual_norm_attention` per layer (Kobayashi et al. 2021: with
      the residual and, post-LN, the LayerNorm), one "head" per layer, each row divided by its
      sum; again a share of lengths.
    """
    if mode == "raw":
        return result
    if mode == "rollout":
        if not 0 <= start_layer < result.n_layers:
            raise ValueError(f"start_layer must be 0..{result.n_layers - 1}, got {start_layer}")
        rolled = rollout_layer_by_layer(
            loaded, result.model_inputs(), start=start_layer, exclude_sink=exclude_sink
        )  # (L, T, T)
        options = (("exclude_sink", exclude_sink), ("start_layer", start_layer))
        return result.derive(rolled.unsqueeze(1), via="rollout", derived_with=options)
    # Norm-based attention holds every layer's (H, T, T) weights at once, like the raw weights do.
    if not budget.fits(result.n_layers, result.n_heads, result.seq_len):
        limit = budget.max_seq_len(result.n_layers, result.n_heads)
        raise InputError("error.norm_too_long", tokens=result.seq_len, limit=limit)
    if mode == "norm_residual":
        norms = residual_norm_attention(loaded, result).norms  # (L, T, T)
        shares = norms / norms.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        return result.derive(shares.unsqueeze(1), via="norm_residual")  # (L, 1, T, T)
    norm = norm_based_attention(loaded, result)
    shares = norm.norms / norm.norms.sum(dim=-1, keepdim=True).clamp_min(1e-12)  # (L, H, T, T)
    return result.derive(shares, via="norm")
