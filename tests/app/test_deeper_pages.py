"""The deeper-analysis pages driven through AppTest, their numbers checked against core."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import analyze
from core.methods.ablation import ablation_effect, rank_heads
from core.methods.compare import compare
from core.methods.effective import norm_based_attention, rollout
from core.methods.generate import GenerationConfig, generate
from core.methods.head_stats import HeadStats
from core.methods.predictions import predict
from core.methods.words import word_analysis
from core.policy.i18n import t
from tests.app.helpers import analyze_in_app, decode, plotly_specs
from viz.labels import PATTERN_KEYS

TEXT = "The animal didn't cross the street because it was too tired."


def test_heads_page_shows_every_head_and_its_pattern(app, minilm):
    analyze_in_app(app, TEXT)
    app.switch_page("pages/heads.py").run()
    assert not app.exception
    expected = HeadStats.from_analysis(analyze(minilm, TEXT))
    table = app.dataframe[0].value
    assert len(table) == 6 * 12
    assert list(table["pattern"][:12]) == [t(PATTERN_KEYS[p], "en") for p in expected.patterns[0]]
    [spec] = plotly_specs(app)
    assert np.allclose(decode(spec["data"][0]["z"]), expected.entropy.numpy(), atol=1e-5)
    app.selectbox(key="heads_metric").set_value("previous_token").run()
    [spec] = plotly_specs(app)
    assert np.allclose(decode(spec["data"][0]["z"]), expected.previous_token.numpy(), atol=1e-5)
    assert "previous-token share ≥ 0.5" in app.dataframe[1].value.to_string()


def test_rollout_and_norm_based_heatmaps(app, minilm):
    analyze_in_app(app, TEXT)
    app.selectbox(key="heatmaps_layer").set_value(5).run()
    app.button_group(key="heatmaps_effective").set_value("rollout").run()
    assert not app.exception
    full = analyze(minilm, TEXT, method="all")
    [spec] = plotly_specs(app)
    expected = rollout(full.attentions)[5].numpy()
    assert np.allclose(decode(spec["data"][0]["z"]), expected, atol=1e-5)

    app.button_group(key="heatmaps_effective").set_value("norm").run()
    app.selectbox(key="heatmaps_head").set_value(3).run()
    norms = norm_based_attention(minilm, analyze(minilm, TEXT)).norms[5, 3]
    [spec] = plotly_specs(app)
    assert np.allclose(
        decode(spec["data"][0]["z"]), (norms / norms.sum(-1, keepdim=True)).numpy(), atol=1e-5
    )
    app.switch_page("pages/views.py").run()  # the choice is shared by the view page
    assert app.button_group(key="views_effective").value == "norm"


def test_words_toggle_merges_pieces_in_every_view(app, minilm):
    text = "Tokenization is unbelievably interesting."
    analyze_in_app(app, text)
    app.sidebar.toggle(key="words").set_value(True).run()
    words = word_analysis(minilm, analyze(minilm, text))
    [spec] = plotly_specs(app)
    assert len(spec["data"][0]["x"]) == words.seq_len < analyze(minilm, text).seq_len
    assert any("Tokenization" in label for label in spec["data"][0]["x"])
    assert np.allclose(decode(spec["data"][0]["z"]), words.head(0, 0).numpy(), atol=1e-5)


def test_predictions_page(app, smollm2):
    analyze_in_app(app, TEXT)  # an encoder first: the page explains
    app.switch_page("pages/predictions.py").run()
    assert "decoder" in app.info[0].value
    text = "The capital of France is Paris. The capital of Italy is"
    analyze_in_app(app, text, model="smollm2")
    app.switch_page("pages/predictions.py").run()
    assert not app.exception
    expected = predict(smollm2, analyze(smollm2, text), top_k=5)  # one pass: tokens and lens
    preds, lens = expected.next_tokens, expected.lens
    table = app.dataframe[0].value
    assert len(table) == len(preds.tokens)
    assert table.iloc[-1]["top 1"].startswith(preds.top_tokens[-1][0])
    [spec] = plotly_specs(app)
    assert np.allclose(decode(spec["data"][0]["z"]), lens.top_probs.numpy(), atol=1e-5)


def test_ablation_page_effect_and_ranking(app, minilm):
    text = "Ablate a head and see."
    analyze_in_app(app, text)
    app.switch_page("pages/ablation.py").run()
    app.multiselect(key="ablation_heads").set_value([(0, 1), (2, 3)]).run()
    app.button(key="ablation_run").click().run()
    assert not app.exception
    effect = ablation_effect(minilm, analyze(minilm, text), [(0, 1), (2, 3)])
    assert float(app.metric[0].value) == pytest.approx(effect.cosine_similarity, abs=1e-5)

    app.button(key="ablation_rank").click().run()
    assert not app.exception
    ranking = rank_heads(minilm, analyze(minilm, text))
    effect_chart, spec = plotly_specs(app)  # the effect at every position, then the ranking
    assert effect_chart["data"][0]["type"] == "bar"
    shown = decode(spec["data"][0]["z"]).astype(np.float64)
    assert np.allclose(shown, ranking.importance.numpy(), atol=1e-6)
    top = app.dataframe[-1].value.iloc[0]
    layer, head, _ = ranking.ranked()[0]
    assert (top["layer"], top["head"]) == (layer, head)


def test_compare_page(app, minilm):
    analyze_in_app(app, "The cat sat on the mat.")
    app.switch_page("pages/compare.py").run()
    app.text_area(key="compare_text").set_value("The dog sat on the mat.")
    app.button(key="compare_run").click().run()
    assert not app.exception
    expected = compare(
        analyze(minilm, "The cat sat on the mat."), analyze(minilm, "The dog sat on the mat.")
    )
    [spec] = plotly_specs(app)
    assert np.allclose(decode(spec["data"][0]["z"]), expected.difference[0, 0].numpy(), atol=1e-5)
    table = app.dataframe[0].value
    first = expected.changes[0]
    assert (table.iloc[0]["layer"], table.iloc[0]["head"]) == (first.layer, first.head)
    assert table.iloc[0]["change (B − A)"] == pytest.approx(first.change, abs=1e-6)


def test_compare_refuses_inputs_too_long_to_hold(app, smollm2):
    """Comparing holds every layer of both texts: 721 SmolLM2 tokens (30 x 9 x 721² floats,
    561 MB, past the 512 MiB budget) are refused with the message, and nothing is compared.
    The second text is short: the current result is the one too long."""
    app.sidebar.number_input(key="max_tokens").set_value(1024).run()
    analyze_in_app(app, "a long decoder input " * 180, model="smollm2")
    app.switch_page("pages/compare.py").run()
    app.text_area(key="compare_text").set_value("another decoder input")
    app.button(key="compare_run").click().run()
    assert not app.exception
    tokens = app.session_state["result"].seq_len
    assert tokens > 700
    assert any(
        t("error.compare_too_long", "en", tokens=tokens) in error.value for error in app.error
    ), [error.value for error in app.error]
    assert "comparison" not in app.session_state or not app.session_state["comparison"]


def test_generate_page_streams_and_replays(app, smollm2):
    app.sidebar.selectbox(key="model_choice").set_value("smollm2").run()
    app.switch_page("pages/generate.py").run()
    app.text_area(key="generate_prompt").set_value("The capital of France is")
    app.number_input(key="generate_max_new").set_value(6)
    app.toggle(key="generate_greedy").set_value(True)
    app.button(key="generate_run").click().run()
    assert not app.exception
    shown = app.session_state["generation"]
    config = GenerationConfig(max_new_tokens=6, greedy=True, temperature=0.8, top_p=0.95, top_k=50)
    expected = generate(smollm2, "The capital of France is", config)
    assert shown.generated_ids == expected.generated_ids
    assert expected.generated_text.strip() in app.text[0].value
    app.slider(key="generate_step").set_value(2).run()
    step = expected.steps[2]
    heads, mean = plotly_specs(app)
    assert np.allclose(decode(heads["data"][0]["z"]), step.attention[-1].numpy(), atol=1e-5)
    assert math.isclose(float(decode(mean["data"][0]["y"]).sum()), 1.0, abs_tol=1e-4)
    candidates = app.dataframe[0].value
    assert candidates.iloc[0]["token"] == step.candidates[0].token


def test_generate_page_refuses_encoders(app):
    app.switch_page("pages/generate.py").run()
    assert "decoder" in app.info[0].value
