"""The Translation and Vision pages in Chromium, on tiny random models saved to folders and typed
into the sidebar: the alignment lines and the overlay the browser drew hold core's numbers; a
non-image upload gets its message. Screenshots for the README."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.appserver import choose_option
from core.engine.models import load_model
from core.engine.seq2seq import analyze_pair
from core.engine.vision import analyze_image
from core.methods.alignment import alignment
from core.methods.patches import patch_map
from core.policy.i18n import t
from tests.unit.tiny_seq2seq_vision import SEQ2SEQ, VISION_SIZES, save, tiny_deit
from ui.vision import EXAMPLE_IMAGE

SCREENSHOTS = Path(__file__).resolve().parents[2] / "assets" / "screenshots"
SOURCE, TARGET = "the cat sat on the mat", "a dog slept on the mat"

# Each alignment line's (target, source, weight), and how many line paths the SVG holds.
LINES = """el => ({
    lines: el.data.filter(d => d.name === 'line').map(d => d.customdata[0]),
    drawn: el.querySelectorAll('g.scatterlayer g.trace path.js-line').length,
})"""
# The overlay heatmap as drawn (calcdata of the second trace), its cell edges and opacity.
OVERLAY = """el => ({
    z: Array.from(el.calcdata[1][0].z, row => Array.from(row)),
    x: Array.from(el.data[1].x),
    opacity: el._fullData[1].opacity,
    images: el.querySelectorAll('g.imagelayer image, g.layer-below image, image').length,
})"""

# Where image pixel (x, y) is on the screen.
CLICK = """(el, [x, y]) => {
    const box = el.getBoundingClientRect(), xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis;
    return {x: box.left + xa._offset + xa.d2p(x), y: box.top + ya._offset + ya.d2p(y)};
}"""


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "marian": str(save(SEQ2SEQ["marian"](), root / "marian")),
        "deit": str(save(_deit_224(), root / "deit")),
    }


def _idle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )


def _deit_224():
    """Tiny DeiT on 224-pixel images in 32-pixel patches (7 x 7): a picture worth a screenshot."""
    from transformers import DeiTConfig, DeiTModel, ViTImageProcessor

    tiny = tiny_deit()
    config = DeiTConfig(**{**VISION_SIZES, "image_size": 224, "patch_size": 32})
    model = DeiTModel(config).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    processor = ViTImageProcessor(size={"height": 224, "width": 224})
    return type(tiny)(**{**tiny.__dict__, "model": model, "tokenizer": processor})


def _open_page(page, name: str) -> None:
    """Click the page's link, first unfolding the sidebar's page list if it hides some."""
    more = page.get_by_test_id("stSidebarNavViewButton")
    if more.count() and "more" in more.inner_text().lower():
        more.click()
    page.get_by_role("link", name=name, exact=True).click()


def _use_model(page, folder: str) -> None:
    choose_option(page, "Model", "Other: Hugging Face id or folder")
    box = page.get_by_role("textbox", name="Model id or folder")
    box.fill(folder)
    box.press("Enter")
    _idle(page)


def test_translation_alignment_is_drawn_with_core_numbers(page, folders):
    _use_model(page, folders["marian"])
    _open_page(page, "Translation")
    page.get_by_role("heading", name="Translation: encoder-decoder attention").wait_for()
    source = page.get_by_role("textbox", name="Source text")
    source.fill(SOURCE)
    source.press("Control+Enter")
    target = page.get_by_role("textbox", name="Target text (the translation)")
    target.fill(TARGET)
    target.press("Control+Enter")
    _idle(page)  # a click during the rerun the text started could be lost
    page.get_by_role("button", name="Translate").click()
    chart = page.locator(".js-plotly-plot").first
    # a horizontal line has an empty box, which Playwright counts as hidden: wait for it to exist
    line = chart.locator("g.scatterlayer path.js-line").first
    line.wait_for(state="attached", timeout=120_000)
    _idle(page)
    drawn = chart.evaluate(LINES)

    loaded = load_model(folders["marian"], device="cpu")
    expected = alignment(loaded, analyze_pair(loaded, SOURCE, TARGET), layer=1)
    weights = expected.weights.numpy()
    wanted = {(int(i), int(j)): float(weights[i, j]) for i, j in zip(*np.nonzero(weights >= 0.05))}
    got = {(int(i), int(j)): w for i, j, w in drawn["lines"]}
    assert got.keys() == wanted.keys() and len(got) >= 7
    assert all(abs(got[k] - wanted[k]) < 1e-6 for k in wanted)
    assert drawn["drawn"] == len(wanted)  # one SVG path per line
    chart.scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "translation.png", full_page=False)
    assert not page.watch.dialogs and not page.watch.failed and not page.watch.external
    assert not page.watch.errors


def test_vision_overlay_is_drawn_with_core_numbers(page, folders, tmp_path):
    _use_model(page, folders["deit"])
    _open_page(page, "Vision")
    page.get_by_role("heading", name="Vision: attention over image patches").wait_for()

    not_image = tmp_path / "notes.png"
    not_image.write_bytes(b"just some text, not a PNG")
    main = page.get_by_test_id("stMainBlockContainer")
    main.locator("input[type=file]").set_input_files(str(not_image))
    page.get_by_role("button", name="Analyse the image").click()
    page.get_by_text(t("error.not_an_image", "en")).wait_for(timeout=60_000)

    _idle(page)
    page.get_by_role("button", name="Use the example image").click()
    chart = page.locator(".js-plotly-plot").first
    chart.locator("g.hm image, g.heatmaplayer image").first.wait_for(timeout=120_000)
    _idle(page)
    drawn = chart.evaluate(OVERLAY)
    loaded = load_model(folders["deit"], device="cpu")
    image = analyze_image(loaded, Image.open(EXAMPLE_IMAGE).convert("RGB"))
    expected = patch_map(image, image.analysis.layer_average(1)).numpy()  # [CLS], last layer
    assert np.allclose(np.array(drawn["z"]), expected, atol=1e-6)
    assert drawn["x"] == list(range(0, 225, 32)) and drawn["opacity"] == 0.6
    assert drawn["images"] >= 2  # the picture and the heatmap, each drawn as an image
    chart.scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "vision.png", full_page=False)

    # a click on patch (1, 2), centre (80, 48) in the image's pixels, makes it the query
    spot = chart.evaluate(CLICK, [80, 48])
    page.mouse.click(spot["x"], spot["y"])
    page.get_by_text("Attention of patch 1,2, layer 1").wait_for(timeout=60_000)
    _idle(page)
    drawn = page.locator(".js-plotly-plot").first.evaluate(OVERLAY)
    query = 2 + 1 * 7 + 2  # [CLS], [DIST], then row 1, column 2 of a 7 x 7 grid
    expected = patch_map(image, image.analysis.layer_average(1), query).numpy()
    assert np.allclose(np.array(drawn["z"]), expected, atol=1e-6)
    assert not page.watch.dialogs and not page.watch.failed and not page.watch.external
