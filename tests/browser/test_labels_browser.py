"""Drawing of titles, cell text and large heatmaps in a real browser (issue 11, "Text and
labels"): a title never overlaps the slanted token labels under it, the logit lens' words can be
read, and a 512-token heatmap gives every row pixels of its own."""

from __future__ import annotations

from bench.appserver import choose_option
from tests.browser.test_browser import analyze_text, open_page

SETTLED = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
# The title's box and every x tick label's box, of the first chart on the page that has ticks.
BOXES = """plot => {
    const box = e => { const r = e.getBoundingClientRect();
                       return [r.left, r.top, r.right, r.bottom]; };
    const title = plot.querySelector('.gtitle');
    return {title: title ? box(title) : null,
            ticks: [...plot.querySelectorAll('g.xtick text')].map(box)};
}"""


def choose_smollm2(page) -> None:
    choose_option(page, "Model", "SmolLM2-135M-Instruct (decoder)")


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def assert_title_clear_of_ticks(plot) -> None:
    plot.locator("g.xtick text").first.wait_for(timeout=60_000)
    boxes = plot.evaluate(BOXES)
    assert boxes["title"] is not None and boxes["ticks"]
    hit = [tick for tick in boxes["ticks"] if overlaps(boxes["title"], tick)]
    assert not hit, (boxes["title"], hit[:3])


def test_titles_clear_the_slanted_labels_and_lens_words_are_readable(page):
    choose_smollm2(page)
    analyze_text(page, "The capital of France is Paris, and the capital of Italy is")
    open_page(page, "Predictions")
    page.wait_for_function(SETTLED, timeout=180_000)
    lens = page.locator(".js-plotly-plot").filter(has=page.locator("g.xtick")).first
    lens.locator("g.xtick text").first.wait_for(timeout=60_000)
    sizes = lens.evaluate(
        "p => [...p.querySelectorAll('g.heatmaplayer text, g.hm text')]"
        ".map(t => parseFloat(getComputedStyle(t).fontSize))"
    )
    # px: the predicted words are written at the page's own size, not shrunk to fit the longest
    assert sizes and min(sizes) >= 12, sorted(sizes)[:5]
    assert_title_clear_of_ticks(lens)

    open_page(page, "Generate")
    page.get_by_label("Prompt").fill("The capital of France is")
    max_new = page.get_by_label("Max new tokens")
    max_new.fill("3")
    max_new.press("Enter")
    page.get_by_text("Greedy (always the most likely token)").click()
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("Step by step").wait_for(timeout=180_000)
    page.wait_for_function(SETTLED, timeout=180_000)
    steps = page.locator(".js-plotly-plot").filter(has=page.locator("g.xtick"))
    assert_title_clear_of_ticks(steps.first)  # the new token's heads over its context
    assert not page.watch.errors, page.watch.errors


def test_a_512_token_heatmap_gives_each_row_three_pixels(page):
    analyze_text(page, "The quick brown fox jumps over the lazy dog while the cat watches. " * 60)
    plot = page.locator(".js-plotly-plot").first
    plot.locator("g.hm image, g.heatmaplayer image").first.wait_for(timeout=60_000)
    area = plot.locator(".draglayer .nsewdrag").first.bounding_box()
    assert area["height"] / 512 >= 3, area  # rows: the figure grows with the tokens
    assert area["width"] >= 0.6 * page.viewport_size["width"] - 400, area  # the page's width


def test_the_model_choice_is_not_cut_off_in_either_language(browser, server_url):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        for lang, label in (("ja", "モデル"), ("en", "Model")):
            tab.goto(f"{server_url}/?lang={lang}")
            choose_option(tab, label, "SmolLM2", exact=False)
            shown = tab.get_by_role("combobox", name=label)
            tab.wait_for_function(
                "el => el.value.startsWith('SmolLM2')", arg=shown.element_handle(), timeout=60_000
            )
            value, scroll, width = shown.evaluate("e => [e.value, e.scrollWidth, e.clientWidth]")
            assert scroll <= width, (lang, value, scroll, width)  # the whole name and kind show
    finally:
        tab.close()
