"""The Translation and Vision pages in Chromium, on tiny random models saved to folders and typed
into the sidebar: the alignment lines, cross-attention's head and model views (target tokens
left, source tokens right) and the overlay the browser drew hold core's numbers; a non-image
upload gets its message. Screenshots for the README."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from playwright.sync_api import expect

from bench.appserver import choose_option
from core.engine.models import load_model
from core.engine.seq2seq import analyze_pair
from core.engine.vision import analyze_image
from core.methods.alignment import alignment
from core.methods.patches import patch_map
from core.policy.i18n import t
from tests.browser.test_views_browser import PAINTED_ROWS
from tests.unit.tiny_seq2seq_vision import SEQ2SEQ, VISION_SIZES, save, tiny_deit
from ui.vision import EXAMPLE_IMAGE

SCREENSHOTS = Path(__file__).resolve().parents[2] / "assets" / "screenshots"
SOURCE, TARGET = "the cat sat on the mat", "a dog slept on the mat"
SHORT_TARGET = "a dog"  # 3 target tokens against 7 source tokens: a rectangular head view

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

# The head view's lines as drawn (attention_view.js attnscopeDrawing); one pixel's colour (the
# painted pixel rows of a canvas column: test_views_browser's PAINTED_ROWS).
DRAWING = "el => el.attnscopeDrawing()"
PIXEL = "(c, [x, y]) => Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data)"
# Where image pixel (x, y) is on the screen.
CLICK = """(el, [x, y]) => {
    const box = el.getBoundingClientRect(), xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis;
    return {x: box.left + xa._offset + xa.d2p(x), y: box.top + ya._offset + ya.d2p(y)};
}"""


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "marian": str(save(_sharp_marian(), root / "marian")),
        "deit": str(save(_deit_224(), root / "deit")),
    }


def _idle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )


def _sharp_marian():
    """Tiny Marian whose cross-attention has a shape: its random weights attend almost evenly
    (every weight 1/7 +- 0.0005 on a 7-token source), so cross-attention's queries and keys
    are scaled up 30 times each (one head then puts 0.78 on one source token)."""
    loaded = SEQ2SEQ["marian"]()
    with torch.no_grad():
        for layer in loaded.model.model.decoder.layers:
            layer.encoder_attn.q_proj.weight.mul_(30)
            layer.encoder_attn.k_proj.weight.mul_(30)
    return loaded


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
    _cross_views_are_drawn_rectangular(page, loaded)


def _sent(layer) -> torch.Tensor:
    """The weights as the payload sends them: 16-bit fixed point, ``(H, T_q, T_k)``."""
    return (layer.float().clamp(0, 1) * 65535).round().double() / 65535  # as the JS reads it


def _expected_rows(sent, top_k=5, threshold=0.05) -> dict[tuple[int, int], list[float]]:
    """The head view's lines with nothing hovered, per (head, query): the weights of its
    ``top_k`` strongest keys at or above ``threshold``, largest first (which of two equal
    weights is drawn is the browser's float rounding, so rows are compared by weight)."""
    rows = {}
    for h, head in enumerate(sent):
        for i, row in enumerate(head):
            top = sorted(row.tolist(), reverse=True)[:top_k]
            rows[(h, i)] = [w for w in top if w >= threshold and w > 0]
    return rows


def blues(v: float) -> tuple[int, int, int]:
    """The model view's colour scale (attention_view.js viridisLike): white to blue."""
    return round(247 - 239 * v), round(251 - 203 * v), round(255 - 148 * v)


def _cross_views_are_drawn_rectangular(page, loaded) -> None:
    target = page.get_by_role("textbox", name="Target text (the translation)")
    target.fill(SHORT_TARGET)
    target.press("Control+Enter")
    _idle(page)
    page.get_by_role("button", name="Translate").click()
    # the view sits in the component's shadow root, which Playwright's locators pierce
    rows = page.locator(".atv-root[data-state=drawn] .atv-view .atv-left .atv-token")
    expect(rows).to_have_count(3, timeout=120_000)
    _idle(page)
    result = analyze_pair(loaded, SOURCE, SHORT_TARGET)
    n, m = len(result.target_tokens), len(result.source_tokens)
    assert (n, m) == (3, 7)
    root = page.locator(".atv-root[data-state=drawn]")
    view = root.locator(".atv-view")
    view.scroll_into_view_if_needed()
    # the left labels are the target tokens (queries), the right ones the source tokens (keys)
    assert view.locator(".atv-left .atv-text").all_text_contents() == list(result.target_tokens)
    assert view.locator(".atv-right .atv-text").all_text_contents() == list(result.source_tokens)
    drawn = view.evaluate(DRAWING)
    sent = _sent(result.cross.layer(0))
    wanted = _expected_rows(sent)
    got = {key: [] for key in wanted}
    for line in drawn["lines"]:
        h, i, j, w = line["head"], line["query"], line["key"], line["weight"]
        assert abs(w - float(sent[h, i, j])) < 1e-6  # each line is that key's weight
        got[(h, i)].append(w)
    assert drawn["mode"] == "all" and sum(map(len, got.values())) >= 6
    for key, weights in wanted.items():
        assert sorted(got[key], reverse=True) == pytest.approx(weights, abs=1e-6), key
    # the lines leave from the 3 query rows and reach keys below them
    canvas = view.locator("canvas.atv-canvas")
    ratio = canvas.evaluate("c => c.width / c.clientWidth")
    row_h = canvas.evaluate("c => c.clientHeight") / m
    left = canvas.evaluate(PAINTED_ROWS, 0)
    right = canvas.evaluate(PAINTED_ROWS, canvas.evaluate("c => c.width - 1"))
    assert left and max(left) <= (n * row_h + 2) * ratio
    keys = {line["key"] for line in drawn["lines"]}
    assert max(right) > n * row_h * ratio and max(keys) >= n
    page.screenshot(path=SCREENSHOTS / "translation_cross_head_view.png", full_page=False)
    # hovering source token 3 ("on") lists each target token's weight on it, averaged over heads
    view.locator(".atv-right .atv-token").nth(3).hover()
    assert view.evaluate(DRAWING)["mode"] == "key"
    shown = view.locator(".atv-left .atv-weight").all_text_contents()
    assert shown == [f"{float(sent[:, i, 3].mean()):.3f}" for i in range(n)]
    page.mouse.move(0, 0)

    # the model view: rectangular thumbnails (3 target rows x 7 source columns)
    page.get_by_text("Model view", exact=True).click()
    thumbs = page.locator(".atv-root[data-state=drawn] canvas.atv-thumbs")
    detail = page.locator(".atv-model-detail")
    detail.locator(".atv-title", has_text="Layer 0, head 0").wait_for(timeout=60_000)
    _idle(page)  # the grid moves once the opened head is laid out beside it
    geometry = {k: int(v) for k, v in thumbs.evaluate("c => ({...c.dataset})").items()}
    cell, cell_h, pad, gap = (geometry[k] for k in ("cell", "cellHeight", "pad", "gap"))
    assert cell_h == max(6, round(cell * n / m)) < cell
    head = result.cross.head(0, 0)  # (3, 7): no pooling below 32
    levels = (head / head.max()).sqrt()
    for i in range(n):
        for j in range(m):
            x, y = pad + int((j + 0.5) * cell / m), pad + int((i + 0.5) * cell_h / n)
            r, g, b, a = thumbs.evaluate(PIXEL, [x, y])
            want = blues(float(levels[i, j]))
            assert a == 255 and max(abs(r - want[0]), abs(g - want[1]), abs(b - want[2])) <= 3
    # a click on layer 1, head 1 opens it, the target tokens left and the source tokens right
    spot = {"x": pad + cell + gap + cell / 2, "y": pad + cell_h + gap + cell_h / 2}
    thumbs.hover(position=spot)
    assert page.locator(".atv-tooltip").inner_text().startswith("Layer 1, head 1 ")
    thumbs.click(position=spot)
    detail.locator(".atv-title", has_text="Layer 1, head 1").wait_for(timeout=60_000)
    assert detail.locator(".atv-left .atv-text").all_text_contents() == list(result.target_tokens)
    assert detail.locator(".atv-right .atv-text").all_text_contents() == list(result.source_tokens)
    assert not page.watch.errors, page.watch.errors


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
