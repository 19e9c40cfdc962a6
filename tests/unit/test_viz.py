"""Figures and tables from a hand-built analysis: the numbers and labels that reach the screen."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from core.engine.analysis import Analysis
from viz import (
    analysis_json,
    entropy_heatmap,
    head_entropy_matrix,
    head_heatmap,
    head_stats_table,
    layer_entropy_chart,
    layer_entropy_table,
    layer_heatmap,
    most_attended_table,
    to_csv_bytes,
    tokens_table,
)
from viz.labels import axis_labels, plotly_safe

TOKENS = ["<b>", "the", "the", "</script>"]


@pytest.fixture
def result() -> Analysis:
    torch.manual_seed(0)
    attn = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)  # (L, H, T, T)
    return Analysis.from_attentions(attn, TOKENS, kind="encoder")


def heatmap_z(figure) -> np.ndarray:
    return np.asarray(figure.data[0].z, dtype=np.float32)


def test_head_heatmap_shows_that_head_with_unique_escaped_labels(result):
    figure = head_heatmap(result, 1, 2)
    assert np.allclose(heatmap_z(figure), result.attentions[1, 2].numpy())
    labels = list(figure.data[0].x)
    assert labels == ["0: &lt;b&gt;", "1: the", "2: the", "3: &lt;/script&gt;"]
    assert len(set(labels)) == 4  # repeated tokens stay separate rows and columns
    assert list(figure.data[0].y) == labels
    assert "Layer 1, head 2" in figure.layout.title.text
    assert "%{z:.4f}" in figure.data[0].hovertemplate


def test_layer_heatmap_is_the_head_average(result):
    figure = layer_heatmap(result, 0)
    assert np.allclose(heatmap_z(figure), result.attentions[0].mean(0).numpy(), atol=1e-6)
    assert "average of 3 heads" in figure.layout.title.text


def test_entropy_heatmap_and_chart_carry_the_statistics(result):
    figure = entropy_heatmap(result)
    assert np.allclose(heatmap_z(figure), result.head_entropy.numpy())
    assert figure.data[0].zmax == pytest.approx(math.log(4))
    normalized = entropy_heatmap(result, normalized=True)
    assert np.allclose(heatmap_z(normalized), result.normalized_head_entropy.numpy())
    chart = layer_entropy_chart(result)
    assert list(chart.data[0].y) == pytest.approx(result.layer_entropy.tolist())
    assert list(chart.data[1].y) == pytest.approx(result.mean_head_entropy.tolist())


def test_plotly_escaping():
    assert plotly_safe("<a href='x'>&") == "&lt;a href='x'&gt;&amp;"
    assert axis_labels(["<br>"]) == ["0: &lt;br&gt;"]


def test_tables_have_clear_columns_and_the_right_values(result):
    matrix = head_entropy_matrix(result)
    assert list(matrix.columns) == ["head 0", "head 1", "head 2"]
    assert list(matrix.index) == ["layer 0", "layer 1"]
    assert np.allclose(matrix.to_numpy(), result.head_entropy.numpy())

    long = head_stats_table(result)
    assert list(long.columns) == ["layer", "head", "entropy", "normalised entropy"]
    assert len(long) == 6
    row = long[(long["layer"] == 1) & (long["head"] == 2)].iloc[0]
    assert row.entropy == pytest.approx(result.head_entropy[1, 2].item())

    layers = layer_entropy_table(result)
    assert list(layers.columns) == [
        "layer",
        "layer entropy",
        "mean head entropy",
        "largest possible (ln T)",
    ]
    assert layers["largest possible (ln T)"].tolist() == pytest.approx([math.log(4)] * 2)

    attended = most_attended_table(result, 2)
    assert list(attended.columns) == ["layer", "rank", "position", "token", "share"]
    assert len(attended) == 4
    per_head = most_attended_table(result, 2, per_head=True)
    assert "head" in per_head.columns and len(per_head) == 2 * 3 * 2
    assert per_head["head"].tolist()[:4] == [0, 0, 1, 1]

    tokens = tokens_table(result)
    assert tokens.token.tolist() == TOKENS


def test_exports_keep_characters(result):
    frame = pd.DataFrame({"token": ["日本", "<b>"]})
    csv = to_csv_bytes(frame)
    assert csv.startswith(b"\xef\xbb\xbf")  # BOM, for Excel
    assert "日本" in csv.decode("utf-8-sig")
    exported = analysis_json(result).decode("utf-8")
    assert '"</script>"' in exported  # JSON file: exact text, nothing escaped away
