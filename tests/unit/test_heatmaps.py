"""Every heatmap goes through viz.heatmaps.heatmap, the one recipe: no second copy in viz."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import viz.heatmaps as heatmaps
from core.engine.analysis import Analysis
from core.methods.ablation import HeadRanking
from core.methods.compare import compare
from core.methods.head_stats import HeadStats
from core.methods.predictions import LogitLens

VIZ = Path(__file__).resolve().parents[2] / "viz"
TOKENS = ["<b>", "the", "&", "</script>"]


def analysis(seed: int) -> Analysis:
    torch.manual_seed(seed)
    attn = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)  # (L, H, T, T)
    return Analysis.from_attentions(attn, TOKENS, kind="decoder")


def cases() -> dict[str, object]:
    """One call of every heatmap function, on hand-built results."""
    a, b = analysis(0), analysis(1)
    stats = HeadStats.from_attentions(a.attentions, TOKENS, causal=True)
    importance = torch.tensor([[0.5, math.nan, 0.1], [0.2, 0.0, 0.3]], dtype=torch.float64)
    ranking = HeadRanking(
        kind="decoder",
        metric="kl",
        importance=importance,
        completed=False,
        n_done=5,
        n_total=6,
        seconds=0.1,
    )
    lens = LogitLens(
        tokens=tuple(TOKENS),
        row_labels=("embeddings", "layer 0", "layer 1"),
        top_ids=torch.zeros(3, 4, dtype=torch.long),
        top_probs=torch.full((3, 4), 0.25),
        top_tokens=tuple(("<i>",) * 4 for _ in range(3)),
    )
    step = torch.softmax(torch.randn(2, 3, 4), dim=-1)  # (L, H, ctx)
    return {
        "head_heatmap": lambda: heatmaps.head_heatmap(a, 1, 2),
        "layer_heatmap": lambda: heatmaps.layer_heatmap(a, 0),
        "difference_heatmap": lambda: heatmaps.difference_heatmap(compare(a, b), 1, None),
        "entropy_heatmap": lambda: heatmaps.entropy_heatmap(a, normalized=True),
        "metric_heatmap": lambda: heatmaps.metric_heatmap(stats, "previous_token"),
        "importance_heatmap": lambda: heatmaps.importance_heatmap(ranking),
        "logit_lens_heatmap": lambda: heatmaps.logit_lens_heatmap(lens),
        "step_attention_heatmap": lambda: heatmaps.step_attention_heatmap(step, TOKENS, 1, "<x>"),
    }


HEATMAP_FUNCTIONS = [name for name in heatmaps.__all__ if name.endswith("_heatmap")]


def test_every_heatmap_function_has_a_case_here():
    assert sorted(cases()) == sorted(HEATMAP_FUNCTIONS)


@pytest.mark.parametrize("name", HEATMAP_FUNCTIONS)
def test_heatmap_function_calls_the_one_builder(name, monkeypatch):
    calls = []
    builder = heatmaps.heatmap

    def spy(z, **options):
        calls.append(options["kind"])
        return builder(z, **options)

    monkeypatch.setattr(heatmaps, "heatmap", spy)
    figure = cases()[name]()
    assert len(calls) == 1, f"{name} did not build its figure with viz.heatmaps.heatmap"
    assert figure.layout.meta == heatmaps.HEATMAP_META
    assert [trace.type for trace in figure.data] == ["heatmap"]


def test_no_module_in_viz_builds_a_heatmap_trace_itself():
    """``go.Heatmap(`` appears in viz only inside :func:`viz.heatmaps.heatmap` (and the vision
    overlay, which is drawn on an image)."""
    found = []
    for path in sorted(VIZ.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Heatmap":
                    found.append((path.name, function.name))
    # The one exception: the vision overlay, a heatmap laid over image pixels whose cell edges
    # are the patches' pixel boxes; its only labels are "patch r,c", made by the code.
    assert found == [("heatmaps.py", "heatmap"), ("vision.py", "overlay_figure")]


def test_builder_escapes_every_label_and_thins_long_token_axes():
    z = np.zeros((2, 2), dtype=np.float32)
    figure = heatmaps.heatmap(
        z,
        kind="query_key",
        x=["0: <b>", "1: &"],
        y=["0: <b>", "1: &"],
        title="<i>title</i>",
        value_name="weight",
        scale="weight",
        cell_text=[["<a>", "b"], ["c", "d"]],
        notes=[["<br>", "x"], ["y", "z"]],
    )
    trace = figure.data[0]
    assert list(trace.x) == ["0: &lt;b&gt;", "1: &amp;"] == list(trace.y)
    assert figure.layout.title.text == "&lt;i&gt;title&lt;/i&gt;"
    assert trace.text[0][0] == "&lt;a&gt;" and trace.customdata[0][0] == "&lt;br&gt;"
    assert figure.layout.xaxis.nticks is None  # short axes keep every tick

    long = [f"{i}: t" for i in range(65)]
    figure = heatmaps.heatmap(
        np.zeros((65, 65), dtype=np.float32),
        kind="query_key",
        x=long,
        y=long,
        title="",
        value_name="weight",
        scale="weight",
    )
    assert figure.layout.xaxis.nticks == figure.layout.yaxis.nticks == 32
    assert figure.layout.height == 900  # 220 + 14 * 65 = 1130, capped


def test_figures_keep_their_titles_axes_and_hover(monkeypatch):
    made = {name: make() for name, make in cases().items()}
    head = made["head_heatmap"]
    assert head.layout.title.text == "Layer 1, head 2"
    assert head.layout.xaxis.title.text == "key (attended to)"
    assert head.layout.yaxis.title.text == "query (attending)"
    assert head.data[0].hovertemplate == (
        "query %{y}<br>key %{x}<br>weight %{z:.4f}<extra></extra>"
    )
    assert head.data[0].colorscale[0][1] == "rgb(247,251,255)"  # Blues starts white
    assert "%{z:+.4f}" in made["difference_heatmap"].data[0].hovertemplate
    metric = made["metric_heatmap"]
    assert metric.data[0].hovertemplate == (
        "%{y}, %{x}<br>previous-token share %{z:.4f}<br>%{customdata}<extra></extra>"
    )
    assert list(metric.data[0].y) == ["layer 0", "layer 1"]
    assert metric.layout.height == 320
    lens = made["logit_lens_heatmap"]
    assert list(lens.data[0].y) == ["embeddings", "layer 0", "layer 1"]
    assert lens.data[0].text[0][0] == "&lt;i&gt;"
    step = made["step_attention_heatmap"]
    assert "“&lt;x&gt;”" in step.layout.title.text
    assert step.layout.height == 300 and step.layout.xaxis.side == "top"
    assert np.isnan(made["importance_heatmap"].data[0].z[0][1])  # not ablated: blank
