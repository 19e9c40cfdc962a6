"""Text that reaches a figure or a table: escaped token labels, layer and head names, and the
catalogue keys of head metrics and patterns.

Plotly reads a subset of HTML in every text field (``<b>``, ``<a href>``, ``<br>``), so a token goes
through :func:`plotly_safe` and always shows as text, never as markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.methods.head_stats import HEAD_METRICS, HeadMetric, HeadPattern, PatternRule
from core.policy.i18n import Lang, t

if TYPE_CHECKING:
    from core.engine.analysis import Analysis

__all__ = [
    "MARGIN",
    "METRIC_DEFINITION_KEYS",
    "METRIC_KEYS",
    "PATTERN_KEYS",
    "attention_title",
    "axis_labels",
    "cell_word",
    "head_names",
    "layer_names",
    "metric_caption",
    "plotly_safe",
    "position_labels",
    "rule_text",
]

# A word written in a heatmap cell (the logit lens) is cut to this many characters.
CELL_CHARS = 6

# Margin of every figure: the title needs the top, the axes carry their own labels.
MARGIN = {"l": 10, "r": 10, "t": 50, "b": 10}


def plotly_safe(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` so Plotly shows ``text`` literally instead of as markup.

    >>> plotly_safe('<b>x</b> & "y"')
    '&lt;b&gt;x&lt;/b&gt; &amp; "y"'
    """
    return html.escape(text, quote=False)


def position_labels(tokens: Sequence[str]) -> list[str]:
    """Axis categories ``"position: token"``, not yet escaped: repeated tokens stay apart.

    >>> position_labels(["the", "<s>", "the"])
    ['0: the', '1: <s>', '2: the']
    """
    return [f"{i}: {token}" for i, token in enumerate(tokens)]


def axis_labels(tokens: Sequence[str]) -> list[str]:
    """Unique, escaped axis categories ``"position: token"``, as every token axis shows them.

    >>> axis_labels(["the", "<s>", "the"])
    ['0: the', '1: &lt;s&gt;', '2: the']
    """
    return [plotly_safe(label) for label in position_labels(tokens)]


def layer_names(n_layers: int, lang: Lang) -> list[str]:
    """``layer 0``, ``layer 1``, ... in ``lang``."""
    return [t("common.layer_n", lang, layer=layer) for layer in range(n_layers)]


def head_names(n_heads: int, lang: Lang) -> list[str]:
    """``head 0``, ``head 1``, ... in ``lang``."""
    return [t("common.head_n", lang, head=head) for head in range(n_heads)]


# Metric and pattern identifiers -> catalogue keys of their names and definitions.
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


def rule_text(rule: PatternRule, lang: Lang) -> str:
    """A pattern rule in words: ``previous-token share ≥ 0.5``, not ``previous_token >= 0.5``.

    >>> rule_text(PatternRule("previous_token", at_least=0.5), "en")
    'previous-token share ≥ 0.5'
    """
    name = t(METRIC_KEYS[rule.metric], lang)
    if rule.at_least is not None:
        return f"{name} ≥ {rule.at_least:g}"
    return f"{name} ≤ {rule.at_most:g}"


def metric_caption(metric: HeadMetric, lang: Lang) -> str:
    """What a head metric is, for the page: its definition in ``lang`` and, where it comes from a
    paper, the paper (a reference to AttnScope's own code is for the README, not the page).

    >>> metric_caption("entropy", "en")
    'mean over queries of -Σ_j a_ij ln a_ij (nats)'
    """
    definition = t(METRIC_DEFINITION_KEYS[metric], lang)
    reference = HEAD_METRICS[metric].reference
    return definition if reference.startswith("core.") else f"{definition} — {reference}"


def cell_word(text: str) -> str:
    """A word as a heatmap cell writes it: cut to :data:`CELL_CHARS` characters, so that it fits
    its cell at a size a person reads (the hover shows it whole), and escaped.

    >>> cell_word("Paris"), cell_word("information"), cell_word("<|im_end|>")
    ('Paris', 'infor…', '&lt;|im_…')
    """
    short = text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
    return plotly_safe(short)


def attention_title(
    result: Analysis, layer: int, head: int | None, effective: str, lang: Lang
) -> str:
    """What a query x key map shows: one head or a layer's average (``head`` None), of raw weights
    or norm-based attention; rollout and norm + residual have one map per layer, and say so.

    ``effective`` is the mode of :func:`core.methods.effective.effective_analysis`. The keys
    built from parts are "heatmap.title_head", "heatmap.title_layer", "heatmap.title_norm_head"
    and "heatmap.title_norm_layer".
    """
    if effective == "rollout":
        start = dict(result.derived_with).get("start_layer", 0)
        return t("heatmap.title_rollout", lang, layer=layer, start=start)
    if effective == "norm_residual":
        return t("heatmap.title_norm_residual", lang, layer=layer)
    norm = "_norm" if effective == "norm" else ""
    if head is None:
        return t(f"heatmap.title{norm}_layer", lang, layer=layer, heads=result.n_heads)
    return t(f"heatmap.title{norm}_head", lang, layer=layer, head=head)
