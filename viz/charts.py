"""Line and bar charts: entropy per layer, a generated token's head-averaged attention, and an
ablation's effect at every position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from core.engine.stats import max_entropy
from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.labels import MARGIN, axis_labels

if TYPE_CHECKING:
    from torch import Tensor

    from core.engine.analysis import Analysis
    from core.methods.ablation import AblationEffect

__all__ = ["layer_entropy_chart", "position_effect_chart", "step_mean_chart"]


def layer_entropy_chart(result: Analysis, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """Per layer: entropy of the head-averaged attention, and the mean of the head entropies,
    with ``ln T`` (the largest possible value) as a reference line."""
    layers = list(range(result.n_layers))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=layers,
            y=result.layer_entropy.tolist(),
            mode="lines+markers",
            name=t("entropy.layer_series", lang),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=layers,
            y=result.mean_head_entropy.tolist(),
            mode="lines+markers",
            name=t("entropy.mean_series", lang),
        )
    )
    fig.add_hline(
        y=max_entropy(result.seq_len),
        line_dash="dot",
        annotation_text=f"ln T = {max_entropy(result.seq_len):.3f}",
    )
    fig.update_layout(
        title={"text": t("entropy.chart_title", lang)},
        xaxis={"title": {"text": t("entropy.axis_layer", lang)}, "dtick": 1},
        yaxis={"title": {"text": t("entropy.name", lang)}, "rangemode": "tozero"},
        height=380,
        margin=MARGIN,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def step_mean_chart(
    attention: Tensor, labels: Sequence[str], layer: int, *, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """The head average of a step's ``(n_layers, n_heads, ctx)`` attention at one layer."""
    values = attention[layer].mean(dim=0).numpy().astype(np.float32)  # (ctx,)
    fig = go.Figure(go.Bar(x=axis_labels(labels), y=values))
    fig.update_layout(
        title={"text": t("generate.mean_title", lang, layer=layer)},
        height=320,
        margin=MARGIN,
        yaxis={"title": {"text": t("heatmap.weight", lang)}, "rangemode": "tozero"},
        xaxis={"tickangle": -60},
    )
    return fig


def position_effect_chart(
    effect: AblationEffect, labels: Sequence[str], *, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """An ablation's effect at every position (``effect.per_position``): KL divergence of the
    next-token distribution after each position (decoders) or the cosine similarity of each
    position's vector (encoders), one bar per token."""
    kl = effect.position_metric == "kl"
    name = t("ablation.position_kl" if kl else "ablation.position_cos", lang)
    values = np.asarray(effect.per_position, dtype=np.float64)  # (T,)
    fig = go.Figure(go.Bar(x=axis_labels(labels), y=values, name=name))
    fig.update_layout(
        title={"text": t("ablation.position_title", lang, metric=name)},
        height=320,
        margin=MARGIN,
        yaxis={"title": {"text": name}, "rangemode": "tozero"},
        xaxis={"tickangle": -60},
    )
    return fig
