"""Links and timing in a real browser: the address bar after a 2 000-character text, a page
clicked while an analysis runs, a Stop before the first token, and addresses that are no page."""

from __future__ import annotations

import random
import re
import uuid

import pytest

from bench.appserver import choose_option
from core import analyze
from tests.browser.test_browser import analyze_text, open_page

SETTLED = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def settle(page, timeout: int = 180_000) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function(SETTLED, timeout=timeout)


def first_tick(page, label: str, timeout: int = 120_000) -> None:
    """Wait until the heatmap's x axis shows ``label`` (a new result is drawn)."""
    page.wait_for_function(
        "l => [...document.querySelectorAll('.js-plotly-plot g.xtick text')]"
        ".some(t => t.textContent === l)",
        arg=label,
        timeout=timeout,
    )


def words(n_chars: int, seed: int) -> str:
    rng = random.Random(seed)
    pool = [
        "the",
        "heads",
        "of",
        "this",
        "model",
        "attend",
        "to",
        "a",
        "few",
        "tokens",
        "and",
        "the",
        "rest",
        "look",
        "back",
    ]
    text = ""
    while len(text) < n_chars:
        text += rng.choice(pool) + " "
    return text.strip()


def choose_smollm2(page) -> None:
    choose_option(page, "Model", "SmolLM2-135M-Instruct (decoder)")
    settle(page)


def test_the_link_follows_a_2000_character_text(page, minilm):
    analyze_text(page, page.get_by_label("Text").input_value())  # the default example
    assert "example=animal" in page.url
    text = "Quantum " + words(2100, seed=1) + "."
    assert len(text) > 2000
    box = page.get_by_label("Text")
    box.fill(text)
    box.press("Control+Enter")
    settle(page)
    page.get_by_role("button", name="Analyze").click()
    tokens = analyze(minilm, text, max_tokens=512).tokens
    page.get_by_text(f"Analysed {len(tokens)} tokens", exact=False).wait_for(timeout=120_000)
    settle(page)
    assert "example=animal" not in page.url  # it kept pointing at the 16-token example
    assert "z=" in page.url or "text=" in page.url
    shared = page.url
    # The link opens the same text in a new session.
    other = page.context.new_page()
    try:
        other.goto(shared)
        other.get_by_text(f"Analysed {len(tokens)} tokens", exact=False).wait_for(timeout=120_000)
        settle(other)
        assert other.get_by_label("Text").input_value() == text
    finally:
        other.close()
    assert not page.watch.errors, page.watch.errors


def test_a_page_clicked_during_an_analysis_gets_that_analysis(page, smollm2):
    """Press Analyze, then a page link within a second: the run is finished on the new page, or,
    where Streamlit dropped the click, the sidebar says its text is not the one analysed (never
    the old result beside the new text without a word)."""
    choose_smollm2(page)
    analyze_text(page, "First short text.")
    text = f"Navigation {uuid.uuid4().hex[:8]} " + words(2400, seed=2)
    box = page.get_by_label("Text")
    box.fill(text)
    box.press("Control+Enter")
    settle(page)
    page.get_by_role("button", name="Analyze").click()
    page.wait_for_timeout(500)  # the run has started (if the machine is not too busy)
    page.get_by_role("link", name="Statistics").click()
    page.get_by_role("heading", name="Attention statistics").wait_for(timeout=180_000)
    settle(page)
    expected = analyze(smollm2, text, max_tokens=512).tokens
    finished = "Finished the analysis that your click interrupted: "
    done = page.get_by_text(re.compile(rf"(Analysed |{finished}){len(expected)} tokens"))
    # Streamlit itself may drop the Analyze click when the next one follows before any script
    # saw it (runner.fastReruns replaces the pending run): then the sidebar must say so.
    lost = page.get_by_text("has changed since the analysis on screen (text)", exact=False)
    done.or_(lost).first.wait_for(timeout=120_000)
    if done.count():
        assert lost.count() == 0
        open_page(page, "Heatmaps")
        first_tick(page, f"0: {expected[0]}")
    else:
        assert page.get_by_text("4 tokens", exact=False).count() == 1  # the first text's result
    assert page.get_by_label("Text").input_value() == text
    assert not page.watch.errors, page.watch.errors


def test_a_stop_before_the_first_token_keeps_the_previous_generation(page):
    choose_smollm2(page)
    open_page(page, "Generate")
    prompt = page.get_by_label("Prompt")
    prompt.fill("The capital of France is")
    max_new = page.get_by_label("Max new tokens")
    max_new.fill("3")
    max_new.press("Enter")
    page.get_by_text("Greedy (always the most likely token)").click()
    page.get_by_role("button", name="Generate").click()
    kept = page.get_by_text("3 new tokens; stopped by: max new tokens", exact=False)
    kept.wait_for(timeout=120_000)
    settle(page)
    # A long prompt: its first forward pass takes long enough to press Stop before a token.
    prompt.fill(words(2600, seed=3))
    prompt.press("Control+Enter")
    max_new.fill("200")
    max_new.press("Enter")
    settle(page)
    page.get_by_role("button", name="Generate").click()
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Stopped before the first token", exact=False).wait_for(timeout=120_000)
    settle(page)
    assert kept.is_visible()  # the previous generation is still there
    assert page.get_by_text("Step by step").is_visible()
    assert page.locator("[data-testid=stException]").count() == 0
    assert not page.watch.errors, page.watch.errors


@pytest.mark.parametrize("path", ["/pages/common", "/heatmaps/extra", "/nosuch"])
def test_an_address_that_is_no_page_says_so_without_errors(browser, server_url, path):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        tab.goto(server_url + path + "?lang=ja")
        tab.get_by_role("button", name="解析する").wait_for(timeout=60_000)
        tab.get_by_text(path.lstrip("/"), exact=False).first.wait_for(timeout=60_000)
        settle(tab)
        assert tab.url.split("?")[0].rstrip("/") == server_url
        assert "lang=ja" in tab.url  # the rest of the address survived
        assert errors == []
    finally:
        tab.close()
