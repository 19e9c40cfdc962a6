"""Figures and tables for the deeper analyses: head statistics and patterns, ablation, the
logit lens and next-token predictions, comparisons, and generation steps.

Every label goes through the catalogue (``lang``) and every token through :func:`plotly_safe`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from torch import Tensor

from core.methods.ablation import AblationEffect, HeadRanking
from core.methods.compare import Comparison
from core.methods.generate import GenerationStep
from core.methods.head_stats import (
    HEAD_METRICS,
    PATTERN_THRESHOLDS,
    HeadMetric,
    HeadPattern,
    HeadStats,
)
from core.methods.predictions import LogitLens, NextTokenPredictions
from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.figures import MARGIN, axis_labels, grid_layout, head_axes, plotly_safe, square_layout
from viz.tables import localized

__all__ = [
    "METRIC_DEFINITION_KEYS",
    "METRIC_KEYS",
    "PATTERN_KEYS",
    "ablation_table",
    "candidates_table",
    "changes_table",
    "difference_heatmap",
    "head_stats_frame",
    "importance_heatmap",
    "logit_lens_frame",
    "logit_lens_heatmap",
    "metric_heatmap",
    "pattern_rules_frame",
    "predictions_frame",
    "ranking_frame",
    "step_attention_heatmap",
    "step_mean_chart",
]

# Metric and pattern identifiers -> catalogue keys of their names.
METRIC_KEYS: dict[HeadMetric, str] = {
    "entropy": "metric.entropy",
    "normalized_entropy": "metric.normalized_entropy",
    "confidence": "metric.confidence",
    "mean_distance": "metric.mean_distance",
    "first_token": "metric.first_token",
    "cls": "metric.cls",
    "sep": "metric.sep",
    "punctuation": "metric.punctuation",
    "punctuation_or_sep": "metric.punctuation_or_sep",
    "self_token": "metric.self_token",
    "previous_token": "metric.previous_token",
    "next_token": "metric.next_token",
}
METRIC_DEFINITION_KEYS: dict[HeadMetric, str] = {
    "entropy": "metricdef.entropy",
    "normalized_entropy": "metricdef.normalized_entropy",
    "confidence": "metricdef.confidence",
    "mean_distance": "metricdef.mean_distance",
    "first_token": "metricdef.first_token",
    "cls": "metricdef.cls",
    "sep": "metricdef.sep",
    "punctuation": "metricdef.punctuation",
    "punctuation_or_sep": "metricdef.punctuation_or_sep",
    "self_token": "metricdef.self_token",
    "previous_token": "metricdef.previous_token",
    "next_token": "metricdef.next_token",
}
PATTERN_KEYS: dict[HeadPattern, str] = {
    "first-token sink": "pattern.sink",
    "previous-token": "pattern.previous",
    "next-token": "pattern.next",
    "self": "pattern.self",
    "punctuation/separator": "pattern.punctuation",
    "broad": "pattern.broad",
    "positional-local": "pattern.local",
    "mixed": "pattern.mixed",
}
# --- head statistics ------------------------------------------------------------------------------


def metric_heatmap(stats: HeadStats, metric: HeadMetric, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """Layer x head heatmap of one metric; hovering shows the head's pattern label too."""
    values = stats.metric(metric).numpy().astype(np.float32)  # (L, H)
    patterns = [[t(PATTERN_KEYS[p], lang) for p in row] for row in stats.patterns]
    x, y = head_axes(stats.n_layers, stats.n_heads, lang)
    name = t(METRIC_KEYS[metric], lang)
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=x,
            y=y,
            customdata=patterns,
            colorscale="Viridis",
            texttemplate="%{z:.2f}" if values.size <= 400 else None,
            colorbar={"title": {"text": name}},
            hovertemplate="%{y}, %{x}<br>" + name + " %{z:.4f}<br>%{customdata}<extra></extra>",
        )
    )
    return grid_layout(fig, stats.n_layers, t("heads.heatmap_title", lang, metric=name))


