"""The Attribution page in Chromium on MiniLM: the figures it draws hold core's numbers."""

from __future__ import annotations

import numpy as np

from core import analyze
from core.methods.agreement import agreement
from core.methods.attribution import attribute
from core.methods.attribution_target import resolve_target
from tests.browser.test_browser import analyze_text
from viz.attribution import shaded_scores

# The z a Plotly heatmap drew (calcdata), and its title.
DRAWN = """el => ({
    title: el.layout.title.text,
    z: Array.from(el.calcdata[0][0].z, row => Array.from(row, v => v === null ? NaN : v)),
})"""


def test_attribution_page_draws_core_numbers_on_minilm(page, minilm):
    text, pair = "A cat sat on the mat.", "A dog slept on the rug."
    box = page.get_by_role("textbox", name="Second sentence (optional, encoders only)")
    box.fill(pair)
    box.press("Enter")
    analyze_text(page, text)
    page.get_by_role("link", name="Attribution").click()
    page.get_by_role("heading", name="Attributions beside attention").wait_for()
    steps = page.get_by_label("Integrated-gradients steps")
    steps.fill("8")
    steps.press("Enter")
    page.get_by_role("button", name="Compute attributions").click()
    page.get_by_text("Agreement, highest ρ first").wait_for(timeout=180_000)
    charts = page.locator(".js-plotly-plot")
    charts.nth(2).locator("g.hm image, g.heatmaplayer image").first.wait_for(timeout=60_000)
    shaded, product, agree = (charts.nth(i).evaluate(DRAWN) for i in range(3))

    analysis = analyze(minilm, text, pair)
    expected = attribute(minilm, analysis, resolve_target(minilm, analysis), steps=8)
    table = agreement(minilm, analysis, expected)
    assert np.allclose(np.array(shaded["z"]), shaded_scores(expected)[1], atol=1e-4)
    assert np.allclose(np.array(product["z"]), expected.attention.product[0, 0].numpy(), atol=1e-6)
    drawn = np.array(agree["z"], dtype=np.float64)
    assert np.allclose(drawn, table.heads[:, :, 0].numpy(), atol=1e-3, equal_nan=True)
    assert "saliency" in agree["title"] and "layer 0, head 0" in product["title"]
    assert not page.watch.dialogs and not page.watch.failed and not page.watch.external
    assert not page.watch.errors
