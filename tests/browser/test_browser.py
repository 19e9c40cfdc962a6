"""The real app in a real browser: heatmaps drawn, BertViz drawn offline, hostile input inert."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def open_page(page, name: str) -> None:
    page.get_by_role("link", name=name).click()
    page.get_by_role(
        "heading",
        name={
            "BertViz": "BertViz views",
            "Heatmaps": "Attention heatmaps",
            "Statistics": "Attention statistics",
        }[name],
    ).wait_for()


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
    open_page(page, "BertViz")
    frame = bertviz_frame(page)
    texts = frame.locator("svg text").all_text_contents()
    assert "[CLS]" in texts and "network" in texts
    assert frame.locator("svg line").count() > 100  # attention lines were drawn
    page.screenshot(path=SCREENSHOTS / "bertviz-head.png")

    page.get_by_text("Model view", exact=True).click()
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
    open_page(page, "BertViz")
    frame = bertviz_frame(page)
    texts = frame.locator("svg text").all_text_contents()
    assert texts[: len(tokens)] == list(tokens)  # the left column of the head view
    assert frame.locator("img").count() == 0  # no element was created from the text
    assert page.locator("img[src='x']").count() == 0
    page.wait_for_timeout(500)  # give an injected handler time to fire, if there were one
    assert page.watch.dialogs == []
    assert not page.watch.external and not page.watch.failed
