"""Our head and model views as files, clicked in Chromium: the SVG holds every token as a text
node (Japanese ones too) and a line per attention line drawn; the PNG has the size of what is on
screen (the two token columns and the lines' canvas) and carries the canvas' lines."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from core import analyze
from tests.browser.test_browser import analyze_text, drawn_view, open_view

TEXT = "The cat sat on the mat. 猫がマットに座った。"
SVG = "{http://www.w3.org/2000/svg}"


def download(page, button) -> bytes:
    with page.expect_download(timeout=30_000) as info:
        button.click()
    return Path(info.value.path()).read_bytes()


def texts(root: ET.Element, group: str) -> list[str]:
    (found,) = [g for g in root.iter(f"{SVG}g") if g.get("class") == group]
    return ["".join(node.itertext()) for node in found.iter(f"{SVG}text")]


def test_head_view_exports_svg_and_png_of_what_is_drawn(page, minilm):
    analyze_text(page, TEXT)
    open_view(page, "Head view")
    root = drawn_view(page)
    tokens = list(analyze(minilm, TEXT).tokens)
    assert {"が", "マ", "。", "猫 [UNK]"} <= set(tokens)
    view = root.locator(".atv-view")
    lines_drawn = int(view.get_attribute("data-lines"))
    assert lines_drawn > 50

    svg = download(page, root.locator(".atv-save-svg").first)
    assert svg.startswith(b"<?xml")
    tree = ET.fromstring(svg)
    assert texts(tree, "queries") == tokens and texts(tree, "keys") == tokens
    assert len(list(tree.iter(f"{SVG}line"))) == lines_drawn
    assert not list(tree.iter(f"{SVG}script")) and b"<script" not in svg

    png = download(page, root.locator(".atv-save-png").first)
    image = Image.open(io.BytesIO(png))
    canvas = root.locator("canvas.atv-canvas")
    ratio = canvas.evaluate("c => c.width / c.clientWidth")  # the canvas' pixels per CSS px
    column = root.locator(".atv-left").evaluate("e => e.offsetWidth")
    middle = canvas.evaluate("c => c.clientWidth")
    # what is on screen: two token columns and the lines between them, at the canvas' density
    assert image.size == (round((2 * column + middle) * ratio), canvas.evaluate("c => c.height"))
    picture = np.asarray(image.convert("RGB"), dtype=np.int16)  # (H, W, 3)
    lines = picture[:, round(column * ratio) : round((column + middle) * ratio)]
    assert (lines.min(axis=2) < 200).sum() > 500  # coloured lines from the canvas
    assert (picture[:, : round(column * ratio)].max(axis=2) < 120).sum() > 200  # token text
    assert not page.watch.errors and not page.watch.external, page.watch


def test_model_view_exports_its_grid(page):
    analyze_text(page, "Model view as a figure.")
    open_view(page, "Model view")
    root = drawn_view(page)
    thumbs = root.locator("canvas.atv-thumbs")
    svg = ET.fromstring(download(page, root.locator(".atv-model-grid .atv-save-svg")))
    assert texts(svg, "layers") == [f"L{layer}" for layer in range(6)]
    assert texts(svg, "heads") == [f"H{head}" for head in range(12)]
    (image_node,) = list(svg.iter(f"{SVG}image"))
    assert image_node.get("href").startswith("data:image/png;base64,")
    assert int(image_node.get("width")) == thumbs.evaluate("c => c.width")
    png = Image.open(io.BytesIO(download(page, root.locator(".atv-model-grid .atv-save-png"))))
    assert png.size == (40 + thumbs.evaluate("c => c.width"), 18 + thumbs.evaluate("c => c.height"))
    assert not page.watch.errors, page.watch.errors


def test_heatmap_popover_downloads_an_svg_of_the_heatmap(page, minilm):
    analyze_text(page, TEXT)
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_role("button", name="Download figure").first.click()
    page.get_by_text("SVG", exact=True).click()
    # a fragment: the choice reruns the popover's widgets only, so it stays open
    page.get_by_role("button", name="Prepare SVG").wait_for(timeout=15_000)
    page.get_by_role("button", name="Prepare SVG").click()
    button = page.get_by_role("button", name="Download heatmap.svg")
    button.wait_for(timeout=120_000)
    svg = ET.fromstring(download(page, button))
    (ticks,) = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "xaxislayer-above"]
    labels = ["".join(node.itertext()) for node in ticks.iter(f"{SVG}text")]
    tokens = analyze(minilm, TEXT).tokens
    assert labels == [f"{i}: {token}" for i, token in enumerate(tokens)]
    assert not page.watch.errors and not page.watch.external, page.watch
