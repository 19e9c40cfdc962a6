"""The decoder-aware measures in the app, in both languages, their numbers checked against core:
statistics over the queries with a choice, the visibility-normalised ranking, head statistics
over queries with a choice, rollout's options and collapse warning, norm + residual, and mean
ablation with its effect at every position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import analyze
from core.methods.ablation import ablation_effect
from core.methods.effective import effective_analysis
from core.methods.head_stats import HeadStats
from core.policy.examples import load_examples
from core.policy.i18n import catalogue
from tests.app.helpers import analyze_in_app, decode, plotly_specs

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TEXT = load_examples()[0].text  # the default text: SmolLM2's rollout collapses on it


def test_statistics_over_queries_with_a_choice_and_the_visible_ranking(app, smollm2):
    analyze_in_app(app, TEXT, model="smollm2")
    expected = analyze(smollm2, TEXT)
    app.switch_page("pages/statistics.py").run()
    app.toggle(key="stats_normalized").set_value(True).run()
    app.toggle(key="stats_queries").set_value(True).run()
    assert not app.exception
    matrix = app.dataframe[0].value
    assert np.allclose(
        matrix.to_numpy(), expected.normalized_head_entropy_choice.numpy(), atol=1e-6
    )
    spec = plotly_specs(app)[0]
    assert np.allclose(
        decode(spec["data"][0]["z"]), expected.normalized_head_entropy_choice.numpy(), atol=1e-6
    )
    app.slider(key="stats_top_k").set_value(2).run()
    app.radio(key="stats_ranking").set_value("visible").run()
    assert not app.exception
    table = app.dataframe[2].value
    assert len(table) == expected.n_layers * 3  # the sink apart, then 2 others
    sinks = table[table["rank"] == 0]
    assert list(sinks["position"]) == [0] * expected.n_layers
    rows = expected.most_attended(2, ranking="visible")
    assert list(table["position"]) == [r.position for r in rows]
    assert list(table["queries that see it"]) == [r.seen_by for r in rows]
    assert np.allclose(table["share"], [r.share for r in rows], atol=1e-6)


def test_encoders_get_no_query_toggle(app):
    analyze_in_app(app, "The cat sat on the mat.")
    for page, key in (
        ("pages/statistics.py", "stats_queries"),
        ("pages/heads.py", "heads_queries"),
    ):
        app.switch_page(page).run()
        assert not app.exception
        assert key not in [toggle.key for toggle in app.toggle]


def test_heads_page_over_queries_with_a_choice(app, smollm2):
    analyze_in_app(app, TEXT, model="smollm2")
    app.switch_page("pages/heads.py").run()
    app.toggle(key="heads_queries").set_value(True).run()
    app.selectbox(key="heads_metric").set_value("first_token").run()
    assert not app.exception
    expected = HeadStats.from_analysis(analyze(smollm2, TEXT), queries="choice")
    [spec] = plotly_specs(app)
    assert np.allclose(decode(spec["data"][0]["z"]), expected.first_token.numpy(), atol=1e-5)


def test_rollout_collapse_warning_and_its_options(app, smollm2):
    analyze_in_app(app, TEXT, model="smollm2")
    result = analyze(smollm2, TEXT)
    app.selectbox(key="heatmaps_layer").set_value(29).run()
    app.button_group(key="heatmaps_effective").set_value("rollout").run()
    assert not app.exception
    words = catalogue("en")
    assert any("collapsed onto the sink" in w.value for w in app.warning)
    assert any("from layer 13 on" in w.value for w in app.warning)

    app.checkbox(key="heatmaps_effective_sink").check().run()
    assert not app.exception
    assert not any("collapsed" in w.value for w in app.warning)
    expected = effective_analysis(smollm2, result, "rollout", exclude_sink=True).layer(29)[0]
    [spec] = plotly_specs(app)
    assert np.allclose(decode(spec["data"][0]["z"]), expected.numpy(), atol=1e-5)

    app.checkbox(key="heatmaps_effective_sink").uncheck().run()
    app.number_input(key="heatmaps_effective_start").set_value(20).run()
    assert not app.exception
    assert not any("collapsed" in w.value for w in app.warning)  # 10 layers: 0.987 at the end
    expected = effective_analysis(smollm2, result, "rollout", start_layer=20).layer(29)[0]
    [spec] = plotly_specs(app)
    assert np.allclose(decode(spec["data"][0]["z"]), expected.numpy(), atol=1e-5)
    assert words["effective.start_layer"] in [n.label for n in app.number_input]
    app.switch_page("pages/views.py").run()  # the options are shared by the view page
    assert app.number_input(key="views_effective_start").value == 20


def test_norm_with_residual_view(app, minilm):
    text = "Attention is not only a weight."
    analyze_in_app(app, text)
    app.selectbox(key="heatmaps_layer").set_value(2).run()
    app.button_group(key="heatmaps_effective").set_value("norm_residual").run()
    assert not app.exception
    expected = effective_analysis(minilm, analyze(minilm, text), "norm_residual").layer(2)[0]
    [spec] = plotly_specs(app)
    assert np.allclose(decode(spec["data"][0]["z"]), expected.numpy(), atol=1e-5)
    assert any("share of vector lengths" in c.value for c in app.caption)


def test_mean_ablation_and_the_effect_at_every_position(app, smollm2):
    analyze_in_app(app, TEXT, model="smollm2")
    app.switch_page("pages/ablation.py").run()
    app.radio(key="ablation_mode").set_value("mean").run()
    heads = [(1, head) for head in range(9)]
    app.multiselect(key="ablation_heads").set_value(heads).run()
    app.button(key="ablation_run").click().run()
    assert not app.exception
    effect = ablation_effect(smollm2, analyze(smollm2, TEXT), heads, mode="mean")
    assert float(app.metric[0].value) == pytest.approx(effect.kl_divergence, abs=1e-4)
    [spec] = plotly_specs(app)
    assert np.allclose(decode(spec["data"][0]["y"]), effect.per_position, rtol=1e-4, atol=1e-6)
    app.radio(key="ablation_mode").set_value("zero").run()  # kept apart: nothing shown yet
    assert not app.metric


def test_the_new_options_in_japanese():
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["lang"] = "ja"
    at.run()
    analyze_in_app(at, TEXT, model="smollm2")
    words = catalogue("ja")
    at.button_group(key="heatmaps_effective").set_value("rollout").run()
    assert not at.exception
    assert at.checkbox(key="heatmaps_effective_sink").label == words["effective.exclude_sink"]
    assert any("シンクに崩れています" in w.value for w in at.warning)
    at.switch_page("pages/statistics.py").run()
    assert at.toggle(key="stats_queries").label == words["stats.queries_toggle"]
    at.switch_page("pages/ablation.py").run()
    assert at.radio(key="ablation_mode").label == words["ablation.mode"]
    assert not at.exception
