"""The corpus views in a real browser, on runs made here through core.corpus: the bundled corpus
through MiniLM (every view; a click on the grid opens the head's histogram; a click on the
atlas opens that head; a "where it fires" hit opens its text on the Heatmaps page at that layer
and head, with that text's tokens and the head's weights), 48 bundled texts through SmolLM2
(every view draws), detector scores and query-key maps of both models (the numbers drawn are
core's), a corpus of injection strings (no dialog, no request leaving the machine, the strings
shown as text) and one look in Japanese."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from bench.appserver import choose_option
from core import analyze
from core.corpus import BatchOptions, Corpus, run_corpus, sample_corpus
from core.corpus.detectors import corpus_detectors, sample_texts
from core.corpus.views import where_it_fires
from core.methods.qk_map import qk_map
from tests.browser.conftest import start_server
from viz.corpus import hit_label
from viz.labels import axis_labels

SCREENSHOTS = Path(__file__).resolve().parents[2] / "assets" / "screenshots"
OPTIONS = BatchOptions(batch_size=16, chunk_size=64)
INJECTIONS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click me](http://example.com/x) and ![pixel](http://example.com/p.png)",
    "[run](javascript:alert(1)) then <a href='javascript:alert(2)'>a</a>",
    "<iframe src=http://example.com></iframe> &amp; {{7*7}}",
    "<svg onload=alert(1)> <b>bold</b>",
)


@pytest.fixture(scope="module")
def runs(minilm, smollm2, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    made = {"minilm": run_corpus(sample_corpus(), minilm, out=root / "a-minilm", options=OPTIONS)}
    made["smollm2"] = run_corpus(
        sample_corpus().head(48), smollm2, out=root / "b-smollm2", options=OPTIONS
    )
    injected = Corpus(
        texts=INJECTIONS,
        source="inject",
        format="text",
        labels={"kind": ("<b>x</b>", "[y](http://example.com)") * 3},
    )
    made["inject"] = run_corpus(injected, minilm, out=root / "c-inject", options=OPTIONS)
    return root, made


@pytest.fixture(scope="module")
def app(runs, browser):
    root, _ = runs
    server = start_server("corpus-views", ATTNSCOPE_RUNS_DIR=str(root))
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    seen = {"dialogs": [], "external": [], "errors": []}

    def on_dialog(dialog):
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith((server.url, "data:", "about:", "blob:"))
            else seen["external"].append(r.url)
        ),
    )
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.goto(server.url)
    page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=180_000)
    settle(page)
    page.seen = seen
    yield page
    context.close()
    server.stop()


def settle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=180_000
    )


def open_run(page, folder: str, n_texts: int) -> None:
    page.get_by_role("link", name="Corpus").click()
    page.get_by_role("tab", name="Run", exact=True).click()
    page.get_by_role("tab", name="Open a run").click()
    choose_option(page, "Runs on this server", folder)
    page.locator("button[kind=secondary]").filter(has_text=re.compile("^Open$")).click()
    page.get_by_text(f"Complete · {n_texts} of {n_texts} texts", exact=False).wait_for()
    settle(page)


def tab(page, name: str):
    page.get_by_role("tab", name=name, exact=True).click()
    panel = page.get_by_role("tabpanel", name=name)
    panel.wait_for()
    return panel


def click_point(page, chart, x: float, y: float) -> None:
    """Click the point at data coordinates (x, y) of a Plotly chart."""
    chart.scroll_into_view_if_needed()
    plot = chart.locator(".js-plotly-plot")
    box = plot.bounding_box()
    px, py = plot.evaluate(
        """(el, [x, y]) => {
            const l = el._fullLayout;
            return [l.xaxis.l2p(x) + l.xaxis._offset, l.yaxis.l2p(y) + l.yaxis._offset];
        }""",
        [x, y],
    )
    page.mouse.click(box["x"] + px, box["y"] + py)
    settle(page)


def test_views_of_the_bundled_corpus_and_a_hit_opened_in_heatmaps(app, runs, minilm):
    page, (_, made) = app, runs
    open_run(page, "a-minilm", 240)
    panel = tab(page, "Distributions")
    grid = panel.locator("[data-testid=stPlotlyChart]").first
    grid.locator(".js-plotly-plot").wait_for()
    click_point(page, grid, 7, 3)  # head 7 of layer 3
    panel.get_by_text(re.compile(r"Head 3\.7: median [\d.]+, IQR")).wait_for(timeout=30_000)
    histogram = panel.locator("[data-testid=stPlotlyChart] .js-plotly-plot").nth(2)
    title = histogram.evaluate("el => el.layout.title.text")
    assert "entropy of head 3.7 over 240 texts" in title
    panel.get_by_text("Split by a corpus label").wait_for()

    panel = tab(page, "Head atlas")
    atlas = panel.locator("[data-testid=stPlotlyChart]").first
    atlas.locator(".js-plotly-plot").wait_for()
    points = atlas.locator(".js-plotly-plot").evaluate(
        "el => el.data.flatMap(t => t.customdata.map((c, i) => [c[0], c[1], t.x[i], t.y[i]]))"
    )
    assert len(points) == 72
    layer, head, x, y = next(p for p in points if (p[0], p[1]) == (5, 4))
    click_point(page, atlas, x, y)
    panel.get_by_text(re.compile(r"Head 5\.4: cluster \d+, usually")).wait_for(timeout=30_000)
    panel.get_by_text("KMeans(n_clusters=6, n_init=10, random_state=0)", exact=False).wait_for()
    atlas.scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "corpus_atlas.png")

    panel = tab(page, "Where it fires")
    panel.get_by_role("combobox", name="Head", exact=True).wait_for()
    # the head clicked on the atlas is the head of every view
    assert panel.get_by_role("combobox", name="Layer", exact=True).input_value() == "5"
    assert panel.get_by_role("combobox", name="Head", exact=True).input_value() == "4"
    hit = where_it_fires(made["minilm"], 5, 4, limit=1)[0]
    panel.locator("[data-testid=stDataFrame]").wait_for()
    page.screenshot(path=SCREENSHOTS / "corpus_where_it_fires.png")
    panel.get_by_role("button", name="Open in Heatmaps").click()
    page.get_by_role("heading", name="Attention heatmaps").wait_for(timeout=60_000)
    settle(page)
    assert page.get_by_role("textbox", name="Text").input_value() == hit.text
    heatmap = page.locator(".js-plotly-plot").first
    heatmap.wait_for()
    drawn = heatmap.evaluate("el => [el.data[0].x, el.data[0].y, el.layout.title.text]")
    tokens = list(
        made["minilm"].query("SELECT tokens FROM texts WHERE text_id = ?", [hit.text_id]).tokens[0]
    )
    assert drawn[0] == axis_labels(tokens) and drawn[1] == axis_labels(tokens)
    assert "layer 5" in drawn[2].lower() and "head 4" in drawn[2].lower()
    z = np.array(heatmap.evaluate("el => Array.from(el.calcdata[0][0].z, r => Array.from(r))"))
    expected = analyze(minilm, hit.text).head(5, 4).numpy()
    np.testing.assert_allclose(z, expected, atol=1e-3)
    assert z[hit.query, hit.key] == pytest.approx(hit.weight, abs=1e-3)
    assert not page.seen["dialogs"] and not page.seen["external"], page.seen
    assert page.locator("[data-testid=stException]").count() == 0


def test_every_view_draws_for_smollm2(app):
    page = app
    open_run(page, "b-smollm2", 48)
    panel = tab(page, "Distributions")
    panel.get_by_text(re.compile(r"Head \d+\.\d+: median .*, 48 texts\.")).wait_for(timeout=30_000)
    panel = tab(page, "Where it fires")
    panel.locator("[data-testid=stDataFrame]").wait_for()
    panel = tab(page, "Head atlas")
    atlas = panel.locator("[data-testid=stPlotlyChart] .js-plotly-plot").first
    atlas.wait_for()
    page.wait_for_function(  # every one of SmolLM2's 30 x 9 heads on the map
        """() => [...document.querySelectorAll('.js-plotly-plot')].some(el => el.data &&
            el.data.reduce((n, t) => n + (t.customdata ? t.customdata.length : 0), 0) === 270)"""
    )
    assert page.locator("[data-testid=stException]").count() == 0


CALC_Z = "el => Array.from(el.calcdata[0][0].z, r => Array.from(r))"  # a heatmap's values drawn


def drawn_grid(page, chart, n_layers: int) -> np.ndarray:
    """A layer x head heatmap's values once it shows this model's layers (a chart of the run
    shown before is redrawn in place)."""
    rows = "el => el.calcdata ? el.calcdata[0][0].z.length : -1"
    for _ in range(120):
        if chart.evaluate(rows) == n_layers:
            break
        page.wait_for_timeout(500)
    assert chart.evaluate(rows) == n_layers, chart.evaluate("el => el.layout.title.text")
    return np.array(chart.evaluate(CALC_Z))


def plotted_points(chart) -> np.ndarray:
    """Every (x, y) point of a drawn Plotly scatter, sorted."""
    points = chart.evaluate("el => el.calcdata.flatMap(trace => trace.map(p => [p.x, p.y]))")
    return np.array(sorted(map(tuple, points)))


def check_query_key_map(page, run, model, n_texts: int) -> None:
    """The Query-key map tab draws the chosen head's map over the seeded sample of the run:
    the points are those of core's own qk_map on the same texts."""
    panel = tab(page, "Query-key map")
    layer = int(panel.get_by_role("combobox", name="Layer", exact=True).input_value())
    head = int(panel.get_by_role("combobox", name="Head", exact=True).input_value())
    texts = panel.get_by_label("Texts in the sample")
    texts.fill(str(n_texts))
    texts.press("Enter")
    settle(page)
    if not panel.get_by_label("Compute the map").is_checked():  # it stays on from run to run
        panel.get_by_text("Compute the map").click()
    sample = [text for _, text in sample_texts(run, n_texts, 0)]
    expected = qk_map(model, sample, layer, head, max_tokens=2000, seed=0)
    chart = panel.locator(".js-plotly-plot").first
    chart.wait_for(timeout=120_000)
    count = "el => el.calcdata ? el.calcdata.reduce((s, t) => s + t.length, 0) : -1"
    for _ in range(240):  # the map of this sample, drawn: 2 points per token
        if chart.evaluate(count) == 2 * expected.n_tokens:
            break
        page.wait_for_timeout(500)
    settle(page)
    title = chart.evaluate("el => el.layout.title.text")
    assert chart.evaluate(count) == 2 * expected.n_tokens, (title, expected.n_tokens)
    drawn = plotted_points(chart)
    assert len(drawn) == 2 * expected.n_tokens
    np.testing.assert_allclose(drawn, np.array(sorted(map(tuple, expected.points))), atol=1e-3)
    assert f"layer {layer}" in title.lower() and f"head {head}" in title.lower()


