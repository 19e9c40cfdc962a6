"""Every heatmap AttnScope draws, built by one function, :func:`heatmap`.

Query x key maps (one head, a layer's average, a comparison's difference), layer x head grids
(entropy, head metrics, ablation importance) and rows over token positions (the logit lens, a
generated token's heads). :func:`heatmap` owns the trace, the colour scale, axis titles, tick
thinning, the hover text, the escaping of every label and the figure's size; the functions below
only choose the data, the titles and the range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import plotly.graph_objects as go
import torch

from core.engine.stats import max_entropy
from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.labels import (
    MARGIN,
    METRIC_KEYS,
    PATTERN_KEYS,
    attention_title,
    cell_word,
    head_names,
    layer_names,
    plotly_safe,
    position_labels,
)

if TYPE_CHECKING:
    from torch import Tensor

    from core.engine.analysis import Analysis
    from core.methods.ablation import HeadRanking
    from core.methods.compare import Comparison
    from core.methods.effective import EffectiveMode
    from core.methods.head_stats import HeadMetric, HeadStats
    from core.methods.predictions import LogitLens

__all__ = [
    "HEATMAP_META",
    "HeatmapKind",
    "Scale",
    "difference_heatmap",
    "entropy_heatmap",
    "head_heatmap",
    "heatmap",
    "importance_heatmap",
    "layer_heatmap",
    "logit_lens_heatmap",
    "metric_heatmap",
    "step_attention_heatmap",
]

# What the rows and columns are:
# - query_key: queries down, keys along the top (tokens both ways);
# - layer_head: layers down, heads across;
# - layer_position: the embeddings and each layer down, token positions along the top;
# - head_position: heads down, token positions along the top.
HeatmapKind = Literal["query_key", "layer_head", "layer_position", "head_position"]
# What the colour means, and so which colour scale shows it.
Scale = Literal["weight", "statistic", "importance", "difference"]

COLOR_SCALES: dict[Scale, str] = {
    "weight": "Blues",  # attention weights, probabilities: 0 = white
    "statistic": "Viridis",  # head statistics
    "importance": "Reds",  # ablation effect: 0 = no effect
    "difference": "RdBu_r",  # signed: red = more in B, blue = less
}
# Every figure :func:`heatmap` makes carries this in ``layout.meta`` (shown nowhere).
HEATMAP_META = "attnscope-heatmap"
# Beyond this many tokens every tick label cannot be read anyway; Plotly then thins them itself.
_MAX_TICKS = 64
# Numbers (or text) are written in the cells only while there are few enough to read.
_MAX_VALUE_CELLS = 400
_MAX_TEXT_CELLS = 1500
# Words in cells (the logit lens) are written at a size a person reads, so only while the columns
# are wide enough to hold one (about 40 px each on a laptop's page).
_TEXT_SIZE = 12
_MAX_TEXT_COLUMNS = 24
# A row of a token heatmap never gets fewer pixels than this: the figure grows with the tokens
# (a 512-token map is about 1 760 px tall, not a 900 px square of sub-pixel cells), up to a cap
# past which Plotly's zoom is the way in.
_MIN_ROW_PX = 3
_MAX_HEIGHT = 4200


@dataclass(frozen=True)
class Height:
    """A figure's height in pixels: ``base + per_row * rows``, within ``[low, high]``."""

    base: int
    per_row: int
    low: int
    high: int | None = None

    def of(self, rows: int, longest_label: int = 0) -> int:
        """The height for ``rows`` rows: ``base + per_row * rows`` within ``[low, high]``, but
        never under :data:`_MIN_ROW_PX` a row (the ``high`` cap gives way, up to
        :data:`_MAX_HEIGHT`); ``longest_label`` (characters) makes room for slanted labels."""
        height = max(self.low, self.base + self.per_row * rows)
        height = height if self.high is None else min(self.high, height)
        band = self.base + 5 * min(max(longest_label - 12, 0), 40)  # title, margins, labels
        return int(max(height, min(_MAX_HEIGHT, band + _MIN_ROW_PX * rows)))


_HEIGHTS: dict[HeatmapKind, Height] = {
    "query_key": Height(220, 14, 420, 900),
    "layer_head": Height(120, 28, 320, 1000),
    "layer_position": Height(120, 24, 360, 1400),
    "head_position": Height(120, 26, 300),  # a generated token's heads: no upper bound
}


def _hover(kind: HeatmapKind, value: str, name: str, has_notes: bool, lang: Lang) -> str:
    """The hover text of one cell; ``value`` is the cell's formatted ``%{z}``. A cell's word is
    shown whole from ``customdata`` where no notes take that place."""
    words = "%{text}" if has_notes else "%{customdata}"
    if kind == "query_key":
        text = t("heatmap.hover", lang, query="%{y}", key="%{x}", weight=value)
    elif kind == "layer_head":
        text = "%{y}, %{x}<br>" + name + " " + value
    elif kind == "layer_position":  # the cell's text is the predicted token
        text = "%{y} · %{x}<br>→ " + words + " (" + value + ")"
    else:
        text = "%{y} → %{x}<br>" + value
    return text + ("<br>%{customdata}" if has_notes else "") + "<extra></extra>"


