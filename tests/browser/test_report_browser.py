"""The offline HTML report (viz/report.py) of a real MiniLM run, opened from disk in Chromium: no
network request and no console error, the views drawn, the heatmap's ticks and the tables equal
to the analysis, Japanese kept, a markup token inert; and the head view's shift-click selection
(summed and mean attention of several queries) checked against the analysis' own weights."""

from __future__ import annotations

import dataclasses
from collections import Counter
from html.parser import HTMLParser

import pytest
import torch

from core import analyze
from viz.labels import position_labels
from viz.report import write_report

TEXT = "The cat sat on the mat. 吾輩は猫である。名前はまだ無い。"
EVIL = "</script><img src=x onerror=alert(1)>"
# Read back what a weight was sent as: 16-bit fixed point, so 1/65535 per weight at most.
SENT = 1 / 65535
LOCAL = ("file://", "data:", "blob:", "about:")


@pytest.fixture(scope="module")
def result(minilm):
    return analyze(minilm, TEXT)


def open_report(browser, path):
    """The report in a fresh tab, with everything it requests, logs as an error or opens as a
    dialog recorded; returns once report.js has drawn every section."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    tab = context.new_page()
    seen = {"requests": [], "errors": [], "dialogs": []}
    tab.on("request", lambda r: seen["requests"].append(r.url))
    tab.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda error: seen["errors"].append(str(error)))

    def on_dialog(dialog):
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.goto(path.as_uri())
    tab.wait_for_function("document.body.dataset.state === 'drawn'", timeout=60_000)
    tab.locator("#r-heatmap .xtick text").first.wait_for(timeout=30_000)
    tab.wait_for_timeout(300)  # a late error or request would show up here
    return context, tab, seen


def start_tags(html: str) -> dict[str, int]:
    """How many ``script`` and ``style`` elements an HTML parser finds, and any ``img``."""
    found: Counter[str] = Counter()

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in ("script", "style", "img"):
                found[tag] += 1

    Tags().feed(html)
    return dict(found)


def network(seen) -> list[str]:
    return [url for url in seen["requests"] if not url.startswith(LOCAL)]


def table(tab, name: str) -> list[list[str]]:
    return tab.evaluate(
        """name => [...document.querySelectorAll(`table[data-name="${name}"] tbody tr`)]
            .map(tr => [...tr.cells].map(td => td.textContent))""",
        name,
    )


def test_report_opens_offline_and_shows_the_analysis(browser, result, tmp_path):
    path = write_report(result, tmp_path / "report.html")
    context, tab, seen = open_report(browser, path)
    try:
        assert network(seen) == []
        assert [u for u in seen["requests"] if u != path.as_uri()] == []  # not even a file
        assert seen["errors"] == []
        # the text (Japanese as written) and the model
        assert tab.locator("#r-text").text_content() == TEXT
        assert "minilm" in tab.locator("#r-facts").text_content()
        # head view: the tokens, Japanese included, and lines drawn on its canvas
        left = tab.locator("#r-head-view .atv-left .atv-text").all_text_contents()
        assert left == list(result.tokens)
        assert any("猫" in token for token in left)
        painted = tab.evaluate(
            """() => {
                const c = document.querySelector('#r-head-view canvas.atv-canvas');
                const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
                return n;
            }"""
        )
        assert painted > 1000
        assert int(tab.locator("#r-head-view .atv-view").get_attribute("data-lines")) > 0
        # model view: a thumbnail canvas per layer x head grid, not blank
        assert tab.locator("#r-model-view canvas.atv-thumbs").count() == 1
        # heatmap of layer 0: its tick labels are the tokens
        labels = position_labels(result.tokens)
        ticks = tab.locator("#r-heatmap .xtick text").all_text_contents()
        assert ticks == labels
        rows = tab.locator("#r-heatmap .ytick text").all_text_contents()
        assert rows[::-1] == labels  # the y axis runs top to bottom: drawn from the last
        # tables: the analysis' statistics (4 decimals shown)
        layers = table(tab, "layer_entropy")
        assert [int(row[0]) for row in layers] == list(range(result.n_layers))
        for row, expected in zip(layers, result.layer_entropy.tolist(), strict=True):
            assert float(row[1]) == pytest.approx(expected, abs=5e-5)
        heads = table(tab, "head_entropy")
        assert len(heads) == result.n_layers * result.n_heads
        for row in heads:
            layer, head = int(row[0]), int(row[1])
            assert float(row[2]) == pytest.approx(float(result.head_entropy[layer, head]), abs=5e-5)
            normalized = float(result.normalized_head_entropy[layer, head])
            assert float(row[3]) == pytest.approx(normalized, abs=5e-5)
        top = result.most_attended(5)
        attended = table(tab, "most_attended")
        assert [(int(r[0]), int(r[2]), r[3]) for r in attended] == [
            (a.layer, a.position, a.token) for a in top
        ]
        for row, expected in zip(attended, top, strict=True):
            assert float(row[4]) == pytest.approx(expected.share, abs=5e-5)
        assert [row[1] for row in table(tab, "tokens")] == list(result.tokens)
        # another layer from the picker: its heatmap and head view replace the first
        tab.select_option("#r-heatmap-layer", "3")
        tab.wait_for_function(
            "document.querySelector('#r-heatmap .gtitle').textContent.includes('3')"
        )
        tab.select_option("#r-head-layer", "5")
        assert tab.locator("#r-head-view .atv-title").text_content().startswith("Layer 5")
        assert seen["errors"] == [] and network(seen) == []
    finally:
        context.close()


def test_a_markup_token_stays_text(browser, result, tmp_path):
    tokens = list(result.tokens)
    tokens[2] = EVIL
    evil = dataclasses.replace(result, tokens=tuple(tokens), text=EVIL + " " + TEXT)
    path = write_report(evil, tmp_path / "evil.html", model=EVIL)
    html = path.read_text(encoding="utf-8")
    assert EVIL not in html
    assert html.count("</script>") == 3  # data, plotly.js, views: none from a token
    assert start_tags(html) == {"script": 3, "style": 3}  # as an HTML parser reads the page
    context, tab, seen = open_report(browser, path)
    try:
        assert seen["dialogs"] == []
        assert network(seen) == [] and seen["errors"] == []
        assert tab.locator("img").count() == 0
        assert tab.locator("script").count() == 3
        assert tab.locator("#r-text").text_content() == EVIL + " " + TEXT
        left = tab.locator("#r-head-view .atv-left .atv-text").all_text_contents()
        assert left[2] == EVIL
        assert tab.locator("#r-heatmap .xtick text").all_text_contents()[2] == f"2: {EVIL}"
        assert EVIL in tab.title()
    finally:
        context.close()


def drawing(tab) -> dict:
    return tab.evaluate("document.querySelector('#r-head-view .atv-view').attnscopeDrawing()")


def check_lines(state: dict, rows: torch.Tensor, queries: list[int]) -> None:
    """Every line drawn from the selected queries carries ``rows[h, key]`` (the combined weight
    computed here), and every (head, key) of at least 0.001 has one line per selected query."""
    drawn: dict[tuple[int, int], list] = {}
    for line in state["lines"]:
        drawn.setdefault((line["head"], line["key"]), []).append(line)
    expected = {(h, k) for h, k in (rows >= 0.001 + 4 * SENT).nonzero().tolist()}
    assert expected <= set(drawn)
    for (head, key), lines in drawn.items():
        assert sorted(line["query"] for line in lines) == queries
        for line in lines:
            assert line["weight"] == pytest.approx(float(rows[head, key]), abs=3 * SENT)


def test_shift_click_sums_and_averages_the_selected_queries(browser, result, tmp_path):
    path = write_report(result, tmp_path / "report.html")
    context, tab, seen = open_report(browser, path)
    try:
        queries = [2, 5]  # "cat", "the"
        labels = tab.locator("#r-head-view .atv-left .atv-token")
        labels.nth(4).click()  # a plain click selects nothing, as before
        assert drawing(tab)["selection"] == []
        for query in queries:
            labels.nth(query).click(modifiers=["Shift"])
        tab.mouse.move(5, 5)  # off the tokens: the selection is what is drawn
        state = drawing(tab)
        assert state["mode"] == "selection" and state["selection"] == queries
        assert state["aggregate"] == "sum"
        weights = result.layer(0).double()  # (H, T, T), independent of the page
        summed = weights[:, queries, :].sum(1)  # (H, T)
        check_lines(state, summed, queries)
        # the side panel: each key's combined weight, averaged over the heads shown
        panel = tab.evaluate(
            """() => [...document.querySelectorAll('#r-head-view .atv-right .atv-token')]
                .map(k => Number(k.dataset.weight))"""
        )
        assert panel == pytest.approx(summed.mean(0).tolist(), abs=3 * SENT)
        shown = tab.locator("#r-head-view .atv-selection-count").text_content()
        assert shown.startswith("2 selected")
        # the mean of the two rows
        tab.select_option("#r-head-view .atv-aggregate", "mean")
        state = drawing(tab)
        assert state["aggregate"] == "mean"
        check_lines(state, summed / 2, queries)
        # shift-click again removes a query; Clear empties the selection
        labels.nth(5).click(modifiers=["Shift"])
        tab.mouse.move(5, 5)
        state = drawing(tab)
        assert state["selection"] == [2]
        check_lines(state, weights[:, 2, :], [2])
        tab.locator("#r-head-view .atv-selection-clear").click()
        state = drawing(tab)
        assert state["mode"] == "all" and state["selection"] == []
        assert seen["errors"] == [] and network(seen) == []
    finally:
        context.close()