def test_detector_scores_and_query_key_maps_of_both_models(app, runs, minilm, smollm2):
    page, (_, made) = app, runs
    for name, model, n_texts in (("minilm", minilm, 240), ("smollm2", smollm2, 48)):
        folder = "a-minilm" if name == "minilm" else "b-smollm2"
        open_run(page, folder, n_texts)
        run = made[name]
        panel = tab(page, "Detector scores")
        panel.get_by_role("tab", name="previous-token score").click()
        chart = panel.get_by_role("tabpanel", name="previous-token score").locator(
            ".js-plotly-plot"
        )
        chart.wait_for(timeout=60_000)
        z = drawn_grid(page, chart, model.n_layers)
        found = corpus_detectors(run)  # the first tab: the previous-token score per head
        np.testing.assert_allclose(z, found.on_texts["previous_token"], atol=1e-6)
        panel.get_by_role("tab", name="induction score").click()
        induction = panel.get_by_role("tabpanel", name="induction score")
        drawn = induction.locator(".js-plotly-plot").first
        drawn.wait_for()
        z = drawn_grid(page, drawn, model.n_layers)
        np.testing.assert_allclose(z, found.induction, atol=1e-6)
        check_query_key_map(page, run, model, 5 if name == "minilm" else 3)
    assert page.locator("[data-testid=stException]").count() == 0
    assert not page.seen["dialogs"] and not page.seen["external"], page.seen


