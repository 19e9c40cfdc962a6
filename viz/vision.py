"""The image views: the picture as the model saw it, its patch grid, and one query's attention
over the patches as a heatmap laid on it at a chosen opacity; per-head patch statistics."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from torch import Tensor

from core.methods.patches import patch_boxes
from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.heatmaps import heatmap
from viz.labels import MARGIN, head_names, layer_names, plotly_safe

__all__ = ["OVERLAY_META", "overlay_figure", "patch_statistic_heatmap"]

OVERLAY_META = "attnscope-overlay"


def overlay_figure(
    pixels: np.ndarray,
    grid: tuple[int, int],
    values: Tensor,
    *,
    opacity: float,
    title: str,
    query_patch: int | None = None,
    lang: Lang = DEFAULT_LANG,
) -> go.Figure:
    """``pixels`` ``(H, W, 3)`` with the patch grid drawn over it and ``values`` ``(rows, cols)``
    as a heatmap whose cells are exactly the patches' pixel boxes
    (:func:`core.methods.patches.patch_boxes`: the cell edges are the boxes' edges); the
    ``query_patch`` (an index among the patches) is outlined."""
    height, width = pixels.shape[:2]
    rows, cols = grid
    boxes = patch_boxes(grid, (height, width)).tolist()  # (N, 4): x0, y0, x1, y1
    x_edges = [boxes[c][0] for c in range(cols)] + [width]
    y_edges = [boxes[r * cols][1] for r in range(rows)] + [height]
    z = values.detach().float().cpu().numpy().astype(np.float32)  # (rows, cols)
    labels = [[f"patch {r},{c}" for c in range(cols)] for r in range(rows)]
    fig = go.Figure(go.Image(z=pixels, hoverinfo="skip"))
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=x_edges,
            y=y_edges,
            text=labels,
            opacity=opacity,
            colorscale="Inferno",
            zmin=float(z.min()),  # the range shown: near-uniform maps keep their contrast
            zmax=float(max(z.max(), z.min() + 1e-6)),
            colorbar={"title": {"text": t("heatmap.weight", lang)}},
            hovertemplate="%{text}: %{z:.4f}<extra></extra>",
            name="overlay",
        )
    )
    # Clicks land on points, not on heatmap cells: an invisible marker at every patch centre.
    centres = [((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in boxes]
    fig.add_trace(
        go.Scatter(
            x=[c[0] for c in centres],
            y=[c[1] for c in centres],
            mode="markers",
            marker={"size": 18, "opacity": 0.0, "color": "#000"},
            customdata=[[i] for i in range(len(centres))],
            text=[f"patch {i // cols},{i % cols}: {z.flat[i]:.4f}" for i in range(len(centres))],
            hovertemplate="%{text}<extra></extra>",
            showlegend=False,
            name="patches",
        )
    )
    line = {"color": "rgba(255, 255, 255, 0.6)", "width": 1}
    shapes = [
        {"type": "line", "x0": x, "x1": x, "y0": 0, "y1": height, "line": line}
        for x in x_edges[1:-1]
    ] + [
        {"type": "line", "x0": 0, "x1": width, "y0": y, "y1": y, "line": line}
        for y in y_edges[1:-1]
    ]
    if query_patch is not None:
        x0, y0, x1, y1 = boxes[query_patch]
        outline = {"color": "#00e5ff", "width": 3}
        shapes.append({"type": "rect", "x0": x0, "x1": x1, "y0": y0, "y1": y1, "line": outline})
    side = 640
    fig.update_layout(
        title=plotly_safe(title),
        shapes=shapes,
        width=side + 140,
        height=int(side * height / max(width, 1)) + 80,
        margin=MARGIN,
        xaxis={"visible": False, "range": [0, width], "constrain": "domain"},
        yaxis={"visible": False, "range": [height, 0], "scaleanchor": "x"},
        meta=OVERLAY_META,
    )
    return fig


def patch_statistic_heatmap(
    values: Tensor, *, name: str, title: str, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """A layer x head heatmap of one patch statistic ``(n_layers, n_heads)``."""
    n_layers, n_heads = values.shape
    return heatmap(
        values.detach().float().cpu().numpy().astype(np.float32),
        kind="layer_head",
        x=head_names(n_heads, lang),
        y=layer_names(n_layers, lang),
        title=title,
        value_name=name,
        scale="statistic",
        cell_values=True,
        lang=lang,
    )
