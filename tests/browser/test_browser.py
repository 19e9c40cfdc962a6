"""The real app in a real browser: heatmaps drawn, BertViz drawn offline, hostile input inert."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from bench.appserver import choose_option
from core import analyze

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "assets" / "screenshots"
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</script><script>alert(document.domain)</script>",
]


def analyze_text(page, text: str) -> None:
    box = page.get_by_label("Text")
    box.fill(text)
    box.press("Control+Enter")  # commit the text area before the click
    page.get_by_role("button", name="Analyze").click()
    page.get_by_text("Analysed", exact=False).first.wait_for(timeout=120_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )


def heatmap_tick_labels(page) -> list[str]:
    chart = page.locator(".js-plotly-plot").first
    chart.locator("g.hm image, g.heatmaplayer image").first.wait_for(timeout=30_000)
    return chart.locator("g.xtick text").all_text_contents()


HEADINGS = {
    "Heatmaps": "Attention heatmaps",
    "Head & model view": "Head view and model view",
    "Statistics": "Attention statistics",
    "Heads": "Head statistics",
    "Ablation": "Head ablation",
    "Predictions": "Predictions",
    "Compare": "Compare",
    "Generate": "Generate",
}
PAINTED = """c => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
    return n;
}"""


def open_page(page, name: str) -> None:
    page.get_by_role("link", name=name).click()
    page.get_by_role("heading", name=HEADINGS[name]).wait_for()


def open_view(page, label: str) -> None:
    open_page(page, "Head & model view")
    page.get_by_text(label, exact=True).click()


def drawn_view(page):
    root = page.locator(".atv-root[data-state=drawn]")
    root.wait_for(timeout=60_000)
    return root


def bertviz_frame(page):
    frame = page.frame_locator("iframe").first
    frame.locator("svg text").first.wait_for(timeout=30_000)
    return frame


def test_heatmap_is_drawn_with_token_labels(page, minilm):
    text = "The animal didn't cross the street because it was too tired."
    analyze_text(page, text)
    labels = heatmap_tick_labels(page)
    expected = analyze(minilm, text).tokens
    assert labels == [f"{i}: {token}" for i, token in enumerate(expected)]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "heatmaps.png")
    assert not page.watch.dialogs and not page.watch.failed and not page.watch.external


def test_bertviz_draws_offline_with_no_failed_request(page):
    analyze_text(page, "BertViz needs no network here.")
    open_view(page, "BertViz head view")
    frame = bertviz_frame(page)
    texts = frame.locator("svg text").all_text_contents()
    assert "[CLS]" in texts and "network" in texts
    assert frame.locator("svg line").count() > 100  # attention lines were drawn
    page.screenshot(path=SCREENSHOTS / "bertviz-head.png")

    page.get_by_text("BertViz model view", exact=True).click()
    frame = page.frame_locator("iframe").first
    frame.locator("svg text", has_text="Layers").wait_for(timeout=30_000)
    assert frame.locator("svg line").count() > 1000  # 6 x 12 thumbnails
    assert not page.watch.failed, page.watch.failed
    assert not page.watch.external, page.watch.external
    assert not page.watch.dialogs


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_runs_nothing_and_shows_as_text(page, text, minilm):
    analyze_text(page, text)
    tokens = analyze(minilm, text).tokens
    # Every piece is shown literally, angle brackets included, in the order of the text.
    assert heatmap_tick_labels(page) == [f"{i}: {token}" for i, token in enumerate(tokens)]
    assert "<" in tokens and ">" in tokens
    open_view(page, "Head view")
    root = drawn_view(page)
    assert root.locator(".atv-left .atv-text").all_text_contents() == list(tokens)
    assert root.locator("img").count() == 0
    page.get_by_text("BertViz head view", exact=True).click()
    frame = bertviz_frame(page)
    texts = frame.locator("svg text").all_text_contents()
    assert texts[: len(tokens)] == list(tokens)  # the left column of the head view
    assert frame.locator("img").count() == 0  # no element was created from the text
    assert page.locator("img[src='x']").count() == 0
    page.wait_for_timeout(500)  # give an injected handler time to fire, if there were one
    assert page.watch.dialogs == []
    assert not page.watch.external and not page.watch.failed


def test_head_view_draws_and_hover_shows_exact_weights(page, minilm):
    text = "The animal didn't cross the street because it was too tired."
    analyze_text(page, text)
    open_view(page, "Head view")
    root = drawn_view(page)
    expected = analyze(minilm, text)
    assert root.locator(".atv-left .atv-text").all_text_contents() == list(expected.tokens)
    canvas = root.locator("canvas.atv-canvas")
    assert canvas.evaluate(PAINTED) > 500  # lines were really drawn
    assert int(root.locator(".atv-view").get_attribute("data-lines")) > 50

    query = expected.tokens.index("it")
    root.locator(".atv-left .atv-token").nth(query).hover()
    page.wait_for_function(
        "() => [...document.querySelectorAll('*')].some(e => e.shadowRoot && "
        "e.shadowRoot.querySelector('.atv-right .atv-token[data-weight]'))"
    )
    shown = [
        float(label.get_attribute("data-weight"))
        for label in root.locator(".atv-right .atv-token").all()
    ]
    mean_over_heads = expected.layer(0)[:, query, :].mean(0).tolist()
    assert shown == pytest.approx(mean_over_heads, abs=2e-5)
    root.locator(".atv-left .atv-token").nth(query).screenshot(path=SCREENSHOTS / "hover.png")
    page.screenshot(path=SCREENSHOTS / "head-view.png")


def test_clicking_a_thumbnail_selects_that_head_everywhere(page):
    analyze_text(page, "Click a head in the model view and the heatmap follows it.")
    open_view(page, "Model view")
    root = drawn_view(page)
    thumbs = root.locator("canvas.atv-thumbs")
    assert thumbs.evaluate(PAINTED) > 1000
    box = thumbs.bounding_box()
    cell_w, cell_h = box["width"] / 12, box["height"] / 6
    thumbs.click(position={"x": cell_w * 7.5, "y": cell_h * 3.5})  # layer 3, head 7
    page.locator(".atv-model-detail .atv-title", has_text="Layer 3, head 7").wait_for(
        timeout=30_000
    )
    page.screenshot(path=SCREENSHOTS / "model-view.png")
    open_page(page, "Heatmaps")
    page.locator(".js-plotly-plot .gtitle", has_text="Layer 3, head 7").wait_for(timeout=30_000)


def test_512_tokens_draw_in_both_views(page, minilm):
    text = "The quick brown fox jumps over the lazy dog while the cat watches. " * 60
    analyze_text(page, text)
    open_view(page, "Head view")
    root = drawn_view(page)
    labels = root.locator(".atv-left .atv-text")
    assert labels.count() == 512
    assert root.locator("canvas.atv-canvas").evaluate(PAINTED) > 1000
    page.get_by_text("Model view", exact=True).click()
    page.locator(".atv-root[data-state=drawn] canvas.atv-thumbs").wait_for(timeout=60_000)
    assert page.locator("canvas.atv-thumbs").evaluate(PAINTED) > 1000
    assert not page.watch.errors, page.watch.errors


def test_japanese_interface(browser, server_url, minilm):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    dialogs = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        tab.goto(f"{server_url}/?lang=ja")
        tab.get_by_role("button", name="解析する").wait_for(timeout=60_000)
        choose_option(tab, "例文", "日本語: 吾輩は猫である（夏目漱石）")
        text = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
        expect(tab.get_by_label("テキスト")).to_have_value(text)  # the example arrived
        tab.get_by_role("button", name="解析する").click()
        tab.get_by_text("トークンを解析しました", exact=False).first.wait_for(timeout=120_000)
        tab.get_by_role("heading", name="アテンションのヒートマップ").wait_for()
        labels = heatmap_tick_labels(tab)
        expected = analyze(
            minilm, "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
        )
        assert labels == [f"{i}: {token}" for i, token in enumerate(expected.tokens)]
        assert tab.get_by_role("link", name="統計").is_visible()
        tab.screenshot(path=SCREENSHOTS / "heatmaps-ja.png")
        tab.get_by_role("link", name="統計").click()
        tab.get_by_role("heading", name="アテンションの統計").wait_for()
        assert "lang=ja" in tab.url
        assert dialogs == []
    finally:
        tab.close()


def test_every_page_draws_with_a_decoder(page):
    choose_option(page, "Model", "SmolLM2-135M-Instruct (decoder)")
    analyze_text(page, "The capital of France is Paris, and the capital of Italy is")
    for name in HEADINGS:
        open_page(page, name)
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000
        )
        assert page.locator("[data-testid=stException]").count() == 0, name
    open_page(page, "Predictions")
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    page.screenshot(path=SCREENSHOTS / "predictions.png")
    assert not page.watch.errors, page.watch.errors
    assert not page.watch.external and not page.watch.dialogs


def test_generation_streams_and_stop_keeps_what_was_made(page):
    """Tokens appear one by one; Stop ends the stream, and the steps made so far become the
    generation that is shown and replayed (gathered by the run that the Stop started)."""
    choose_option(page, "Model", "SmolLM2-135M-Instruct (decoder)")
    open_page(page, "Generate")
    page.get_by_label("Prompt").fill("Once upon a time, in a small village,")
    max_new = page.get_by_label("Max new tokens")
    max_new.fill("256")
    max_new.press("Enter")
    page.get_by_text("Greedy (always the most likely token)").click()
    page.get_by_role("button", name="Generate").click()
    streamed = page.locator("[data-testid=stText]").first
    page.wait_for_function(  # a few tokens in, still running
        "el => el.textContent.trim().split(/\\s+/).length >= 3",
        arg=streamed.element_handle(timeout=120_000),
        timeout=120_000,
    )
    page.get_by_role("button", name="Stop").click()
    summary = page.get_by_text("new tokens; stopped by: Stop", exact=False)
    summary.wait_for(timeout=120_000)
    made = int(summary.inner_text().split()[0])
    assert 3 <= made < 256
    assert page.get_by_text("Step by step").is_visible()  # the replay of what was made
    assert page.locator("[data-testid=stException]").count() == 0
    assert not page.watch.errors, page.watch.errors