def test_injection_strings_stay_text_and_nothing_leaves_the_machine(app, runs):
    page, (_, made) = app, runs
    open_run(page, "c-inject", 6)
    panel = tab(page, "Where it fires")
    panel.locator("[data-testid=stDataFrame]").wait_for()
    layer = int(panel.get_by_role("combobox", name="Layer", exact=True).input_value())
    head = int(panel.get_by_role("combobox", name="Head", exact=True).input_value())
    top = where_it_fires(made["inject"], layer, head, limit=1)[0]
    assert top.text in INJECTIONS
    # the chosen hit names its text as written: markup shown as text, not run
    expect(panel.get_by_role("combobox", name="Hit")).to_have_value(
        hit_label(1, top), timeout=60_000
    )
    panel = tab(page, "Distributions")
    panel.get_by_text("Split by a corpus label").wait_for()
    panel.locator("[data-testid=stPlotlyChart]").nth(3).wait_for()  # the split's grid
    tab(page, "Head atlas").locator(".js-plotly-plot").first.wait_for()
    settle(page)
    panel = tab(page, "Query-key map")  # every token's text is in a hover label
    if not panel.get_by_label("Compute the map").is_checked():  # it stays on from run to run
        panel.get_by_text("Compute the map").click()
    panel.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    settle(page)
    assert page.locator("img[src='http://example.com/p.png'], iframe[src^='http']").count() == 0
    assert page.locator("a[href^='javascript:']").count() == 0
    assert not page.seen["dialogs"], page.seen["dialogs"]
    assert not page.seen["external"], page.seen["external"]
    assert page.locator("[data-testid=stException]").count() == 0


def test_the_views_speak_japanese(app):
    page = app
    choose_option(page, "Language / 言語", "日本語")
    settle(page)
    page.get_by_role("tab", name="ヘッドの地図").wait_for()
    page.get_by_role("tab", name="発火する箇所").wait_for()
    assert not page.seen["dialogs"] and not page.seen["external"]
