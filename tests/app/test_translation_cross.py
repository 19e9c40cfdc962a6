"""The Translation page's cross-attention sections through AppTest, on a tiny random Marian model
saved to a folder: the head view and the model view carry the target tokens as queries and the
source tokens as keys with core's weights, the head statistics heatmap and table equal core's,
over tokens and over words."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.engine.models import load_model
from core.engine.seq2seq import analyze_pair
from core.methods.cross_words import cross_units
from core.methods.head_metrics import CROSS_NOT_APPLICABLE
from core.methods.head_stats import HeadStats
from tests.app.conftest import APP
from tests.app.helpers import decode, plotly_specs
from tests.unit.tiny_seq2seq_vision import SEQ2SEQ, save
from ui.translation_cross import CROSS_METRICS
from viz.attention_view import decode_payload

SOURCE, TARGET = "the cat sat on the mat", "a dog slept"


@pytest.fixture(scope="module")
def marian(tmp_path_factory):
    return str(save(SEQ2SEQ["marian"](), tmp_path_factory.mktemp("models") / "marian"))


def _payload(at) -> tuple[dict, dict]:
    [component] = at.get("bidi_component")
    return decode_payload(component.proto.bytes)


def _fixed(weights: torch.Tensor) -> np.ndarray:
    return (weights.clamp(0, 1) * 65535).round().numpy()


def test_cross_views_and_head_statistics_match_core(marian):
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.sidebar.selectbox(key="model_choice").set_value("other").run()
    at.sidebar.text_input(key="custom_model").set_value(marian).run()
    at.switch_page("pages/translation.py").run()
    at.text_area(key="translation_source").set_value(SOURCE)
    at.text_area(key="translation_target").set_value(TARGET)
    at.button(key="translation_run").click().run()
    assert not at.exception and not at.error
    loaded = load_model(marian, device="cpu")
    result = analyze_pair(loaded, SOURCE, TARGET)
    cross = result.cross  # (2, 2, 4, 7)

    # head view of layer 0: target tokens left (queries), source tokens right (keys)
    header, blobs = _payload(at)
    assert header["mode"] == "head" and header["layer"] == 0
    assert header["tokens"] == list(result.target_tokens) == ["a", "dog", "slept", "</s>"]
    assert header["key_tokens"] == list(result.source_tokens) and header["key_len"] == 7
    assert np.array_equal(blobs["weights"], _fixed(cross.layer(0)))

    # head statistics: the heatmap (first metric: entropy) and the table, N/A columns left out
    stats = HeadStats.from_cross_attention(
        cross.weights, cross.key_tokens, key_special=[t == "</s>" for t in cross.key_tokens]
    )
    heat = plotly_specs(at)[4]  # alignment lines, alignment heatmap, cross heatmap, entropy
    assert np.allclose(decode(heat["data"][0]["z"]), stats.entropy.numpy(), atol=1e-6)
    metrics = at.selectbox(key="translation_cross_metric").options
    assert len(metrics) == len(CROSS_METRICS) and "mean distance (tokens)" not in metrics
    table = at.dataframe[-1].value
    assert len(table) == 4 and len(table.columns) == 3 + len(CROSS_METRICS)
    assert np.allclose(table["[SEP] share"], stats.sep.flatten().numpy(), atol=1e-6)
    assert not set(CROSS_NOT_APPLICABLE) & set(table.columns)

    # model view: layer 1 head 1 opened, rectangular thumbnails (4 x 7, no pooling needed)
    at.selectbox(key="translation_layer").set_value(1)
    at.selectbox(key="translation_head").set_value(1)
    at.button_group(key="translation_cross_view_kind").set_value("model").run()
    header, blobs = _payload(at)
    assert header["mode"] == "model" and header["selected"] == [1, 1]
    assert blobs["thumbnails"].shape == (2, 2, 4, 7)
    assert np.array_equal(blobs["detail"][0], _fixed(cross.head(1, 1)))

    # words: every view and statistic reads the merged cross-attention
    at.toggle(key="translation_cross_words").set_value(True).run()
    assert not at.exception
    words = cross_units(loaded, result, words=True).cross
    header, blobs = _payload(at)
    assert header["tokens"] == list(words.query_tokens)
    assert header["key_tokens"] == list(words.key_tokens)
    assert np.array_equal(blobs["detail"][0], _fixed(words.head(1, 1)))
