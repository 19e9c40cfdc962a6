"""Text that reaches a figure or a table: escaped token labels, layer and head names, and the
catalogue keys of head metrics and patterns.

Plotly reads a subset of HTML in every text field (``<b>``, ``<a href>``, ``<br>``), so a token goes
through :func:`plotly_safe` and always shows as text, never as markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from core.methods.head_stats import HeadMetric, HeadPattern
from core.policy.i18n import Lang, t

__all__ = [
    "MARGIN",
    "METRIC_DEFINITION_KEYS",
    "METRIC_KEYS",
    "PATTERN_KEYS",
    "axis_labels",
    "head_names",
    "layer_names",
    "plotly_safe",
    "position_labels",
]

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
