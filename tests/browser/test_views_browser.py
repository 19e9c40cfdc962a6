"""The views as drawn: the model view's selection outline leaves the thumbnail (its first, [CLS]
or sink, column included) as it is and the opened head lands beside the grid; the head view's
sentence A/B filter draws only the chosen pair's lines; the neuron view draws q, k and q × k and
the softmax row the model computed; BertViz draws a long input through its filters."""

from __future__ import annotations

import math

import pytest

from bench.appserver import choose_option
from core import analyze
from core.methods.neuron import neuron_layer
from tests.browser.test_browser import PAINTED, analyze_text, drawn_view, open_view

TEXT = "The animal didn't cross the street because it was too tired."
# The colour at canvas pixel (x, y) and the painted (alpha > 0) pixel rows of one column.
PIXEL = "(c, [x, y]) => Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data)"
REGION = """(c, [x, y, w, h]) => {
    const d = c.getContext('2d').getImageData(x, y, w, h).data;
    const out = [];
    for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2], d[i + 3]]);
    return out;
}"""
PAINTED_ROWS = """(c, x) => {
    const d = c.getContext('2d').getImageData(x, 0, 1, c.height).data;
    const rows = [];
    for (let y = 0; y < c.height; y++) if (d[y * 4 + 3] > 0) rows.push(y);
    return rows;
}"""


def blues(v: float) -> tuple[int, int, int]:
    """The model view's colour scale (attention_view.js viridisLike): white to blue."""
    return round(247 - 239 * v), round(251 - 203 * v), round(255 - 148 * v)


def select_model(page, title: str) -> None:
    choose_option(page, "Model", title)