def head_stats_frame(stats: HeadStats, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per head: layer, head, pattern (in ``lang``) and every metric."""
    frame = pd.DataFrame(stats.rows())
    frame["pattern"] = [t(PATTERN_KEYS[p], lang) for p in frame["pattern"]]
    names = {"pattern": t("col.pattern", lang)}
    names |= {metric: t(METRIC_KEYS[metric], lang) for metric in HEAD_METRICS}
    return localized(frame, lang).rename(columns=names)


def pattern_rules_frame(*, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """The rules behind the pattern labels, in the order they are tried."""
    rows = [
        {
            t("col.pattern", lang): t(PATTERN_KEYS[pattern], lang),
            t("col.rule", lang): rule.describe(),
        }
        for pattern, rule in PATTERN_THRESHOLDS.items()
    ]
    rows.append({t("col.pattern", lang): t("pattern.mixed", lang), t("col.rule", lang): "-"})
    return pd.DataFrame(rows)


# --- ablation -------------------------------------------------------------------------------------


def ablation_table(effect: AblationEffect, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """Decoders: the top next tokens before and after, side by side."""
    rows = []
    for rank, (before, after) in enumerate(zip(effect.top_before, effect.top_after), start=1):
        rows.append(
            {
                t("col.rank", lang): rank,
                t("ablation.before", lang): before.token,
                t("ablation.p_before", lang): before.prob,
                t("ablation.after", lang): after.token,
                t("ablation.p_after", lang): after.prob,
            }
        )
    return pd.DataFrame(rows)


def importance_heatmap(ranking: HeadRanking, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """Layer x head importance (KL or 1 - cosine); heads not ablated yet stay blank."""
    values = ranking.importance.numpy().astype(np.float64)  # (L, H), NaN where not done
    x, y = head_axes(values.shape[0], values.shape[1], lang)
    name = t("ablation.metric_kl" if ranking.metric == "kl" else "ablation.metric_cos", lang)
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=x,
            y=y,
            colorscale="Reds",
            zmin=0.0,
            colorbar={"title": {"text": name}},
            hovertemplate="%{y}, %{x}<br>" + name + " %{z:.5f}<extra></extra>",
        )
    )
    return grid_layout(fig, values.shape[0], t("ablation.heatmap_title", lang, metric=name))


def ranking_frame(ranking: HeadRanking, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """Heads ablated so far, most important first."""
    name = t("ablation.metric_kl" if ranking.metric == "kl" else "ablation.metric_cos", lang)
    rows = [
        {t("col.rank", lang): rank, "layer": layer, "head": head, name: value}
        for rank, (layer, head, value) in enumerate(ranking.ranked(), start=1)
    ]
    return localized(pd.DataFrame(rows), lang)


# --- predictions ----------------------------------------------------------------------------------


def predictions_frame(preds: NextTokenPredictions, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per position: the token, the token that follows and its probability, then the
    top-k predictions as ``token (p)``."""
    rows = []
    following = preds.next_token_prob.tolist()
    for position, token in enumerate(preds.tokens):
        row = {
            "position": position,
            "token": token,
            t("predict.actual_next", lang): (
                preds.tokens[position + 1] if position + 1 < len(preds.tokens) else ""
            ),
            t("predict.p_actual", lang): following[position]
            if position < len(following)
            else math.nan,
        }
        for rank, guess in enumerate(preds.at(position), start=1):
            row[t("predict.top_n", lang, rank=rank)] = f"{guess.token} ({guess.prob:.3f})"
        rows.append(row)
    return localized(pd.DataFrame(rows), lang)


def logit_lens_heatmap(lens: LogitLens, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """Rows: embeddings, then each layer; columns: positions. Colour: the probability of the
    top-1 next token, written in the cell."""
    probs = lens.top_probs.numpy().astype(np.float32)  # (L + 1, T)
    text = [[plotly_safe(token) for token in row] for row in lens.top_tokens]
    rows = [t("predict.embeddings", lang)] + [
        t("common.layer_n", lang, layer=layer) for layer in range(len(lens.row_labels) - 1)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=probs,
            x=axis_labels(lens.tokens),
            y=rows,
            text=text,
            texttemplate="%{text}" if probs.size <= 1500 else None,
            colorscale="Blues",
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": {"text": t("predict.prob", lang)}},
            hovertemplate="%{y} · %{x}<br>→ %{text} (%{z:.3f})<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": t("predict.lens_title", lang)},
        height=int(min(1400, max(360, 120 + 24 * probs.shape[0]))),
        margin=MARGIN,
        yaxis={"autorange": "reversed"},
        xaxis={"side": "top", "tickangle": -60},
    )
    return fig


def logit_lens_frame(lens: LogitLens, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """The logit lens as a table: one row per (layer, position)."""
    rows = []
    names = [t("predict.embeddings", lang)] + [
        t("common.layer_n", lang, layer=layer) for layer in range(len(lens.row_labels) - 1)
    ]
    for row, name in enumerate(names):
        for position, token in enumerate(lens.tokens):
            rows.append(
                {
                    "layer": name,
                    "position": position,
                    "token": token,
                    t("predict.top1", lang): lens.top_tokens[row][position],
                    t("predict.prob", lang): float(lens.top_probs[row, position]),
                }
            )
    return localized(pd.DataFrame(rows), lang)


# --- comparison -----------------------------------------------------------------------------------


def difference_heatmap(
    comparison: Comparison, layer: int, head: int | None, *, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """B minus A over the aligned positions, one head or the layer's head average; red = more
    attention in B, blue = less."""
    diff = comparison.difference[layer]  # (H, n, n)
    z = (diff.mean(0) if head is None else diff[head]).numpy().astype(np.float32)
    bound = float(max(np.abs(z).max(initial=0.0), 1e-6))
    labels = axis_labels(comparison.tokens)
    if head is None:
        title = t("compare.diff_title_layer", lang, layer=layer)
    else:
        title = t("compare.diff_title_head", lang, layer=layer, head=head)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            colorscale="RdBu_r",
            zmin=-bound,
            zmax=bound,
            colorbar={"title": {"text": "B − A"}},
            hovertemplate=t("heatmap.hover", lang, query="%{y}", key="%{x}", weight="%{z:+.4f}")
            + "<extra></extra>",
        )
    )
    return square_layout(fig, len(labels), title, lang)


def changes_table(
    comparison: Comparison,
    metric: HeadMetric | None = None,
    n: int = 50,
    *,
    lang: Lang = DEFAULT_LANG,
) -> pd.DataFrame:
    """The largest head-statistic changes (B minus A), of one metric or all."""
    rows = [
        {
            "layer": change.layer,
            "head": change.head,
            t("col.metric", lang): t(METRIC_KEYS[change.metric], lang),
            "A": change.before,
            "B": change.after,
            t("col.change", lang): change.change,
        }
        for change in comparison.top_changes(n, metric)
    ]
    return localized(pd.DataFrame(rows), lang)


# --- generation -----------------------------------------------------------------------------------


def step_attention_heatmap(
    attention: Tensor,
    labels: tuple[str, ...],
    layer: int,
    token: str,
    *,
    lang: Lang = DEFAULT_LANG,
) -> go.Figure:
    """A new token's attention over its context (tokens or words) at one layer, one row per
    head: ``attention`` is the step's ``(n_layers, n_heads, ctx)``."""
    z = attention[layer].numpy().astype(np.float32)  # (H, ctx)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=axis_labels(labels),
            y=[t("common.head_n", lang, head=h) for h in range(z.shape[0])],
            colorscale="Blues",
            zmin=0.0,
            colorbar={"title": {"text": t("heatmap.weight", lang)}},
            hovertemplate="%{y} → %{x}<br>%{z:.4f}<extra></extra>",
        )
    )
    title = t("generate.attention_title", lang, token=plotly_safe(token), layer=layer)
    fig.update_layout(
        title={"text": title},
        height=int(max(300, 120 + 26 * z.shape[0])),
        margin=MARGIN,
        xaxis={"side": "top", "tickangle": -60},
        yaxis={"autorange": "reversed"},
    )
    return fig


def step_mean_chart(
    attention: Tensor, labels: tuple[str, ...], layer: int, *, lang: Lang = DEFAULT_LANG
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


def candidates_table(step: GenerationStep, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """The top next-token candidates of a step; the chosen one is marked."""
    rows = [
        {
            t("col.rank", lang): rank,
            "token": candidate.token,
            t("generate.p_sampled", lang): candidate.prob,
            t("generate.p_raw", lang): candidate.raw_prob,
            t("generate.chosen", lang): "✔" if candidate.chosen else "",
        }
        for rank, candidate in enumerate(step.candidates, start=1)
    ]
    return localized(pd.DataFrame(rows), lang)
