"""Figures and tables of the Long context panel: where each layer's attention goes (sink, local
window, far context), the mean attention against distance, simulated KV-cache eviction, and the
heatmap of a long text as a max-pooled overview plus an exact window."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from torch import Tensor

from core.engine.long_range import LongRange
from core.methods.kv_eviction import Eviction
from core.policy.i18n import t
from viz.heatmaps import heatmap

__all__ = [
    "distance_figure",
    "eviction_figure",
    "eviction_frame",
    "overview_figure",
    "split_figure",
    "split_frame",
    "window_figure",
]

SPLIT_COLORS = {"sink": "#c44e52", "local": "#4c72b0", "far": "#55a868"}
SPLIT_KEYS = {"sink": "long.sink", "local": "long.local", "far": "long.far"}
POLICY_KEYS = {"streaming": "long.policy_streaming", "heavy": "long.policy_heavy"}


def _parts(long_range: LongRange, head: int | None) -> dict[str, Tensor]:
    """``{sink, local, far}``, each ``(L,)``: one head's or the head average."""
    parts = {"sink": long_range.sink, "local": long_range.local, "far": long_range.far}
    return {k: v.mean(dim=1) if head is None else v[:, head] for k, v in parts.items()}


def split_figure(long_range: LongRange, head: int | None = None, *, lang: str = "en") -> go.Figure:
    """Stacked bars per layer: the share of attention on the sink, the local window and the
    far context (``head`` None: the average over heads)."""
    parts = _parts(long_range, head)
    layers = list(range(len(parts["sink"])))
    fig = go.Figure()
    for name, values in parts.items():
        label = t(SPLIT_KEYS[name], lang, sink=long_range.sink_tokens, window=long_range.window)
        fig.add_bar(
            x=layers,
            y=values.tolist(),
            name=label,
            marker_color=SPLIT_COLORS[name],
            hovertemplate=f"{t('common.layer', lang)} %{{x}}<br>{label}: %{{y:.3f}}<extra></extra>",
        )
    fig.update_layout(
        barmode="stack",
        xaxis_title=t("common.layer", lang),
        yaxis_title=t("long.share", lang),
        yaxis_range=[0, 1],
        height=360,
        margin={"t": 30, "b": 40},
        legend={"orientation": "h", "y": 1.1},
    )
    return fig


def split_frame(long_range: LongRange, *, lang: str = "en") -> pd.DataFrame:
    """Every layer and head's split, one row each."""
    rows = []
    n_layers, n_heads = long_range.sink.shape
    for layer in range(n_layers):
        for head in range(n_heads):
            rows.append(
                {
                    t("common.layer", lang): layer,
                    t("common.head", lang): head,
                    "sink": round(float(long_range.sink[layer, head]), 5),
                    "local": round(float(long_range.local[layer, head]), 5),
                    "far": round(float(long_range.far[layer, head]), 5),
                }
            )
    return pd.DataFrame(rows)


def _bin_labels(edges: tuple[int, ...]) -> list[str]:
    return [str(lo) if hi - lo == 1 else f"{lo}–{hi - 1}" for lo, hi in zip(edges, edges[1:])]


def distance_figure(
    long_range: LongRange, layers: list[int], head: int | None = None, *, lang: str = "en"
) -> go.Figure:
    """Mean attention of one (query, key) pair against distance (doubling bins, log axes), one
    line per layer in ``layers``."""
    mean = long_range.mean.mean(dim=1) if head is None else long_range.mean[:, head]  # (L, n)
    mids = [max(0.5, (lo + hi - 1) / 2) for lo, hi in zip(long_range.edges, long_range.edges[1:])]
    labels = _bin_labels(long_range.edges)
    fig = go.Figure()
    for layer in layers:
        fig.add_scatter(
            x=mids,
            y=mean[layer].tolist(),
            customdata=labels,
            mode="lines+markers",
            name=f"{t('common.layer', lang)} {layer}",
            hovertemplate=(
                f"{t('long.distance', lang)} %{{customdata}}<br>"
                f"{t('long.mean_weight', lang)} %{{y:.2e}}<extra>{t('common.layer', lang)} "
                f"{layer}</extra>"
            ),
        )
    fig.update_layout(
        xaxis={"type": "log", "title": t("long.distance", lang)},
        yaxis={"type": "log", "title": t("long.mean_weight", lang)},
        height=380,
        margin={"t": 30, "b": 40},
    )
    return fig


def eviction_figure(eviction: Eviction, budget: int, *, lang: str = "en") -> go.Figure:
    """Kept attention mass per layer at ``budget`` keys, both policies (head averages)."""
    n = eviction.budgets.index(budget)
    streaming, heavy = eviction.layer_means()  # (L, n_budgets) each
    layers = list(range(streaming.shape[0]))
    fig = go.Figure()
    for name, values in (("streaming", streaming), ("heavy", heavy)):
        label = t(POLICY_KEYS[name], lang, sink=eviction.sink)
        fig.add_scatter(
            x=layers,
            y=values[:, n].tolist(),
            mode="lines+markers",
            name=label,
            hovertemplate=f"{t('common.layer', lang)} %{{x}}: %{{y:.3f}}<extra>{label}</extra>",
        )
    fig.update_layout(
        xaxis_title=t("common.layer", lang),
        yaxis_title=t("long.kept", lang, budget=budget),
        yaxis_range=[0, 1.02],
        height=360,
        margin={"t": 30, "b": 40},
        legend={"orientation": "h", "y": 1.12},
    )
    return fig


def eviction_frame(eviction: Eviction, *, lang: str = "en") -> pd.DataFrame:
    """Head-averaged kept mass for every layer, budget and policy."""
    streaming, heavy = eviction.layer_means()
    rows = []
    for layer in range(streaming.shape[0]):
        for n, budget in enumerate(eviction.budgets):
            rows.append(
                {
                    t("common.layer", lang): layer,
                    t("long.budget", lang): budget,
                    "StreamingLLM": round(float(streaming[layer, n]), 5),
                    "H2O (oracle)": round(float(heavy[layer, n]), 5),
                }
            )
    return pd.DataFrame(rows)


def overview_figure(pooled: Tensor, seq_len: int, *, title: str, lang: str = "en") -> go.Figure:
    """A long map max-pooled to ``(S, S)`` (``pooled``): cell (r, c) is the largest weight of
    the queries and keys in its span; rows and columns are labelled with their spans."""
    size = pooled.shape[-1]
    step = seq_len / size
    spans = [f"{int(i * step)}–{int((i + 1) * step) - 1}" for i in range(size)]
    return heatmap(
        pooled.numpy(),
        kind="query_key",
        x=spans,
        y=spans,
        title=title,
        value_name="max",
        scale="weight",
        zmin=0.0,
        lang=lang,
    )


def window_figure(
    weights: Tensor, tokens: list[str], rows: range, keys: range, *, title: str, lang: str = "en"
) -> go.Figure:
    """Exact weights of a window ``(len(rows), len(keys))``, labelled ``position: token``."""
    return heatmap(
        weights.numpy(),
        kind="query_key",
        x=[f"{j}: {tokens[j]}" for j in keys],
        y=[f"{i}: {tokens[i]}" for i in rows],
        title=title,
        value_name=t("long.weight", lang),
        scale="weight",
        zmin=0.0,
        lang=lang,
    )