def thumbnail_geometry(canvas, n_heads: int) -> tuple[int, int, int]:
    """(pad, cell, gap) of the thumbnail grid; a canvas that does not say is laid out as it was
    first written: no padding, cells of ``width / n_heads - 4`` and gaps of 4 px."""
    width = canvas.evaluate("c => c.width")
    gap = int(canvas.get_attribute("data-gap") or 4)
    pad = int(canvas.get_attribute("data-pad") or 0)
    cell = int(canvas.get_attribute("data-cell") or (width // n_heads - gap))
    return pad, cell, gap


def test_model_view_outline_leaves_the_first_column_visible(page, minilm):
    analyze_text(page, TEXT)
    open_view(page, "Model view")
    root = drawn_view(page)
    page.locator(".atv-model-detail .atv-title", has_text="Layer 0, head 0").wait_for()
    canvas = root.locator("canvas.atv-thumbs")
    pad, cell, gap = thumbnail_geometry(canvas, 12)
    x0 = y0 = pad  # layer 0, head 0: the selected thumbnail, top left
    inside = canvas.evaluate(REGION, [x0, y0, cell, cell])
    # The blue scale always has r < g; the red outline (214, 39, 40), blended or not, has r > g.
    assert all(r < g for r, g, _, _ in inside), "the outline covers the thumbnail"
    # The first column is the [CLS] key column: every pixel is that thumbnail's own colour.
    thumbs = analyze(minilm, TEXT).thumbnails  # (L, H, S, S)
    size = thumbs.shape[-1]
    levels = (thumbs[0, 0] / thumbs[0, 0].max()).sqrt().mul(255).round() / 255  # (S, S)
    first = [inside[y * cell] for y in range(cell)]
    for y, (r, g, b, a) in enumerate(first):
        row = min(size - 1, math.floor((y + 0.5) * size / cell))
        near = [blues(float(levels[q, 0])) for q in {max(0, row - 1), row, min(size - 1, row + 1)}]
        assert a == 255 and any(max(map(abs, (r - e[0], g - e[1], b - e[2]))) <= 2 for e in near)
    # The outline is still drawn, around the thumbnail: in the margin on all four sides.
    red = lambda p: p[0] > 150 and p[1] < 120  # noqa: E731
    left = canvas.evaluate(REGION, [x0 - 3, y0 + cell // 2, 3, 1]) if x0 >= 3 else []
    top = canvas.evaluate(REGION, [x0 + cell // 2, y0 - 3, 1, 3]) if y0 >= 3 else []
    right = canvas.evaluate(REGION, [x0 + cell, y0 + cell // 2, gap, 1])
    bottom = canvas.evaluate(REGION, [x0 + cell // 2, y0 + cell, 1, gap])
    assert all(any(map(red, side)) for side in (left, top, right, bottom))
    assert not page.watch.errors, page.watch.errors


def test_opened_head_lands_beside_the_grid_on_a_30_layer_model(page):
    select_model(page, "SmolLM2-135M-Instruct (decoder)")
    analyze_text(page, "The capital of France is Paris, and the capital of Italy is")
    open_view(page, "Model view")
    root = drawn_view(page)
    detail = root.locator(".atv-model-detail")
    detail.locator(".atv-title", has_text="Layer 0, head 0").wait_for()
    grid = root.locator(".atv-model-grid").bounding_box()
    opened = detail.bounding_box()
    assert opened["x"] >= grid["x"] + grid["width"] - 1, (grid, opened)  # to its right
    assert abs(opened["y"] - grid["y"]) < 60, (grid, opened)  # at the same height
    assert opened["y"] + 100 < 1000  # on the first screen, not 1 900 px down
    note = root.locator(".atv-opened")
    assert "beside the grid" in note.inner_text()
    assert root.get_attribute("data-placement") == "beside"
    # Thirty rows of thumbnails scroll inside their own box instead of pushing the page down.
    assert grid["height"] <= 0.8 * 1000
    # In a narrow window the head opens under the grid, says so, and a click brings it into view.
    page.set_viewport_size({"width": 900, "height": 1000})
    canvas = root.locator("canvas.atv-thumbs")
    pad, cell, gap = thumbnail_geometry(canvas, 9)
    canvas.click(position={"x": pad + 5 * (cell + gap) + cell / 2, "y": pad + cell / 2})
    detail.locator(".atv-title", has_text="Layer 0, head 5").wait_for(timeout=60_000)
    root = drawn_view(page)
    assert root.get_attribute("data-placement") == "below"
    assert "below the grid" in root.locator(".atv-opened").inner_text()
    grid = root.locator(".atv-model-grid").bounding_box()
    opened = root.locator(".atv-model-detail").bounding_box()
    assert opened["y"] >= grid["y"] + grid["height"] - 1
    assert opened["y"] - grid["y"] < 0.65 * 1000  # the grid's box is at most 55 % of the window
    assert 0 <= opened["y"] < 1000  # scrolled into view
    assert not page.watch.errors, page.watch.errors


def expected_pair_lines(layer_weights, start: int, pair: str, top_k=5, threshold=0.05) -> int:
    """The lines the head view draws for a sentence pair filter: for each head and each query in
    the source sentence, its ``top_k`` strongest keys in the target sentence at or above
    ``threshold`` (weights as sent: 16-bit fixed point)."""
    n = layer_weights.shape[-1]
    a, b = range(0, start), range(start, n)
    source, target = (a if pair[0] == "a" else b), (a if pair[1] == "a" else b)
    sent = (layer_weights.clamp(0, 1) * 65535).round() / 65535  # (H, T, T)
    lines = 0
    for head in sent:
        for i in source:
            row = sorted((float(head[i, j]) for j in target), reverse=True)[:top_k]
            lines += sum(1 for w in row if w >= threshold and w > 0)
    return lines


def test_sentence_pair_filter_draws_only_the_chosen_pair(page, minilm):
    text, pair = "The cat sat on the mat.", "A dog slept on the rug."
    box = page.get_by_role("textbox", name="Second sentence (optional, encoders only)")
    box.fill(pair)
    box.press("Enter")
    analyze_text(page, text)
    open_view(page, "Head view")
    root = drawn_view(page)
    expected = analyze(minilm, text, pair)
    start = expected.sentence_b_start
    view, canvas = root.locator(".atv-view"), root.locator("canvas.atv-canvas")
    ratio = canvas.evaluate("c => c.width / c.clientWidth")
    row_h = canvas.evaluate("c => c.clientHeight") / expected.seq_len
    filter_ = root.locator("select.atv-pairs")
    assert filter_.locator("option").all_text_contents()[1:] == ["A → A", "A → B", "B → A", "B → B"]
    for choice in ("ab", "ba", "aa", "bb"):
        filter_.select_option(choice)
        lines = expected_pair_lines(expected.layer(0), start, choice)
        assert int(view.get_attribute("data-lines")) == lines, choice
        boundary = start * row_h * ratio
        left = canvas.evaluate(PAINTED_ROWS, 0)
        right = canvas.evaluate(PAINTED_ROWS, canvas.evaluate("c => c.width - 1"))
        assert left and right, choice
        for rows, side in ((left, choice[0]), (right, choice[1])):
            if side == "a":
                assert max(rows) <= boundary + 3 * ratio, choice
            else:
                assert min(rows) >= boundary - 3 * ratio, choice
        # tokens outside the pair are dimmed
        dimmed = root.locator(".atv-left .atv-token.atv-dim").count()
        assert dimmed == (expected.seq_len - start if choice[0] == "a" else start)
    filter_.select_option("all")
    assert root.locator(".atv-token.atv-dim").count() == 0
    assert canvas.evaluate(PAINTED) > 500
    assert not page.watch.errors, page.watch.errors


def test_neuron_view_draws_q_k_and_the_models_softmax(page, minilm):
    analyze_text(page, TEXT)
    open_view(page, "Neuron view")
    root = drawn_view(page)
    expected = analyze(minilm, TEXT)
    query = expected.tokens.index("it")
    choose_option(page, "Query token", f"{query}: it", exact=True)
    page.locator(".atv-root[data-state=drawn] .atv-neuron-title", has_text=f"{query}: it").wait_for(
        timeout=60_000
    )
    root = drawn_view(page)
    truth = neuron_layer(minilm, expected, 0).view(0, query)
    probs = [
        float(v)
        for v in root.locator(".atv-neuron-row").evaluate_all(
            "rows => rows.map(r => r.dataset.prob)"
        )
    ]
    assert probs == pytest.approx(truth.probabilities.tolist(), abs=1e-6)
    assert probs == pytest.approx(expected.head(0, 0)[query].tolist(), abs=1e-5)
    shown = root.locator(".atv-neuron-row .atv-prob").all_text_contents()
    assert shown[0] == f"{truth.probabilities[0]:.3f}"
    # The query vector's cells: blue where q_d > 0, orange where q_d < 0.
    q_canvas = root.locator("canvas.atv-neuron-q")
    cell = int(q_canvas.get_attribute("data-cell"))
    for d in range(truth.query.shape[0]):
        r, g, b, _ = q_canvas.evaluate(PIXEL, [d * cell + cell // 2, 2])
        if abs(float(truth.query[d])) > 0.05 * float(truth.query.abs().max()):
            assert (b > r) == (float(truth.query[d]) > 0), d
    assert root.locator("canvas.atv-neuron-k").evaluate(PAINTED) > 1000
    assert not page.watch.errors, page.watch.errors
