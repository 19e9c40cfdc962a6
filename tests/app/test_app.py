"""The app driven like a person would: type, click, switch pages, read tables and figure specs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from core import analyze, load_model
from tests.app.conftest import APP
from tests.app.helpers import analyze_in_app, decode, plotly_specs
from viz.attention_view import decode_payload
from viz.labels import axis_labels

HEATMAPS, VIEWS, STATISTICS = "pages/heatmaps.py", "pages/views.py", "pages/statistics.py"


@pytest.mark.parametrize("page", [HEATMAPS, VIEWS, STATISTICS])
def test_every_page_asks_for_input_when_nothing_is_analysed(page):
    # The start page analyses the default example; a link whose text cannot be given does not.
    app = AppTest.from_file(APP, default_timeout=180)
    app.query_params["example"] = "no-such-example"
    app.run()
    app.switch_page(page).run()
    assert not app.exception and "result" not in app.session_state
    assert "press **Analyze**" in app.info[0].value


def test_heatmap_shows_the_selected_head(app, minilm):
    text = "The animal didn't cross the street because it was too tired."
    analyze_in_app(app, text)
    expected = analyze(minilm, text)
    [spec] = plotly_specs(app)
    trace = spec["data"][0]
    assert trace["x"] == axis_labels(expected.tokens)
    assert np.allclose(decode(trace["z"]), expected.attentions[0, 0].numpy(), atol=1e-6)

    app.selectbox(key="heatmaps_layer").set_value(3).run()
    app.selectbox(key="heatmaps_head").set_value(None).run()  # average of all heads
    [spec] = plotly_specs(app)
    assert "Layer 3, average of 12 heads" in spec["layout"]["title"]["text"]
    z = decode(spec["data"][0]["z"])
    assert np.allclose(z, expected.attentions[3].mean(0).numpy(), atol=1e-6)

    app.selectbox(key="heatmaps_head").set_value(7).run()
    [spec] = plotly_specs(app)
    assert np.allclose(decode(spec["data"][0]["z"]), expected.attentions[3, 7].numpy(), atol=1e-6)


def test_pages_share_the_result_and_never_rerun_the_model(app):
    from ui.services import get_model

    analyze_in_app(app, "Switching pages keeps everything.")
    result = app.session_state["result"]
    app.selectbox(key="heatmaps_layer").set_value(4).run()
    model = get_model("minilm", None)
    calls = []
    handle = model.model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        for page in (STATISTICS, VIEWS, HEATMAPS, STATISTICS):
            app.switch_page(page).run()
            assert not app.exception
            assert app.session_state["result"] is result
        assert app.sidebar.text_area(key="text").value == "Switching pages keeps everything."
    finally:
        handle.remove()
    assert calls == []
    app.switch_page(HEATMAPS).run()
    assert app.selectbox(key="heatmaps_layer").value == 4  # the layer choice survived too


def test_statistics_tables_match_core(app, minilm):
    text = "Entropy tells how spread out attention is."
    analyze_in_app(app, text)
    expected = analyze(minilm, text)
    app.switch_page(STATISTICS).run()
    matrix, layers, attended = (frame.value for frame in app.dataframe)
    assert matrix.shape == (6, 12)
    assert np.allclose(matrix.to_numpy(), expected.head_entropy.numpy(), atol=1e-6)
    assert np.allclose(layers["layer entropy"], expected.layer_entropy.numpy(), atol=1e-6)
    assert len(attended) == 6 * 5
    assert attended["token"].iloc[0] == expected.most_attended(5)[0].token

    app.slider(key="stats_top_k").set_value(2).run()
    assert len(app.dataframe[2].value) == 6 * 2
    app.toggle(key="stats_per_head").set_value(True).run()
    per_head = app.dataframe[2].value
    assert len(per_head) == 6 * 12 * 2 and "head" in per_head.columns

    app.toggle(key="stats_normalized").set_value(True).run()
    normalized = app.dataframe[0].value
    assert np.allclose(normalized.to_numpy(), expected.normalized_head_entropy.numpy(), atol=1e-6)
    entropy_spec = plotly_specs(app)[0]
    assert np.allclose(
        decode(entropy_spec["data"][0]["z"]), expected.normalized_head_entropy.numpy(), atol=1e-6
    )
    sidebar = {button.proto.label for button in app.sidebar.get("download_button")}
    labels = [b.proto.label for b in app.main.get("download_button")]
    labels = [label for label in labels if label not in sidebar]
    assert sidebar == {"Session file (JSON)"}
    assert labels == [
        "Head statistics (CSV)",
        "Layer entropy (CSV)",
        "Most-attended tokens (CSV)",
        "Everything (JSON)",
    ]


def view_payload(at):
    [component] = at.get("bidi_component")
    assert component.proto.component_name == "attnscope_attention_view"
    return decode_payload(component.proto.bytes)


def test_head_view_is_the_default_and_sends_one_layer_as_bytes(app, minilm):
    text = "Our own views send bytes, not JSON."
    analyze_in_app(app, text)
    app.switch_page(VIEWS).run()
    assert app.button_group(key="view_kind").value == "head"
    header, blobs = view_payload(app)
    expected = analyze(minilm, text)
    assert header["mode"] == "head" and header["layer"] == 0
    assert header["tokens"] == list(expected.tokens)
    weights = blobs["weights"].astype(np.float32) / 65535  # (H, T, T)
    assert weights.shape == (12, expected.seq_len, expected.seq_len)
    assert np.allclose(weights, expected.layer(0).numpy(), atol=1e-5)

    app.selectbox(key="views_layer").set_value(4).run()
    header, blobs = view_payload(app)
    assert header["layer"] == 4
    assert np.allclose(blobs["weights"] / 65535, expected.layer(4).numpy(), atol=1e-5)


def test_model_view_sends_thumbnails_and_the_selected_head(app, minilm):
    analyze_in_app(app, "Thumbnails of every head.")
    app.selectbox(key="heatmaps_layer").set_value(2).run()
    app.selectbox(key="heatmaps_head").set_value(7).run()
    app.switch_page(VIEWS).run()
    app.button_group(key="view_kind").set_value("model").run()
    header, blobs = view_payload(app)
    assert header["mode"] == "model" and header["selected"] == [2, 7]
    assert blobs["thumbnails"].shape[:2] == (6, 12)
    expected = analyze(minilm, "Thumbnails of every head.")
    assert np.allclose(blobs["detail"][0] / 65535, expected.head(2, 7).numpy(), atol=1e-5)


def test_bertviz_views_offered_for_short_input_and_drawn_offline(app):
    analyze_in_app(app, "BertViz draws this offline.")
    app.switch_page(VIEWS).run()
    assert set(app.button_group(key="view_kind").options) >= {
        "BertViz head view",
        "BertViz model view",
    }
    app.button_group(key="view_kind").set_value("bertviz-head").run()
    [frame] = app.get("iframe")
    html = frame.proto.srcdoc
    assert "bertviz-head" in html and "cdnjs" not in html
    assert "d3 version" in html  # BertViz's own head_view.js is inside
    assert app.multiselect(key="bertviz_layers").value == list(range(6))

    app.button_group(key="view_kind").set_value("bertviz-model").run()
    app.multiselect(key="bertviz_layers").set_value([2]).run()
    app.multiselect(key="bertviz_heads").set_value([1, 5]).run()
    [frame] = app.get("iframe")
    assert "bertviz-model" in frame.proto.srcdoc
    assert '"include_layers": [2]' in frame.proto.srcdoc
    assert '"include_heads": [1, 5]' in frame.proto.srcdoc


def test_long_input_keeps_our_views_and_offers_bertviz_filtered(app):
    analyze_in_app(app, "many words here " * 130)  # ~390 tokens: ~88 MB as BertViz JSON
    app.switch_page(VIEWS).run()
    options = app.button_group(key="view_kind").options
    assert "BertViz head view" in options  # through its filters (tests/app/test_views_app.py)
    assert not any("MB to the browser" in caption.value for caption in app.caption)
    header, _ = view_payload(app)
    assert header["seq_len"] == app.session_state["result"].seq_len > 300


def test_a_layer_not_kept_is_recomputed_for_the_view(app, smollm2):
    app.sidebar.number_input(key="max_tokens").set_value(1024).run()
    # 721 tokens, just past the 705 that SmolLM2's 30 x 9 heads may hold: statistics only.
    text = "a long decoder input " * 180
    analyze_in_app(app, text, model="smollm2")
    result = app.session_state["result"]
    assert result.held_layers == ()
    app.switch_page(VIEWS).run()
    app.selectbox(key="views_layer").set_value(29).run()
    assert not app.exception
    header, blobs = view_payload(app)
    assert header["layer"] == 29 and header["seq_len"] == result.seq_len
    # The truth from transformers itself, on the text's own tokenization: a plain forward pass
    # costs about two thirds of analyze(), which computes every layer's statistics too.
    inputs = smollm2.tokenizer(text, return_tensors="pt")
    assert inputs["input_ids"][0].tolist() == list(result.token_ids)
    with torch.inference_mode():
        layer_29 = smollm2.model(**inputs, output_attentions=True).attentions[29][0]  # (H, T, T)
    assert np.allclose(blobs["weights"] / 65535, layer_29.numpy(), atol=1e-5)
    app.switch_page(HEATMAPS).run()  # the heatmap page recomputes what it needs too
    assert not app.exception
    [spec] = plotly_specs(app)
    assert np.allclose(decode(spec["data"][0]["z"]), layer_29[0].numpy(), atol=1e-6)


def test_sentence_pair_and_decoder(app):
    app.sidebar.selectbox(key="example").set_value("pair").run()
    assert app.sidebar.text_input(key="pair").value == "A dog slept on the rug."
    app.sidebar.button(key="analyze").click().run()
    result = app.session_state["result"]
    assert result.pair == "A dog slept on the rug."
    assert result.tokens[result.sentence_b_start] == "A"

    app.sidebar.selectbox(key="model_choice").set_value("smollm2").run()
    assert not [w for w in app.sidebar.text_input if w.key == "pair"]  # decoders take no pair
    app.sidebar.button(key="analyze").click().run()
    assert not app.exception and not app.error
    result = app.session_state["result"]
    assert (result.n_layers, result.n_heads, result.kind) == (30, 9, "decoder")
    assert result.pair is None


def test_japanese_example(app):
    app.sidebar.selectbox(key="example").set_value("neko").run()
    app.sidebar.button(key="analyze").click().run()
    [spec] = plotly_specs(app)
    assert "1: 吾 [UNK]" in spec["data"][0]["x"]  # MiniLM does not know 吾, and says so


def test_truncation_is_announced(app):
    app.sidebar.number_input(key="max_tokens").set_value(8).run()
    app.sidebar.text_area(key="text").set_value("one two three four five six seven eight nine ten")
    app.sidebar.button(key="analyze").click().run()
    assert app.session_state["result"].seq_len == 8
    assert "only the first 8 were analysed" in app.warning[0].value


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text_is_a_message_and_keeps_the_result(app, text):
    analyze_in_app(app, "A good first text.")
    before = app.session_state["result"]
    app.sidebar.text_area(key="text").set_value(text)
    app.sidebar.button(key="analyze").click().run()
    assert not app.exception
    assert "The text is empty" in app.error[0].value
    assert app.session_state["result"] is before
    assert len(plotly_specs(app)) == 1  # the previous heatmap is still there


def broken_weights_folder(tmp_path):
    from core.engine.models import BUILTIN_MODELS, _package_dir

    source = _package_dir(BUILTIN_MODELS["minilm"]) / "model"
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    weights = (source / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(weights[:1000])
    return tmp_path


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("no-such-owner/no-such-model", "Could not find the model"),
        ("../../../definitely/not/here", "neither a built-in model"),
        ("", "No model given"),
        ("NOT_A_MODEL_FOLDER", "is not a model: it has no config.json"),
        ("BROKEN_WEIGHTS", "Could not load"),
    ],
)
def test_bad_models_are_messages_and_the_app_keeps_working(app, tmp_path, model, message):
    if model == "NOT_A_MODEL_FOLDER":
        model = str(tmp_path)
    elif model == "BROKEN_WEIGHTS":
        model = str(broken_weights_folder(tmp_path))
    app.sidebar.selectbox(key="model_choice").set_value("other").run()
    app.sidebar.text_input(key="custom_model").set_value(model)
    app.sidebar.button(key="analyze").click().run()
    assert not app.exception
    assert message in app.error[0].value
    assert "Traceback" not in app.error[0].value
    # The next good request works in the same session.
    app.sidebar.selectbox(key="model_choice").set_value("minilm").run()
    app.sidebar.button(key="analyze").click().run()
    assert not app.error and app.session_state["result"].n_layers == 6


def test_custom_model_folder_is_analysed(app):
    from core.engine.models import BUILTIN_MODELS, _package_dir

    folder = str(_package_dir(BUILTIN_MODELS["minilm"]) / "model")
    app.sidebar.selectbox(key="model_choice").set_value("other").run()
    app.sidebar.text_input(key="custom_model").set_value(folder)
    app.sidebar.button(key="analyze").click().run()
    assert not app.error
    result = app.session_state["result"]
    assert result.model_name == folder and result.n_heads == 12
    expected = analyze(load_model(folder), result.text)
    assert torch.allclose(result.head_entropy, expected.head_entropy, atol=1e-6)
