"""Figures and tables of the corpus views (``core.corpus.views``): the layer x head grid of a
statistic's medians or IQRs, one head's histogram, per-layer boxes, a label split's effect sizes,
the head atlas, and the rows of where a head fires. Every corpus text is escaped
(:func:`viz.labels.plotly_safe`) before it reaches a figure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.corpus.atlas import Atlas, ColourBy
from core.corpus.views import FireHit, GroupSplit, HeadGrid
from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.labels import MARGIN, plotly_safe

__all__ = [
    "atlas_figure",
    "fire_table",
    "grid_figure",
    "head_histogram",
    "hit_label",
    "layer_box_figure",
    "split_figure",
]

GridValue = str  # "median" or "iqr"
_SQUARE = {"symbol": "square", "line": {"width": 0}}


def _cells(n_layers: int, n_heads: int) -> tuple[np.ndarray, np.ndarray]:
    layers, heads = np.meshgrid(np.arange(n_layers), np.arange(n_heads), indexing="ij")
    return layers.reshape(-1), heads.reshape(-1)  # (L*H,), (L*H,)


def _grid_layout(fig: go.Figure, title: str, n_layers: int, n_heads: int, lang: Lang) -> None:
    """Heads on x, layers on y (layer 0 at the top), square cells: a clickable grid."""
    fig.update_layout(
        title={"text": title},
        xaxis={
            "title": {"text": t("common.head", lang)},
            "dtick": 1,
            "range": [-0.5, n_heads - 0.5],
        },
        yaxis={
            "title": {"text": t("common.layer", lang)},
            "dtick": 1,
            "range": [n_layers - 0.5, -0.5],
        },
        height=max(260, 60 + 26 * n_layers),
        margin=MARGIN,
        clickmode="event+select",
    )


def _marker_size(n_layers: int, n_heads: int) -> int:
    return int(max(8, min(28, 700 / max(n_heads, 1), 26 * 0.9)))


def grid_figure(
    grid: HeadGrid,
    value: GridValue = "median",
    *,
    selected: tuple[int, int] | None = None,
    lang: Lang = DEFAULT_LANG,
) -> go.Figure:
    """Every head as a square coloured by the median (or the IQR) of ``grid.statistic`` over the
    texts; the hover gives median, IQR (q1-q3), mean and texts. A point per head, so a click
    selects it (``customdata`` is ``[layer, head]``)."""
    layers, heads = _cells(grid.n_layers, grid.n_heads)
    shown = (grid.median if value == "median" else grid.iqr).reshape(-1)
    hover = [
        t(
            "corpus.view_grid_hover",
            lang,
            layer=int(l_),
            head=int(h),
            median=f"{grid.median[l_, h]:.4g}",
            iqr=f"{grid.iqr[l_, h]:.4g}",
            q1=f"{grid.q1[l_, h]:.4g}",
            q3=f"{grid.q3[l_, h]:.4g}",
            mean=f"{grid.mean[l_, h]:.4g}",
            n=int(grid.count[l_, h]),
        )
        for l_, h in zip(layers, heads, strict=True)
    ]
    fig = go.Figure(
        go.Scatter(
            x=heads.tolist(),
            y=layers.tolist(),
            mode="markers",
            marker={
                **_SQUARE,
                "size": _marker_size(grid.n_layers, grid.n_heads),
                "color": np.nan_to_num(shown, nan=0.0),
                "colorscale": "Viridis" if value == "median" else "Oranges",
                "showscale": True,
            },
            customdata=np.stack([layers, heads], axis=1).tolist(),  # plain lists: a click
            # returns them as they are (a NumPy array would travel as base64)
            hovertext=hover,
            hoverinfo="text",
            selectedpoints=None if selected is None else [selected[0] * grid.n_heads + selected[1]],
        )
    )
    key = "corpus.view_grid_median_title" if value == "median" else "corpus.view_grid_iqr_title"
    title = t(key, lang, statistic=plotly_safe(grid.statistic))
    _grid_layout(fig, title, grid.n_layers, grid.n_heads, lang)
    return fig


def head_histogram(
    values: np.ndarray, statistic: str, layer: int, head: int, *, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """One head's ``statistic`` over every text, as a histogram with its median marked."""
    fig = go.Figure(go.Histogram(x=values, nbinsx=40, name=plotly_safe(statistic)))
    if len(values):
        median = float(np.median(values))
        fig.add_vline(x=median, line_dash="dot", annotation_text=f"median {median:.4g}")
    fig.update_layout(
        title={
            "text": t(
                "corpus.view_histogram_title",
                lang,
                statistic=plotly_safe(statistic),
                layer=layer,
                head=head,
                n=len(values),
            )
        },
        xaxis={"title": {"text": plotly_safe(statistic)}},
        yaxis={"title": {"text": t("corpus.view_texts_axis", lang)}},
        height=320,
        margin=MARGIN,
        bargap=0.05,
    )
    return fig