def heatmap(
    z: np.ndarray,
    *,
    kind: HeatmapKind,
    x: Sequence[str],
    y: Sequence[str],
    title: str,
    value_name: str,
    scale: Scale,
    zmin: float | None = None,
    zmax: float | None = None,
    value_format: str = ".4f",
    cell_values: bool = False,
    cell_text: Sequence[Sequence[str]] | None = None,
    notes: Sequence[Sequence[str]] | None = None,
    lang: Lang = DEFAULT_LANG,
) -> go.Figure:
    """The one heatmap recipe: ``z`` is ``(len(y), len(x))``, rows top to bottom.

    ``x``, ``y``, ``title``, ``cell_text`` and ``notes`` (shown on hover) are plain text: they are
    escaped here. ``value_name`` titles the colour bar (and the hover of a layer x head grid).
    ``cell_values`` writes each value in its cell, ``cell_text`` writes text instead, each only
    while the cells are few enough to read (words at a readable size, cut to a few characters;
    the hover shows them whole). Values travel as a float array (Plotly encodes it as compact
    base64).
    """
    value = "%{z:" + value_format + "}"
    written = None
    if cell_text is not None:
        readable = z.size <= _MAX_TEXT_CELLS and len(x) <= _MAX_TEXT_COLUMNS
        written = "%{text}" if readable else None
    elif cell_values:
        written = "%{z:.2f}" if z.size <= _MAX_VALUE_CELLS else None
    shown = notes if notes is not None else cell_text  # on hover: the notes, else whole words
    trace = go.Heatmap(
        z=z,
        x=[plotly_safe(label) for label in x],
        y=[plotly_safe(label) for label in y],
        customdata=None if shown is None else [[plotly_safe(n) for n in row] for row in shown],
        text=None if cell_text is None else [[cell_word(s) for s in row] for row in cell_text],
        texttemplate=written,
        textfont={"size": _TEXT_SIZE} if cell_text is not None else None,
        colorscale=COLOR_SCALES[scale],
        zmin=zmin,
        zmax=zmax,
        colorbar={"title": {"text": value_name}},
        hovertemplate=_hover(kind, value, value_name, notes is not None, lang),
    )
    fig = go.Figure(trace)
    fig.update_layout(
        # The title sits at the top of the figure and pushes the plot down, so it never overlaps
        # the slanted token labels along the top.
        title={
            "text": plotly_safe(title),
            "yref": "container",
            "y": 1,
            "yanchor": "top",
            "pad": {"t": 10, "b": 10},
            "automargin": True,
        },
        height=_HEIGHTS[kind].of(len(y), max(map(len, x), default=0)),
        margin={**MARGIN, "t": 10},  # the title reserves its own room above the labels
        meta=HEATMAP_META,
        yaxis={"autorange": "reversed"},
    )
    if kind != "layer_head":  # token positions along the top, slanted
        fig.update_xaxes(side="top", tickangle=-60)
    if kind == "query_key":
        fig.update_xaxes(title={"text": t("heatmap.key_axis", lang)})
        fig.update_yaxes(title={"text": t("heatmap.query_axis", lang)})
        if len(x) > _MAX_TICKS:
            fig.update_xaxes(nticks=_MAX_TICKS // 2)
            fig.update_yaxes(nticks=_MAX_TICKS // 2)
    return fig


def _as_array(values: Tensor, dtype: type = np.float32) -> np.ndarray:
    """``values`` as a NumPy array on the CPU (any float dtype in, ``dtype`` out)."""
    return values.detach().to("cpu", torch.float64).numpy().astype(dtype)


# --- query x key ----------------------------------------------------------------------------------


def attention_heatmap(
    weights: Tensor, tokens: Sequence[str], title: str, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """Heatmap of a ``(query_pos, key_pos)`` attention matrix; hovering a cell shows both tokens
    and the weight."""
    z = _as_array(weights)  # (T, T)
    labels = position_labels(tokens)
    return heatmap(
        z,
        kind="query_key",
        x=labels,
        y=labels,
        title=title,
        value_name=t("heatmap.weight", lang),
        scale="weight",
        zmin=0.0,
        zmax=float(max(z.max(initial=0.0), 1e-6)),
        lang=lang,
    )


def head_heatmap(
    result: Analysis,
    layer: int,
    head: int,
    *,
    effective: EffectiveMode = "raw",
    lang: Lang = DEFAULT_LANG,
) -> go.Figure:
    """Attention of one head: ``result.head(layer, head)``; ``effective`` says which attention
    ``result`` holds (:func:`core.methods.effective.effective_analysis`), for the title."""
    title = attention_title(result, layer, head, effective, lang)
    return attention_heatmap(result.head(layer, head), result.tokens, title, lang)


def layer_heatmap(
    result: Analysis, layer: int, *, effective: EffectiveMode = "raw", lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """The head-averaged attention of one layer, ``mean_h a[layer, h]``."""
    title = attention_title(result, layer, None, effective, lang)
    return attention_heatmap(result.layer_average(layer), result.tokens, title, lang)


def difference_heatmap(
    comparison: Comparison, layer: int, head: int | None, *, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """B minus A over the aligned positions, one head or the layer's head average; red = more
    attention in B, blue = less."""
    diff = comparison.difference[layer]  # (H, n, n)
    z = _as_array(diff.mean(0) if head is None else diff[head])  # (n, n)
    bound = float(max(np.abs(z).max(initial=0.0), 1e-6))
    labels = position_labels(comparison.tokens)
    if head is None:
        title = t("compare.diff_title_layer", lang, layer=layer)
    else:
        title = t("compare.diff_title_head", lang, layer=layer, head=head)
    return heatmap(
        z,
        kind="query_key",
        x=labels,
        y=labels,
        title=title,
        value_name="B − A",
        scale="difference",
        zmin=-bound,
        zmax=bound,
        value_format="+.4f",
        lang=lang,
    )


# --- layer x head ---------------------------------------------------------------------------------


def entropy_heatmap(
    result: Analysis, *, normalized: bool = False, choice: bool = False, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """Layer x head heatmap of head entropy (nats) or normalised head entropy (0..1), averaged
    over every query or (``choice``) over the queries with a choice (``*_choice``)."""
    if choice:
        values = result.normalized_head_entropy_choice if normalized else result.head_entropy_choice
    else:
        values = result.normalized_head_entropy if normalized else result.head_entropy  # (L, H)
    name = t("entropy.name_normalized" if normalized else "entropy.name", lang)
    return heatmap(
        _as_array(values),
        kind="layer_head",
        x=head_names(result.n_heads, lang),
        y=layer_names(result.n_layers, lang),
        title=t("entropy.title", lang, name=name),
        value_name=name,
        scale="statistic",
        zmin=0.0,
        zmax=1.0 if normalized else max_entropy(result.seq_len),
        cell_values=True,
        lang=lang,
    )


def metric_heatmap(stats: HeadStats, metric: HeadMetric, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """Layer x head heatmap of one head metric; hovering shows the head's pattern label too."""
    name = t(METRIC_KEYS[metric], lang)
    return heatmap(
        _as_array(stats.metric(metric)),  # (L, H)
        kind="layer_head",
        x=head_names(stats.n_heads, lang),
        y=layer_names(stats.n_layers, lang),
        title=t("heads.heatmap_title", lang, metric=name),
        value_name=name,
        scale="statistic",
        cell_values=True,
        notes=[[t(PATTERN_KEYS[p], lang) for p in row] for row in stats.patterns],
        lang=lang,
    )


def importance_heatmap(ranking: HeadRanking, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """Layer x head importance (KL or 1 - cosine); heads not ablated yet stay blank."""
    values = _as_array(ranking.importance, np.float64)  # (L, H), NaN where not done
    name = t("ablation.metric_kl" if ranking.metric == "kl" else "ablation.metric_cos", lang)
    return heatmap(
        values,
        kind="layer_head",
        x=head_names(values.shape[1], lang),
        y=layer_names(values.shape[0], lang),
        title=t("ablation.heatmap_title", lang, metric=name),
        value_name=name,
        scale="importance",
        zmin=0.0,
        value_format=".5f",
        lang=lang,
    )


# --- rows over token positions --------------------------------------------------------------------


def logit_lens_heatmap(lens: LogitLens, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """Rows: embeddings, then each layer; columns: positions. Colour: the probability of the
    top-1 next token, written in the cell."""
    rows = [t("predict.embeddings", lang)] + layer_names(len(lens.row_labels) - 1, lang)
    return heatmap(
        _as_array(lens.top_probs),  # (L + 1, T)
        kind="layer_position",
        x=position_labels(lens.tokens),
        y=rows,
        title=t("predict.lens_title", lang),
        value_name=t("predict.prob", lang),
        scale="weight",
        zmin=0.0,
        zmax=1.0,
        value_format=".3f",
        cell_text=lens.top_tokens,
        lang=lang,
    )


def step_attention_heatmap(
    attention: Tensor,
    labels: Sequence[str],
    layer: int,
    token: str,
    *,
    lang: Lang = DEFAULT_LANG,
) -> go.Figure:
    """A new token's attention over its context (tokens or words) at one layer, one row per
    head: ``attention`` is the step's ``(n_layers, n_heads, ctx)``."""
    z = _as_array(attention[layer])  # (H, ctx)
    return heatmap(
        z,
        kind="head_position",
        x=position_labels(labels),
        y=head_names(z.shape[0], lang),
        title=t("generate.attention_title", lang, token=token, layer=layer),
        value_name=t("heatmap.weight", lang),
        scale="weight",
        zmin=0.0,
        lang=lang,
    )
