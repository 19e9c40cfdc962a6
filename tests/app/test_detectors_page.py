"""The Heads page's detector scores, custom pattern and query-key map through AppTest: every
number shown (heatmaps, tables, map points) equals core's, on MiniLM and SmolLM2, in English and
Japanese."""

from __future__ import annotations

from functools import reduce

import numpy as np

from core import analyze
from core.methods.detector_scores import detector_scores, score_pattern, text_scores
from core.methods.detectors import custom_pattern
from core.methods.qk_map import qk_map_of_analysis
from core.policy.i18n import t
from tests.app.helpers import analyze_in_app, decode, plotly_specs

TEXT = "The cat sat on the mat. The cat ran to the door."


def test_detector_scores_equal_core(app, smollm2):
    analyze_in_app(app, TEXT, model="smollm2")
    app.switch_page("pages/heads.py").run()
    app.toggle(key="detectors_show").set_value(True).run()
    assert not app.exception and not app.error
    analysis = analyze(smollm2, TEXT)
    on_text = text_scores(smollm2, analysis)
    induction = detector_scores(smollm2, n_tokens=20, n_sequences=4, seed=0).induction
    specs = plotly_specs(app)  # head metric, three detector maps, custom pattern, its pattern
    by_title = {spec["layout"]["title"]["text"]: spec for spec in specs}
    for name, expected in (
        ("previous_token", on_text.previous_token),
        ("duplicate_token", on_text.duplicate_token),
        ("induction", induction),
    ):
        z = decode(by_title[t(f"detectors.{name}_title", "en")]["data"][0]["z"])
        assert z.shape == (30, 9) and np.allclose(z, expected.numpy(), atol=1e-6), name
    table = app.dataframe[2].value  # head statistics, pattern rules, detector scores
    assert len(table) == 30 * 9 and list(table.columns)[:2] == ["layer", "head"]
    assert np.allclose(table["induction"], induction.reshape(-1).numpy(), atol=1e-6)
    assert np.allclose(table["duplicate_token"], on_text.duplicate_token.reshape(-1).numpy())
    top = int(np.argmax(table["induction"]))
    assert (table["layer"][top], table["head"][top]) == (18, 6)  # SmolLM2's top induction head

    # A custom pattern: every query attends to the first token.
    app.selectbox(key="detectors_custom").set_value("first_token").run()
    pattern = custom_pattern("first_token", analysis.tokens, analysis.special, causal=True)
    expected = score_pattern(smollm2, analysis, pattern)
    title = t("detectors.custom_title", "en", pattern=t("detectors.pattern_first_token", "en"))
    spec = {s["layout"]["title"]["text"]: s for s in plotly_specs(app)}[title]
    assert np.allclose(decode(spec["data"][0]["z"]), expected.numpy(), atol=1e-6)
    assert np.allclose(app.dataframe[3].value["custom"], expected.reshape(-1).numpy(), atol=1e-6)


def test_custom_token_pattern_and_qk_map_in_japanese(app, minilm):
    app.sidebar.selectbox(key="lang").set_value("ja").run()
    analyze_in_app(app, "A <b>bold</b> cat. A cat!")
    app.switch_page("pages/heads.py").run()
    app.toggle(key="detectors_show").set_value(True).run()
    app.selectbox(key="detectors_custom").set_value("token").run()
    assert app.text_input(key="detectors_target").value == "[CLS]"
    app.text_input(key="detectors_target").set_value("[SEP]").run()
    assert not app.exception and not app.error
    analysis = analyze(minilm, "A <b>bold</b> cat. A cat!")
    pattern = custom_pattern(
        "token", analysis.tokens, analysis.special, causal=False, target="[SEP]"
    )
    expected = score_pattern(minilm, analysis, pattern)  # attention on [SEP], every query
    assert np.allclose(expected.numpy(), analysis.attentions[..., -1].mean(-1).numpy(), atol=1e-6)
    title = t("detectors.custom_title", "ja", pattern=t("detectors.pattern_token", "ja"))
    spec = {s["layout"]["title"]["text"]: s for s in plotly_specs(app)}[title]
    assert np.allclose(decode(spec["data"][0]["z"]), expected.numpy(), atol=1e-6)
    assert "誘導スコア" in app.dataframe[2].value.columns

    app.toggle(key="qk_show").set_value(True).run()
    app.selectbox(key="qk_layer").set_value(3).run()
    app.selectbox(key="qk_head").set_value(4).run()
    assert not app.exception and not app.error
    found = qk_map_of_analysis(minilm, analysis, 3, 4)
    spec = plotly_specs(app)[-1]
    assert spec["layout"]["title"]["text"].startswith("レイヤー 3、ヘッド 4")
    query, key = spec["data"]  # coloured by query or key: queries first
    assert np.allclose(decode(query["x"]), found.points[: found.n_tokens, 0], atol=1e-5)
    assert np.allclose(decode(key["y"]), found.points[found.n_tokens :, 1], atol=1e-5)
    # The text's "<b>" (MiniLM: the tokens "<", "b", ">") is escaped; only our own tags remain.
    own_tags = ("<b>", "</b>", "<br>")
    assert not any(
        "<" in reduce(lambda s, tag: s.replace(tag, ""), own_tags, text) for text in query["text"]
    )
    assert any("&lt;" in text and "&gt;" in text for text in query["text"])
    points = app.dataframe[-1].value
    assert np.allclose(points["x"], found.points[:, 0], atol=1e-5)