def layer_box_figure(
    boxes: pd.DataFrame, statistic: str, *, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """Per layer, one box of ``statistic`` over every head and text (whiskers: 5th and 95th
    percentiles), from :func:`core.corpus.views.layer_boxes`."""
    fig = go.Figure(
        go.Box(
            x=boxes.layer.tolist(),
            q1=boxes.q1.tolist(),
            median=boxes["median"].tolist(),
            q3=boxes.q3.tolist(),
            lowerfence=boxes.p05.tolist(),
            upperfence=boxes.p95.tolist(),
            mean=boxes["mean"].tolist(),
            name=plotly_safe(statistic),
        )
    )
    fig.update_layout(
        title={"text": t("corpus.view_boxes_title", lang, statistic=plotly_safe(statistic))},
        xaxis={"title": {"text": t("common.layer", lang)}, "dtick": 1},
        yaxis={"title": {"text": plotly_safe(statistic)}},
        height=340,
        margin=MARGIN,
    )
    return fig


def split_figure(split: GroupSplit, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """Cohen's d of every head (label value a against b) on the layer x head grid, a diverging
    colour scale centred on 0; the hover gives both medians, means and the differences."""
    table = split.table
    d = table.cohens_d.to_numpy(float)
    limit = float(np.nanmax(np.abs(d))) if np.isfinite(d).any() else 1.0
    hover = [
        t(
            "corpus.view_split_hover",
            lang,
            layer=int(r.layer),
            head=int(r.head),
            a=plotly_safe(split.a),
            b=plotly_safe(split.b),
            median_a=f"{r.median_a:.4g}",
            median_b=f"{r.median_b:.4g}",
            mean_a=f"{r.mean_a:.4g}",
            mean_b=f"{r.mean_b:.4g}",
            diff=f"{r.median_diff:.4g}",
            d=f"{r.cohens_d:.3g}",
        )
        for r in table.itertuples(index=False)
    ]
    fig = go.Figure(
        go.Scatter(
            x=table["head"].to_numpy(int).tolist(),
            y=table.layer.to_numpy(int).tolist(),
            mode="markers",
            marker={
                **_SQUARE,
                "size": _marker_size(int(table.layer.max()) + 1, int(table["head"].max()) + 1),
                "color": np.nan_to_num(d, nan=0.0),
                "colorscale": "RdBu",
                "cmin": -limit,
                "cmax": limit,
                "showscale": True,
                "colorbar": {"title": {"text": "d"}},
            },
            hovertext=hover,
            hoverinfo="text",
        )
    )
    title = t(
        "corpus.view_split_title",
        lang,
        statistic=plotly_safe(split.statistic),
        a=plotly_safe(split.a),
        b=plotly_safe(split.b),
    )
    _grid_layout(fig, title, int(table.layer.max()) + 1, int(table["head"].max()) + 1, lang)
    return fig


def atlas_figure(
    atlas: Atlas,
    colour_by: ColourBy = "cluster",
    *,
    shown: Sequence[str] = ("entropy", "first_token", "previous_token"),
    lang: Lang = DEFAULT_LANG,
) -> go.Figure:
    """Every head at its PCA position, one trace per cluster (or per pattern label) so the
    legend names them; the hover gives the head, its cluster, pattern and the medians of the
    ``shown`` statistics. ``customdata`` is ``[layer, head]``: a click selects a head."""
    table = atlas.table
    groups = table.cluster.astype(str) if colour_by == "cluster" else table.pattern.astype(str)
    shown = [s for s in shown if s in table.columns]
    fig = go.Figure()
    for group in sorted(groups.unique(), key=lambda g: (len(g), g)):
        rows = table[groups == group]
        hover = [
            t(
                "corpus.view_atlas_hover",
                lang,
                layer=int(r["layer"]),
                head=int(r["head"]),
                cluster=int(r["cluster"]),
                pattern=plotly_safe(str(r["pattern"])),
            )
            + "".join(f"<br>{plotly_safe(s)}: {r[s]:.4g}" for s in shown)
            for _, r in rows.iterrows()
        ]
        name = (
            t("corpus.view_cluster_n", lang, cluster=group)
            if colour_by == "cluster"
            else plotly_safe(group)
        )
        fig.add_trace(
            go.Scatter(
                x=rows.x.tolist(),
                y=rows.y.tolist(),
                mode="markers+text",
                text=[f"{int(r.layer)}.{int(r.head)}" for r in rows.itertuples(index=False)],
                textposition="top center",
                textfont={"size": 9},
                marker={"size": 11},
                name=name,
                customdata=rows[["layer", "head"]].to_numpy(int).tolist(),
                hovertext=hover,
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title={"text": t("corpus.view_atlas_title", lang, n=len(table), k=atlas.n_clusters)},
        xaxis={"title": {"text": f"PC1 ({atlas.explained[0]:.0%})"}},
        yaxis={"title": {"text": f"PC2 ({atlas.explained[1]:.0%})"}},
        height=560,
        margin=MARGIN,
        clickmode="event+select",
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def _context(before: Sequence[str], token: str, after: Sequence[str]) -> str:
    """Tokens around one position, the position in brackets (plain text: a table escapes it).

    >>> _context(["a", "b"], "c", ["d"])
    'a b [c] d'
    """
    return " ".join([*before, f"[{token}]", *after])


def fire_table(hits: Sequence[FireHit], *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """Where a head fires, one row per hit, strongest first: rank, weight, text id, query and
    key (position: token), both contexts, the head's pattern on that text and the text."""
    return pd.DataFrame(
        {
            t("corpus.view_col_rank", lang): range(1, len(hits) + 1),
            t("corpus.view_col_weight", lang): [round(h.weight, 4) for h in hits],
            t("corpus.view_col_text_id", lang): [h.text_id for h in hits],
            t("corpus.view_col_query", lang): [f"{h.query}: {h.query_token}" for h in hits],
            t("corpus.view_col_key", lang): [f"{h.key}: {h.key_token}" for h in hits],
            t("corpus.view_col_query_context", lang): [
                _context(h.query_before, h.query_token, h.query_after) for h in hits
            ],
            t("corpus.view_col_key_context", lang): [
                _context(h.key_before, h.key_token, h.key_after) for h in hits
            ],
            t("corpus.view_col_pattern", lang): [h.pattern for h in hits],
            t("corpus.view_col_text", lang): [h.text for h in hits],
        }
    )


def hit_label(rank: int, hit: FireHit, lang: Lang = DEFAULT_LANG) -> str:
    """One hit as a choice in a list (plain text; Streamlit escapes it)."""
    text = hit.text if len(hit.text) <= 60 else hit.text[:59] + "…"
    return t(
        "corpus.view_hit_option",
        lang,
        rank=rank,
        query=hit.query_token,
        key=hit.key_token,
        weight=f"{hit.weight:.3f}",
        text=text,
    )
