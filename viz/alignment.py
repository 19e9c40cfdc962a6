"""The alignment view: source words in a column on the left, target words on the right, a line
from each target word to each source word it attends to, as thick and as dark as the
cross-attention weight; and the cross-attention as a target x source heatmap."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.methods.alignment import Alignment
from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.heatmaps import heatmap
from viz.labels import MARGIN, plotly_safe, position_labels

__all__ = ["MIN_WEIGHT", "alignment_figure", "alignment_heatmap", "alignment_title"]

# Lines lighter than this are left out: at 40 x 40 words every pair would be 1 600 lines.
MIN_WEIGHT = 0.05
_ROW_PX = 28
_LINE = "rgba(31, 119, 180, {alpha:.3f})"


def alignment_title(alignment: Alignment, lang: Lang = DEFAULT_LANG) -> str:
    if alignment.head is None:
        return t("translation.alignment_title_layer", lang, layer=alignment.layer)
    return t("translation.alignment_title_head", lang, layer=alignment.layer, head=alignment.head)


def alignment_figure(
    alignment: Alignment, *, min_weight: float = MIN_WEIGHT, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """Two columns of words joined by lines: one trace per line (target i, source j, weight w
    in its ``customdata``), width ``1 + 9 w`` and opacity ``0.15 + 0.85 w``; lines under
    ``min_weight`` are not drawn. Words are escaped."""
    weights = alignment.weights.detach().float().cpu().numpy()  # (U, V)
    n_target, n_source = weights.shape
    source = [plotly_safe(s) for s in alignment.source]
    target = [plotly_safe(s) for s in alignment.target]
    fig = go.Figure()
    for i, j in zip(*np.nonzero(weights >= min_weight), strict=True):
        w = float(weights[i, j])
        fig.add_trace(
            go.Scatter(
                x=[0.0, 1.0],
                y=[j, i],
                mode="lines",
                line={"width": 1 + 9 * w, "color": _LINE.format(alpha=0.15 + 0.85 * w)},
                customdata=[[int(i), int(j), w]] * 2,
                hovertemplate=f"{target[i]} → {source[j]}: {w:.4f}<extra></extra>",
                showlegend=False,
                name="line",
            )
        )
    for x, words, side, anchor in (
        (0.0, source, "source", "left"),
        (1.0, target, "target", "right"),
    ):
        fig.add_trace(
            go.Scatter(
                x=[x] * len(words),
                y=list(range(len(words))),
                mode="markers+text",
                text=words,
                textposition=f"middle {anchor}",
                marker={"size": 6, "color": "#444"},
                hoverinfo="text",
                showlegend=False,
                name=side,
            )
        )
    rows = max(n_source, n_target)
    fig.update_layout(
        title=plotly_safe(alignment_title(alignment, lang)),
        height=120 + _ROW_PX * rows,
        margin=MARGIN,
        xaxis={"visible": False, "range": [-0.6, 1.6]},
        yaxis={"visible": False, "autorange": "reversed"},
        annotations=[
            {"x": 0.0, "y": -1, "text": t("translation.source", lang), "showarrow": False},
            {"x": 1.0, "y": -1, "text": t("translation.target", lang), "showarrow": False},
        ],
        meta="attnscope-alignment",
    )
    return fig


def alignment_heatmap(alignment: Alignment, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """The same weights as a target (down) x source (across) heatmap."""
    z = alignment.weights.detach().float().cpu().numpy().astype(np.float32)  # (U, V)
    return heatmap(
        z,
        kind="query_key",
        x=position_labels(alignment.source),
        y=position_labels(alignment.target),
        title=alignment_title(alignment, lang),
        value_name=t("heatmap.weight", lang),
        scale="weight",
        zmin=0.0,
        zmax=float(max(z.max(initial=0.0), 1e-6)),
        lang=lang,
    )
