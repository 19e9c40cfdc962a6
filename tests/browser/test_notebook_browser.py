"""The example notebook, executed and exported as HTML (viz.notebook_html), opened in Chromium from
a file: no request leaves the page, no console error, both widgets draw the analysed tokens and
lines, and a click changes the selection the widget's model holds. Saves the README's
screenshot, assets/screenshots/notebook.png."""

from __future__ import annotations

import json
import re
from pathlib import Path

from core import analyze
from tests.notebooks import executed_tour
from viz.notebook_html import notebook_html

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "assets" / "screenshots" / "notebook.png"
TEXT = "吾輩は猫である。名前はまだ無い。"

# Pixels of a canvas that are not transparent (the head view's lines, the model view's tiles).
INK = """canvas => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) ink++;
  return ink;
}"""


def test_exported_notebook_draws_the_widgets_offline(browser, minilm, tmp_path):
    page_file = tmp_path / "attnscope_tour.html"
    html = notebook_html(executed_tour().notebook)
    page_file.write_text(html, encoding="utf-8")
    assert not re.search(r'<(?:script|link)[^>]+(?:src|href)="https?:', html)  # no CDN script
    tokens = list(analyze(minilm, TEXT).tokens)

    context = browser.new_context(viewport={"width": 1100, "height": 900})
    tab = context.new_page()
    outside, errors = [], []
    tab.on(
        "request",
        lambda r: None if r.url.startswith(("file:", "blob:", "data:")) else outside.append(r.url),
    )
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        tab.goto(page_file.as_uri())
        tab.wait_for_function(
            "document.body.dataset.widgetsDrawn || document.body.dataset.widgetsError",
            timeout=60_000,
        )
        assert tab.evaluate("document.body.dataset.widgetsError") is None
        views = tab.locator(".anywidget-view[data-rendered]")
        assert views.count() == 2
        head, grid = views.nth(0), views.nth(1)
        head.locator(".atv-root[data-state=drawn]").wait_for()

        # the head view: the analysis' tokens on both sides, lines on its canvas
        assert head.locator(".atv-left .atv-text").all_text_contents() == tokens
        assert head.locator(".atv-right .atv-text").all_text_contents() == tokens
        assert int(head.locator(".atv-view").get_attribute("data-lines")) > 50
        assert head.locator("canvas.atv-canvas").evaluate(INK) > 2_000
        selection = json.loads(head.get_attribute("data-selection"))
        assert selection == {"layer": 2, "head": None, "heads": list(range(12))}

        head.scroll_into_view_if_needed()
        head.screenshot(path=str(SCREENSHOT))

        # clicking head 3's swatch hides its lines and selects it in the model
        lines_before = int(head.locator(".atv-view").get_attribute("data-lines"))
        head.locator(".atv-swatch[data-head='3']").click()
        selection = json.loads(head.get_attribute("data-selection"))
        assert selection["head"] == 3 and 3 not in selection["heads"]
        assert len(selection["heads"]) == 11
        assert int(head.locator(".atv-view").get_attribute("data-lines")) < lines_before

        # the model view: every thumbnail drawn, head (2, 5) open, a click selects another
        thumbs = grid.locator("canvas.atv-thumbs")
        assert thumbs.evaluate(INK) > 0.5 * thumbs.evaluate("c => c.width * c.height")
        assert json.loads(grid.get_attribute("data-selection"))["head"] == 5
        assert grid.locator(".atv-model-detail .atv-left .atv-text").all_text_contents() == tokens
        cell, gap, pad = (int(thumbs.get_attribute(f"data-{k}")) for k in ("cell", "gap", "pad"))
        thumbs.click(
            position={
                "x": pad + 1 * (cell + gap) + cell / 2,
                "y": pad + 4 * (cell + gap) + cell / 2,
            }
        )
        selection = json.loads(grid.get_attribute("data-selection"))
        assert (selection["layer"], selection["head"]) == (4, 1)
    finally:
        context.close()
    assert not outside, f"requests left the page: {outside[:5]}"
    assert not errors, errors
