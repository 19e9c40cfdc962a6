"""The Attribution page through AppTest on both bundled models: its figures and table against
core's own numbers, its messages for bad targets in both languages."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import analyze
from core.methods.agreement import agreement
from core.methods.attribution import attribute
from core.methods.attribution_target import resolve_target
from core.policy.i18n import t
from tests.app.conftest import APP
from tests.app.helpers import analyze_in_app, decode, plotly_specs
from viz.attribution import shaded_scores

A, B = "A cat sat on the mat.", "A dog slept on the rug."


def test_minilm_needs_a_second_sentence_then_matches_core(app, minilm):
    analyze_in_app(app, A)
    app.switch_page("pages/attribution.py").run()
    app.number_input(key="attribution_steps").set_value(8)
    app.button(key="attribution_run").click().run()
    assert not app.exception
    message = app.error[0].value.replace("\\", "")  # the model name is Markdown-escaped
    assert message == t("error.attribution_needs_pair", "en", model="all-MiniLM-L6-v2")

    analyze_in_app(app, A, pair=B)
    app.switch_page("pages/attribution.py").run()
    app.number_input(key="attribution_steps").set_value(8)
    app.button(key="attribution_run").click().run()
    assert not app.exception and not app.error
    analysis = analyze(minilm, A, B)
    target = resolve_target(minilm, analysis)
    expected = attribute(minilm, analysis, target, baseline="pad", steps=8)
    tokens, grad, agree = plotly_specs(app)  # shaded text, attention x gradient, agreement map
    assert np.allclose(decode(tokens["data"][0]["z"]), shaded_scores(expected)[1], atol=1e-4)
    product = expected.attention.product[0, 0].numpy()
    assert np.allclose(decode(grad["data"][0]["z"]), product, atol=1e-6)
    table = agreement(minilm, analysis, expected)
    shown = decode(agree["data"][0]["z"]).astype(np.float64)
    assert np.allclose(shown, table.heads[:, :, 0].numpy(), atol=1e-3, equal_nan=True)
    first = app.dataframe[-1].value.iloc[0]  # sorted by saliency, highest ρ first
    best = table.rows(sort_by="saliency")[0]
    assert (first["source"], first["saliency"]) == (best["source"], pytest.approx(best["saliency"]))
    assert any(f"{expected.captum.ig_delta:.3g}" in c.value for c in app.caption)


def test_smollm2_bad_targets_in_japanese_then_a_run(smollm2):
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["lang"] = "ja"
    at.run()
    text = "The capital of France is"
    analyze_in_app(at, text, model="smollm2")
    at.switch_page("pages/attribution.py").run()
    at.text_input(key="attribution_token").set_value("Paris is")
    at.button(key="attribution_run").click().run()
    assert "「Paris is」" in at.error[0].value and "ピース" in at.error[0].value
    at.text_input(key="attribution_token").set_value(" Paris")
    at.text_input(key="attribution_position").set_value("99")
    at.button(key="attribution_run").click().run()
    last = len(analyze(smollm2, text).tokens) - 1
    assert at.error[0].value == t("error.attribution_position", "ja", position=99, last=last)
    at.text_input(key="attribution_position").set_value("")
    at.number_input(key="attribution_steps").set_value(0)
    at.button(key="attribution_run").click().run()
    assert at.error[0].value == t("error.attribution_steps", "ja", steps=0, most=512)
    at.number_input(key="attribution_steps").set_value(4)
    at.button(key="attribution_run").click().run()
    assert not at.exception and not at.error
    analysis = analyze(smollm2, text)
    target = resolve_target(smollm2, analysis, token=" Paris")
    expected = attribute(smollm2, analysis, target, steps=4, methods=("integrated_gradients",))
    scores = at.get("download_button")  # the CSV of the scores is there
    assert scores
    assert any(f"{expected.captum.ig_delta:.3g}" in c.value for c in at.caption)
    assert any("「Paris」" in m.value for m in at.markdown)


def test_unconverged_integrated_gradients_get_a_warning_that_more_steps_clear(app, minilm):
    analyze_in_app(app, A, pair=B)
    app.switch_page("pages/attribution.py").run()
    analysis = analyze(minilm, A, B)
    target = resolve_target(minilm, analysis)
    shown = {}
    for steps in (8, 64):
        app.number_input(key="attribution_steps").set_value(steps)
        app.button(key="attribution_run").click().run()
        assert not app.exception and not app.error
        shown[steps] = [w.value for w in app.warning]
        expected = attribute(
            minilm, analysis, target, methods=("integrated_gradients",), steps=steps
        )
        assert any(f"{expected.captum.ig_delta:.3g}" in c.value for c in app.caption)
    rough = attribute(minilm, analysis, target, methods=("integrated_gradients",), steps=8)
    gap = rough.f_input - rough.f_baseline
    # 8 steps: |delta| is several times |f(x) - f(x')|; 64 steps: within 0.1% of it.
    assert abs(rough.captum.ig_delta) > 0.05 * abs(gap)
    warning = t(
        "attribution.delta_large",
        "en",
        delta=f"{abs(rough.captum.ig_delta):.3g}",
        percent=f"{100 * abs(rough.captum.ig_delta) / abs(gap):.3g}",
        gap=f"{abs(gap):.3g}",
        most="5",
        steps=32,
    )
    assert shown[8] == [warning]
    assert shown[64] == []


def test_after_a_stop_the_agreement_covers_the_methods_that_finished(app, minilm):
    analyze_in_app(app, A, pair=B)
    app.switch_page("pages/attribution.py").run()
    analysis = app.session_state["result"]
    target = resolve_target(minilm, analysis)
    asked = []

    def stop_during_integrated_gradients():
        asked.append(1)
        return len(asked) > 4  # asked before each method and each pass: IG is stopped

    partial = attribute(minilm, analysis, target, should_stop=stop_during_integrated_gradients)
    assert not partial.completed and set(partial.scores()) == {"saliency", "input_x_gradient"}
    # What the page keeps after a Stop: the finished methods (on_partial), no agreement yet.
    key = (analysis.content_key, None, "", None, "pad", 32)
    app.session_state["attribution"] = {key: (partial, None)}
    app.run()
    assert not app.exception and not app.error
    assert [w.value for w in app.warning] == [t("attribution.partial", "en")]
    expected = agreement(minilm, analysis, partial)
    assert expected.methods == ("saliency", "input_x_gradient")
    _, agree = plotly_specs(app)  # the shaded text and the agreement map (no attention x grad)
    shown = decode(agree["data"][0]["z"]).astype(np.float64)
    assert np.allclose(shown, expected.heads[:, :, 0].numpy(), atol=1e-3, equal_nan=True)
    assert app.selectbox(key="attribution_sort").options == ["saliency", "input × gradient"]
    table = app.dataframe[-1].value
    assert list(table.columns) == ["source", "layer", "head", "saliency", "input × gradient"]
    best = expected.rows(sort_by="saliency")[0]
    first = table.iloc[0]
    assert (first["source"], first["saliency"]) == (best["source"], pytest.approx(best["saliency"]))


def test_words_toggle_sums_the_token_attributions_of_a_multi_piece_word(app, minilm):
    text = "An unbelievably tiny cat sat."
    analyze_in_app(app, text, pair=B)
    app.sidebar.toggle(key="words").set_value(True).run()
    app.switch_page("pages/attribution.py").run()
    app.number_input(key="attribution_steps").set_value(8)
    app.button(key="attribution_run").click().run()
    assert not app.exception and not app.error
    analysis = analyze(minilm, text, B)
    expected = attribute(minilm, analysis, resolve_target(minilm, analysis), steps=8)
    pieces = list(analysis.raw_tokens)
    start = pieces.index("un")  # WordPiece: un ##bel ##ie ##va ##bly
    end = start + 1
    while pieces[end].startswith("##"):
        end += 1
    assert end - start == 5
    shaded = plotly_specs(app)[0]["data"][0]
    words = [label.split(": ", 1)[1] for label in shaded["x"]]  # "position: word"
    assert len(words) == len(pieces) - 4 and words[start] == "unbelievably"
    column = start  # the words before it are one piece each
    for row, (method, scores) in enumerate(expected.scores().items()):
        raw = [float(v) for v in shaded["customdata"][row]]  # each word's raw score, .6g
        assert raw[column] == pytest.approx(float(scores[start:end].sum()), rel=1e-4, abs=1e-6)
        assert sum(raw) == pytest.approx(float(scores.sum()), rel=1e-3, abs=1e-5), method
    assert t("attribution.words_note", "en") in [c.value for c in app.caption]
