"""The Views page's additions for BertViz users, driven through the app: BertViz past 100 tokens
through its layer and head filters, the neuron view on a GQA model with RoPE, and the attention
weights as .npz / .safetensors files that load back to the analysis."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from streamlit.runtime.media_file_manager import MediaFileManager

from core import analyze
from core.engine.budget import DOWNLOAD_BUDGET_BYTES, attention_bytes
from core.engine.export import read_weights_file
from core.methods.neuron import neuron_layer
from tests.app.helpers import analyze_in_app
from viz.attention_view import decode_payload
from viz.bertviz_views import BERTVIZ_BYTE_BUDGET

VIEWS = "pages/views.py"


def bertviz_params(html: str) -> dict:
    """The data BertViz draws from: the JSON that replaced PYTHON_PARAMS in its script."""
    start = html.index('{"attention": ')
    params, _ = json.JSONDecoder().raw_decode(html, start)
    return params


def test_bertviz_is_offered_past_100_tokens_through_its_filters(app, minilm):
    text = "many words here " * 130  # 392 tokens: all 72 heads would be ~88 MB of JSON
    analyze_in_app(app, text)
    expected = analyze(minilm, text)
    app.switch_page(VIEWS).run()
    assert "BertViz head view" in app.button_group(key="view_kind").options
    app.button_group(key="view_kind").set_value("bertviz-head").run()
    assert not app.exception
    # It starts with the current layer and as many heads as fit BertViz's 6 MB.
    per_head = attention_bytes(1, 1, expected.seq_len, bytes_per_weight=8)
    fitting = BERTVIZ_BYTE_BUDGET // per_head
    assert app.multiselect(key="bertviz_layers").value == [0]
    assert app.multiselect(key="bertviz_heads").value == list(range(fitting))
    assert any("all 6 layers × 12 heads" in c.value for c in app.caption)
    [frame] = app.get("iframe")
    params = bertviz_params(frame.proto.srcdoc)
    assert params["include_layers"] == [0]
    weights = np.array(params["attention"][0]["attn"])  # (1, H', T, T), 4 decimals
    assert weights.shape == (1, fitting, expected.seq_len, expected.seq_len)
    assert np.allclose(weights[0], expected.layer(0)[:fitting].numpy(), atol=5e-5)
    assert params["attention"][0]["left_text"] == list(expected.tokens)
    assert len(frame.proto.srcdoc) < BERTVIZ_BYTE_BUDGET + 500_000  # the vendored scripts

    app.multiselect(key="bertviz_heads").set_value(list(range(12))).run()  # ~15 MB: refused
    assert app.get("iframe") == []
    assert "pick fewer layers or heads" in app.warning[0].value

    app.button_group(key="view_kind").set_value("bertviz-model").run()
    app.multiselect(key="bertviz_layers").set_value([2, 5]).run()
    app.multiselect(key="bertviz_heads").set_value([7]).run()
    [frame] = app.get("iframe")
    params = bertviz_params(frame.proto.srcdoc)
    assert params["include_layers"] == [2, 5] and params["include_heads"] == [7]
    weights = np.array(params["attention"][0]["attn"])  # (2, 1, T, T)
    assert np.allclose(weights[1, 0], expected.head(5, 7).numpy(), atol=5e-5)


def neuron_payload(at):
    [component] = at.get("bidi_component")
    return decode_payload(component.proto.bytes)


def test_neuron_view_on_a_gqa_model_after_rope(app, smollm2):
    text = "The capital of France is Paris, and the capital of Italy is"
    analyze_in_app(app, text, model="smollm2")
    expected = analyze(smollm2, text)
    app.switch_page(VIEWS).run()
    app.button_group(key="view_kind").set_value("neuron").run()
    assert not app.exception
    # The default query is the last token, which sees every key.
    assert app.selectbox(key="neuron_query").value == expected.seq_len - 1
    app.selectbox(key="neuron_layer").set_value(14).run()
    app.selectbox(key="neuron_head").set_value(4).run()
    app.selectbox(key="neuron_query").set_value(7).run()
    header, blobs = neuron_payload(app)
    assert header["mode"] == "neuron"
    assert (header["layer"], header["head"], header["query_pos"]) == (14, 4, 7)
    assert header["kv_head"] == 1 and header["n_kv_heads"] == 3 and header["rotary"]
    assert header["head_dim"] == 64 and header["scaling"] == pytest.approx(64**-0.5)
    truth = neuron_layer(smollm2, expected, 14).view(4, 7)
    assert np.allclose(blobs["query"], truth.query.numpy(), atol=1e-6)
    assert np.allclose(blobs["keys"], truth.keys.numpy(), atol=1e-6)
    assert np.allclose(blobs["products"], blobs["query"] * blobs["keys"], atol=1e-6)
    # the model's own attention row, masked past the query
    assert np.allclose(blobs["probabilities"], expected.head(14, 4)[7].numpy(), atol=1e-5)
    assert np.isneginf(blobs["scores"][8:]).all() and np.isfinite(blobs["scores"][:8]).all()
    assert "q and k are shown after the rotation" in header["strings"]["neuron_rotary"]
    assert any("softmax of the scores" in c.value for c in app.caption)


def weights_buttons(at) -> list:
    """The weights download button (other pages' parts may add download buttons of their own)."""
    return [b for b in at.get("download_button") if b.proto.label.startswith("Download (.")]


def weights_builds(made: list) -> list:
    """The weights files' builders among the deferred downloads, newest last."""
    return [build for name, build in made if name.startswith("attention_")]


@pytest.fixture
def deferred(monkeypatch):
    """The files download buttons would build when pressed: (file name, callable)."""
    made: list[tuple[str, object]] = []
    original = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        made.append((file_name, data_callable))
        return original(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return made


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_weights_download_loads_back_to_the_analysis(app, minilm, deferred, fmt):
    text = "The animal didn't cross the street because it was too tired."
    analyze_in_app(app, text)
    expected = analyze(minilm, text)
    app.switch_page(VIEWS).run()
    assert app.multiselect(key="weights_layers").value == [0]  # the layer on screen
    app.multiselect(key="weights_layers").set_value([4, 1]).run()
    app.multiselect(key="weights_heads").set_value([3, 11]).run()
    app.radio(key="weights_format").set_value(fmt).run()
    assert not app.exception
    [button] = weights_buttons(app)
    assert button.proto.label == f"Download (.{fmt})"
    name, build = [made for made in deferred if made[0].startswith("attention_")][-1]
    assert name == f"attention_minilm_{expected.seq_len}.{fmt}"
    weights, meta = read_weights_file(build(), fmt)
    assert np.array_equal(weights[0], expected.layer(4)[[3, 11]].numpy())
    assert np.array_equal(weights[1], expected.layer(1)[[3, 11]].numpy())
    assert meta["tokens"] == list(expected.tokens)
    assert meta["token_ids"] == list(expected.token_ids)
    assert meta["layers"] == [4, 1] and meta["heads"] == [3, 11]


def test_weights_download_is_size_checked_and_recomputes_layers_not_held(app, smollm2, deferred):
    app.sidebar.number_input(key="max_tokens").set_value(1024).run()
    text = "a long decoder input " * 180  # 721 tokens: past what SmolLM2 holds, statistics only
    analyze_in_app(app, text, model="smollm2")
    result = app.session_state["result"]
    assert result.held_layers == ()
    app.switch_page(VIEWS).run()
    app.multiselect(key="weights_layers").set_value(list(range(15))).run()
    size = attention_bytes(15, 9, result.seq_len)  # 281 MB
    assert size > DOWNLOAD_BUDGET_BYTES
    assert weights_buttons(app) == []
    assert f"{size / 1e6:.1f} MB is more than a download may hold" in app.warning[0].value
    app.multiselect(key="weights_layers").set_value([1]).run()
    app.multiselect(key="weights_heads").set_value([2]).run()
    assert len(weights_buttons(app)) == 1
    build = weights_builds(deferred)[-1]
    weights, meta = read_weights_file(build(), "npz")  # layer 1 recomputed for the file
    assert weights.shape == (1, 1, result.seq_len, result.seq_len)
    assert meta["token_ids"] == list(result.token_ids)
    # An independent truth: softmax(q·k / sqrt(d) + mask) from the layer's own q and k.
    captured = neuron_layer(smollm2, result, 1)
    q, k = captured.queries[2], captured.keys[captured.kv_head(2)]  # (T, d) each
    truth = torch.softmax(q @ k.T * captured.scaling + captured.mask, dim=-1)
    assert np.allclose(weights[0, 0], truth.numpy(), atol=1e-5)
