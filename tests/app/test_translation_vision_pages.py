"""The Translation and Vision pages through AppTest, on tiny random models saved to folders and
loaded by the app's own loader: their figures against core's numbers, and the messages for an
empty target, a text for an image model and an image model on the text pages, in both languages."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.engine.models import load_model
from core.engine.seq2seq import analyze_pair, translate
from core.engine.vision import analyze_image
from core.methods.alignment import alignment
from core.methods.patches import patch_map, patch_rollout
from core.methods.sampling import GenerationConfig
from core.policy.i18n import t
from tests.app.conftest import APP
from tests.app.helpers import decode, plotly_specs
from tests.unit.tiny_seq2seq_vision import SEQ2SEQ, VISION, save
from ui.vision import EXAMPLE_IMAGE

SOURCE, TARGET = "the cat sat on the mat", "a dog slept"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "marian": str(save(SEQ2SEQ["marian"](), root / "marian")),
        "vit": str(save(VISION["deit"](), root / "deit")),
    }


def _with_model(folder: str, lang: str = "en") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["lang"] = lang
    at.run()
    at.sidebar.selectbox(key="model_choice").set_value("other").run()
    at.sidebar.text_input(key="custom_model").set_value(folder).run()
    assert not at.exception, at.exception
    return at


def _alignment_lines(spec) -> dict[tuple[int, int], float]:
    return {
        (int(tr["customdata"][0][0]), int(tr["customdata"][0][1])): tr["customdata"][0][2]
        for tr in spec["data"]
        if tr.get("name") == "line"
    }


def test_translation_given_and_generated_match_core(folders):
    at = _with_model(folders["marian"])
    at.switch_page("pages/translation.py").run()
    at.text_area(key="translation_source").set_value(SOURCE)
    at.text_area(key="translation_target").set_value(TARGET)
    at.button(key="translation_run").click().run()
    assert not at.exception and not at.error
    loaded = load_model(folders["marian"], device="cpu")
    result = analyze_pair(loaded, SOURCE, TARGET)
    expected = alignment(loaded, result, layer=1, head=None, words=True)
    specs = plotly_specs(at)
    lines = _alignment_lines(specs[0])
    weights = expected.weights.numpy()
    wanted = {(i, j): float(weights[i, j]) for i, j in zip(*np.nonzero(weights >= 0.05))}
    assert lines.keys() == wanted.keys() and lines
    assert all(abs(lines[k] - wanted[k]) < 1e-6 for k in wanted)
    assert np.allclose(decode(specs[1]["data"][0]["z"]), weights, atol=1e-6)
    # the cross-attention heatmap (layer 0, head average): target rows x source columns
    cross = decode(specs[2]["data"][0]["z"])
    assert cross.shape == (4, 7)
    assert np.allclose(cross, result.cross.layer_average(0).numpy(), atol=1e-6)

    at.radio(key="translation_mode").set_value("generate").run()
    at.number_input(key="translation_max_new").set_value(4)
    at.button(key="translation_run").click().run()
    assert not at.exception and not at.error
    generated = translate(loaded, SOURCE, GenerationConfig(max_new_tokens=4, greedy=True))
    assert at.text[0].value == generated.target_text
    step_row = decode(plotly_specs(at)[2]["data"][0]["z"])  # the last step's row
    assert np.allclose(step_row[0], generated.steps[-1].cross[-1].mean(0).numpy(), atol=1e-6)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_an_empty_target_says_so(folders, lang):
    at = _with_model(folders["marian"], lang)
    at.switch_page("pages/translation.py").run()
    at.text_area(key="translation_target").set_value("  ")
    at.button(key="translation_run").click().run()
    assert not at.exception
    assert at.error[0].value == t("error.empty_target", lang)


def test_vision_example_overlay_and_rollout_match_core(folders):
    at = _with_model(folders["vit"])
    at.switch_page("pages/vision.py").run()
    at.button(key="vision_example").click().run()
    assert not at.exception and not at.error
    loaded = load_model(folders["vit"], device="cpu")
    image = analyze_image(loaded, Image.open(EXAMPLE_IMAGE).convert("RGB"))
    overlay = plotly_specs(at)[0]
    heat = next(tr for tr in overlay["data"] if tr["type"] == "heatmap")
    expected = patch_map(image, image.analysis.layer_average(1))  # [CLS], last layer
    assert np.allclose(decode(heat["z"]), expected.numpy(), atol=1e-6)
    assert heat["x"] == [0, 8, 16, 24, 32] and heat["opacity"] == 0.6
    at.selectbox(key="vision_shown").set_value("rollout")
    at.selectbox(key="vision_query").set_value(2 + 5)  # patch 1,1
    at.run()
    heat = next(tr for tr in plotly_specs(at)[0]["data"] if tr["type"] == "heatmap")
    rolled = patch_map(image, patch_rollout(image)[1], 2 + 5)
    assert np.allclose(decode(heat["z"]), rolled.numpy(), atol=1e-6)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_text_for_an_image_model(folders, lang):
    at = _with_model(folders["vit"], lang)
    at.sidebar.text_area(key="text").set_value("the cat sat")
    at.sidebar.button(key="analyze").click().run()
    assert not at.exception
    message = at.error[0].value.replace("\\", "")
    assert message == t("error.text_for_image_model", lang, model=folders["vit"])


def test_the_encoders_attention_opens_on_the_other_pages(folders):
    at = _with_model(folders["marian"])
    at.switch_page("pages/translation.py").run()
    at.text_area(key="translation_source").set_value(SOURCE)
    at.text_area(key="translation_target").set_value(TARGET)
    at.button(key="translation_run").click().run()
    at.button(key="translation_open_encoder").click().run()
    assert not at.exception and not at.error
    loaded = load_model(folders["marian"], device="cpu")
    encoder = analyze_pair(loaded, SOURCE, TARGET).encoder
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception and not at.error
    z = decode(plotly_specs(at)[0]["data"][0]["z"])
    assert z.shape == (7, 7)
    assert any(
        np.allclose(z, m.numpy(), atol=1e-6) for m in (encoder.head(0, 0), encoder.layer_average(0))
    )
    at.switch_page("pages/statistics.py").run()
    assert not at.exception and not at.error
    entropy = decode(plotly_specs(at)[0]["data"][0]["z"])
    assert np.allclose(entropy, encoder.head_entropy.numpy(), atol=1e-5)
