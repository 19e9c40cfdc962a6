"""A long text in Chromium on SmolLM2 (1100 tokens, past the 1024 at which a heatmap becomes an
overview and a window): the Long context panel's split and eviction curves, and the heatmap's
overview and exact window, hold core's numbers; then the panel in Japanese."""

from __future__ import annotations

import numpy as np

from bench.appserver import choose_option
from core import analyze
from core.engine.run import with_layers
from core.methods.kv_eviction import simulate_eviction
from core.methods.long_view import layer_window
from tests.browser.test_browser import SCREENSHOTS, analyze_text, drawn_view, open_view
from tests.browser.test_views_browser import expected_pair_lines

TOKENS = 1100
TEXT = (
    "In the long report, the committee returns again and again to its first findings, "
    "compares each new witness with the last, and sometimes reaches far back for a name. "
) * 40
# A Plotly figure's traces as drawn: x, y (bars and lines) or z (heatmaps).
TRACES = """el => el.data.map(d => ({
    name: d.name || null,
    x: d.x ? Array.from(d.x) : null,
    y: d.y ? Array.from(d.y) : null,
}))"""
HEATMAP_Z = """el => Array.from(el.calcdata[0][0].z, row => Array.from(row))"""


def settle(page, timeout: int = 300_000) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )


def test_long_context_panel_and_overview_hold_core_numbers(page, smollm2):
    page.get_by_text("Settings", exact=True).click()
    tokens = page.get_by_label("Max tokens", exact=True).and_(page.get_by_role("spinbutton"))
    tokens.fill(str(TOKENS))
    tokens.press("Enter")
    choose_option(page, "Model", "SmolLM2-135M-Instruct (decoder)")
    analyze_text(page, TEXT)
    expected = analyze(smollm2, TEXT, max_tokens=TOKENS)
    assert expected.seq_len == TOKENS and all(w is None for w in expected.layer_weights[:1])

    page.get_by_role("link", name="Long context").click()
    page.get_by_role("heading", name="Long context", exact=True).wait_for()
    settle(page)
    charts = page.locator(".js-plotly-plot")
    split = charts.nth(0).evaluate(TRACES)  # head 0, the session's default head
    sink = next(trace for trace in split if trace["name"].startswith("sink"))
    assert np.allclose(sink["y"], expected.long_range.sink[:, 0].numpy(), atol=1e-5)
    far = next(trace for trace in split if trace["name"] == "far context")
    assert np.allclose(far["y"], expected.long_range.far[:, 0].numpy(), atol=1e-5)

    page.get_by_role("button", name="Simulate eviction").click()
    page.get_by_text("Download the eviction table as CSV").wait_for(timeout=600_000)
    settle(page)
    curves = charts.nth(2).evaluate(TRACES)
    eviction = simulate_eviction(smollm2, expected)
    streaming, heavy = eviction.layer_means()
    assert np.allclose(curves[0]["y"], streaming[:, 0].numpy(), atol=1e-5)
    assert np.allclose(curves[1]["y"], heavy[:, 0].numpy(), atol=1e-5)
    assert (heavy[:, 0] >= streaming[:, 0] - 0.2).all()  # both policies keep a real share

    # The heatmap page at 1100 tokens: layer 0, head 0 (the defaults) as an overview and the
    # window of the last 128 queries over the first 128 keys.
    page.get_by_role("link", name="Heatmaps").click()
    page.get_by_role("heading", name="Attention heatmaps").wait_for()
    page.get_by_text("too many cells for a browser").wait_for(timeout=300_000)
    settle(page)
    maps = page.locator(".js-plotly-plot")
    maps.nth(1).locator("g.hm image, g.heatmaplayer image").first.wait_for(timeout=120_000)
    overview = np.array(maps.nth(0).evaluate(HEATMAP_Z))
    window = np.array(maps.nth(1).evaluate(HEATMAP_Z))
    core = layer_window(smollm2, expected, 0, range(TOKENS - 128, TOKENS), range(0, 128))
    assert overview.shape == (128, 128) and window.shape == (128, 128)
    assert np.allclose(overview, core.overview[0].numpy(), atol=1e-5)
    assert np.allclose(window, core.window[0].numpy(), atol=1e-5)
    page.screenshot(path=SCREENSHOTS / "long_context_overview.png", full_page=True)

    # The head view of layer 0 from each row's strongest keys (gathered in blocks): the lines it
    # draws are those the full layer gives (past 256 tokens each row's top 3 at or above 0.05).
    open_view(page, "Head view")
    root = drawn_view(page)
    full = with_layers(smollm2, expected, [0]).layer_weights[0]  # (H, T, T), eager's way
    assert int(root.locator(".atv-view").get_attribute("data-lines")) == expected_pair_lines(
        full, TOKENS, "aa", top_k=3
    )

    page.get_by_role("link", name="Long context").click()
    page.get_by_role("heading", name="Long context", exact=True).wait_for()
    settle(page)
    page.screenshot(path=SCREENSHOTS / "long_context.png", full_page=True)
    choose_option(page, "Language / 言語", "日本語")
    page.get_by_role("heading", name="長文コンテキスト", exact=True).wait_for(timeout=120_000)
    assert not page.watch.errors and not page.watch.dialogs and not page.watch.external
