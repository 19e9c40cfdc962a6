"""Plotly figures of an analysis: one head, a layer average, layer x head entropy, layer entropy.

Token labels go through :func:`plotly_safe` because Plotly reads a subset of HTML in every text
field (``<b>``, ``<a href>``, ``<br>``): a token must always show as text, never as markup.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from torch import Tensor

from core.engine.analysis import Analysis
from core.engine.stats import max_entropy
from core.policy.i18n import DEFAULT_LANG, Lang, t

__all__ = [
    "MARGIN",
    "attention_heatmap",
    "axis_labels",
    "entropy_heatmap",
    "escape_markdown",
    "grid_layout",
    "head_axes",
    "head_heatmap",
    "layer_entropy_chart",
    "layer_heatmap",
    "plotly_safe",
    "square_layout",
]

# Beyond this many tokens every tick label cannot be read anyway; Plotly then thins them itself.
_MAX_TICKS = 64


def plotly_safe(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` so Plotly shows ``text`` literally instead of as markup.

    >>> plotly_safe('<b>x</b> & "y"')
    '&lt;b&gt;x&lt;/b&gt; &amp; "y"'
    """
    return html.escape(text, quote=False)


# Characters Markdown (and Streamlit's flavour: LaTeX, :directives:) gives a meaning to.
_MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:")


def escape_markdown(text: str) -> str:
    r"""Backslash-escape ``text`` so a Markdown element shows it literally: no image fetched, no
    link made, no formatting, no LaTeX.

    >>> print(escape_markdown("![x](http://e/x.png) *b* $1$"))
    \!\[x\]\(http\://e/x\.png\) \*b\* \$1\$
    """
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in text)


def axis_labels(tokens: tuple[str, ...] | list[str]) -> list[str]:
    """Unique, escaped axis categories ``"position: token"`` (repeated tokens stay apart).

    >>> axis_labels(["the", "<s>", "the"])
    ['0: the', '1: &lt;s&gt;', '2: the']
    """
    return [f"{i}: {plotly_safe(token)}" for i, token in enumerate(tokens)]


MARGIN = {"l": 10, "r": 10, "t": 50, "b": 10}


def square_layout(fig: go.Figure, seq_len: int, title: str, lang: Lang) -> go.Figure:
    """Layout of a query x key heatmap: keys along the top, queries down, long axes thinned."""
    side = int(min(900, max(420, 220 + 14 * seq_len)))
    fig.update_layout(
        title={"text": plotly_safe(title)},
        height=side,
        margin=MARGIN,
        xaxis={"title": {"text": t("heatmap.key_axis", lang)}, "side": "top", "tickangle": -60},
        yaxis={"title": {"text": t("heatmap.query_axis", lang)}, "autorange": "reversed"},
    )
    if seq_len > _MAX_TICKS:
        fig.update_xaxes(nticks=_MAX_TICKS // 2)
        fig.update_yaxes(nticks=_MAX_TICKS // 2)
    return fig


def grid_layout(fig: go.Figure, n_layers: int, title: str) -> go.Figure:
    """Layout of a layer x head heatmap: layer 0 on top, a row's height per layer."""
    fig.update_layout(
        title={"text": title},
        height=int(min(1000, max(320, 120 + 28 * n_layers))),
        margin=MARGIN,
        yaxis={"autorange": "reversed"},
    )
    return fig


def head_axes(n_layers: int, n_heads: int, lang: Lang) -> tuple[list[str], list[str]]:
    """Labels of a layer x head grid: heads along x, layers along y."""
    return (
        [t("common.head_n", lang, head=h) for h in range(n_heads)],
        [t("common.layer_n", lang, layer=layer) for layer in range(n_layers)],
    )


def attention_heatmap(
    weights: Tensor, tokens: tuple[str, ...], title: str, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """Heatmap of a ``(query_pos, key_pos)`` matrix; hovering a cell shows both tokens and the
    weight. Values travel as a float32 array (Plotly encodes it as compact base64)."""
    labels = axis_labels(tokens)
    z = weights.detach().to("cpu").float().numpy().astype(np.float32)  # (T, T)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            colorscale="Blues",
            zmin=0.0,
            zmax=float(max(z.max(initial=0.0), 1e-6)),
            colorbar={"title": {"text": t("heatmap.weight", lang)}},
            hovertemplate=t("heatmap.hover", lang, query="%{y}", key="%{x}", weight="%{z:.4f}")
            + "<extra></extra>",
        )
    )
    return square_layout(fig, len(tokens), title, lang)


def head_heatmap(
    result: Analysis, layer: int, head: int, *, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """Attention of one head: ``result.head(layer, head)``."""
    title = t("heatmap.title_head", lang, layer=layer, head=head)
    return attention_heatmap(result.head(layer, head), result.tokens, title, lang)


def layer_heatmap(result: Analysis, layer: int, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """The head-averaged attention of one layer, ``mean_h a[layer, h]``."""
    title = t("heatmap.title_layer", lang, layer=layer, heads=result.n_heads)
    return attention_heatmap(result.layer_average(layer), result.tokens, title, lang)


def entropy_heatmap(
    result: Analysis, *, normalized: bool = False, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """Layer x head heatmap of head entropy (nats) or normalised head entropy (0..1)."""
    values = result.normalized_head_entropy if normalized else result.head_entropy  # (L, H)
    z = values.numpy().astype(np.float32)
    upper = 1.0 if normalized else max_entropy(result.seq_len)
    name = t("entropy.name_normalized" if normalized else "entropy.name", lang)
    x, y = head_axes(result.n_layers, result.n_heads, lang)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=y,
            colorscale="Viridis",
            zmin=0.0,
            zmax=upper,
            texttemplate="%{z:.2f}" if z.size <= 400 else None,
            colorbar={"title": {"text": name}},
            hovertemplate="%{y}, %{x}<br>" + name + " %{z:.4f}<extra></extra>",
        )
    )
    return grid_layout(fig, result.n_layers, t("entropy.title", lang, name=name))


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
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig
