"""What the pages show of text and labels (issue 11, "Text and labels"): generated text in whole
characters, special tokens named, and counts and names a person can read."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.app.helpers import analyze_in_app, plotly_specs

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_app(lang: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    at.query_params["lang"] = lang
    at.run()
    return at


def generate_in_app(at: AppTest, prompt: str) -> AppTest:
    """Generate with the page's own defaults (sampled, seed 0, 24 new tokens)."""
    at.sidebar.selectbox(key="model_choice").set_value("smollm2").run()
    at.switch_page("pages/generate.py").run()
    at.text_area(key="generate_prompt").set_value(prompt)
    at.button(key="generate_run").click().run()
    assert not at.exception, at.exception
    return at


def test_japanese_generation_shows_whole_characters_in_text_and_labels():
    at = generate_in_app(open_app("ja"), "日本の首都は")
    output = at.text[0].value
    assert output.startswith("タクシット") and "\ufffd" not in output
    heads, _ = plotly_specs(at)  # the last step: its context's labels
    labels = heads["data"][0]["x"]
    assert not any("\ufffd" in label for label in labels), labels[-3:]
    assert labels[-1].endswith("(2/2)") and labels[-2].endswith("(1/2)")
    at.sidebar.toggle(key="words").set_value(True).run()  # words: one per character
    heads, _ = plotly_specs(at)
    words = heads["data"][0]["x"]
    assert not any("\ufffd" in label for label in words), words[-3:]


def test_the_end_of_turn_token_is_named_not_printed():
    at = generate_in_app(open_app("en"), "The capital of France is")
    output = at.text[0].value
    assert output.lstrip().startswith("Paris.") and "<|im_end|>" not in output
    summary = at.caption[0].value
    assert "<|im_end|>" in summary and "17 new tokens" in summary, summary


def test_an_unknown_token_is_marked_in_the_heatmap_and_the_tokens_table(app):
    analyze_in_app(app, "I love 😀 pizza")
    [spec] = plotly_specs(app)
    assert spec["data"][0]["x"][3] == "3: 😀 [UNK]"
    tokens = app.dataframe[0].value
    assert list(tokens.iloc[:, 1])[3] == "😀 [UNK]"
    app.sidebar.toggle(key="words").set_value(True).run()
    [spec] = plotly_specs(app)
    assert "3: 😀 [UNK]" in spec["data"][0]["x"]


CODE = "def add(a, b):\n    return a + b\n\nprint(add(1, 2))"


def test_words_on_code_split_at_brackets_and_the_header_counts_words(app, minilm):
    from core import analyze
    from core.methods.words import word_analysis

    analyze_in_app(app, CODE)
    tokens = analyze(minilm, CODE)
    assert f"{tokens.seq_len} tokens" in app.caption[0].value
    app.sidebar.toggle(key="words").set_value(True).run()
    words = word_analysis(minilm, tokens)
    [spec] = plotly_specs(app)
    labels = [label.split(": ", 1)[1] for label in spec["data"][0]["x"]]
    assert labels == list(words.tokens)
    assert labels[1:9] == ["def", "add", "(", "a", ",", "b", ")", ":"]
    assert labels[-6:-1] == ["1", ",", "2", ")", ")"]
    header = app.caption[0].value
    assert f"{words.seq_len} words ({tokens.seq_len} tokens)" in header, header


def test_the_heatmap_title_says_which_attention_it_shows(app):
    analyze_in_app(app, "The animal didn't cross the street because it was too tired.")
    app.selectbox(key="heatmaps_layer").set_value(0).run()
    app.button_group(key="heatmaps_effective").set_value("rollout").run()
    [spec] = plotly_specs(app)
    assert spec["layout"]["title"]["text"] == "Attention rollout after layer 0, from layer 0"
    app.button_group(key="heatmaps_effective").set_value("norm_residual").run()
    [spec] = plotly_specs(app)
    assert spec["layout"]["title"]["text"] == "Norm-based attention with the residual, layer 0"
    app.button_group(key="heatmaps_effective").set_value("norm").run()
    app.selectbox(key="heatmaps_head").set_value(3).run()
    [spec] = plotly_specs(app)
    assert spec["layout"]["title"]["text"] == "Norm-based attention, layer 0, head 3"
