"""The offline HTML report's page as written (viz/report.py), from a real MiniLM run: every script
carries the CSP's nonce, nothing is loaded from elsewhere, the data round-trips through its JSON
(Japanese as characters, U+2028 and markup escaped), and the README's example writes a report.
The page in Chromium is tested in tests/browser/test_report_browser.py."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from core import analyze
from tests.integration.test_readme_api import python_blocks
from viz.attention_view import decode_payload
from viz.report import report_html

README = Path(__file__).resolve().parents[2] / "README.md"
TEXT = "吾輩は猫である。\u2028The cat </b> & <i>dog</i>."


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of each script."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._open = dict(attrs)
            self.scripts.append((self._open, ""))

    def handle_data(self, data):
        if self._open is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._open = None


@pytest.fixture(scope="module")
def result(minilm):
    return analyze(minilm, TEXT)


def test_every_script_has_the_nonce_and_nothing_comes_from_elsewhere(result):
    html = report_html(result, lang="ja")
    page = Page()
    page.feed(html)
    csp = next(
        a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"
    )
    nonce = re.search(r"script-src 'nonce-([^']+)'", csp).group(1)
    assert "default-src 'none'" in csp and "connect-src" not in csp  # no connection allowed
    assert len(page.scripts) == 3
    for attrs, _ in page.scripts:
        assert attrs.get("type") == "application/json" or attrs.get("nonce") == nonce
    for tag, attrs in page.tags:
        assert not {"src", "href", "srcset", "action"} & set(attrs), (tag, attrs)
        if tag == "style":
            assert attrs.get("nonce") == nonce


def test_the_data_round_trips_with_japanese_and_markup_escaped(result):
    html = report_html(result, lang="ja")
    page = Page()
    page.feed(html)
    [(_, raw)] = [(a, s) for a, s in page.scripts if a.get("type") == "application/json"]
    assert "\u2028" not in raw and "<" not in raw and ">" not in raw
    assert "吾輩は猫" in raw  # characters, not \\u escapes
    data = json.loads(raw)
    assert data["text"] == TEXT
    assert data["strings"]["title"] == "AttnScope レポート"
    assert sorted(map(int, data["head_views"])) == list(range(result.n_layers))
    header, blobs = decode_payload(base64.b64decode(data["head_views"]["2"]))
    assert header["tokens"] == list(result.tokens) and header["layer"] == 2
    assert blobs["weights"].shape == (result.n_heads, result.seq_len, result.seq_len)
    expected = result.layer(2).numpy()
    assert abs(blobs["weights"] / 65535 - expected).max() < 1e-5
    layers = next(t for t in data["tables"] if t["name"] == "layer_entropy")
    assert [row[1] for row in layers["rows"]] == pytest.approx(result.layer_entropy.tolist())


def test_the_readmes_report_example_writes_a_report(tmp_path, monkeypatch):
    [(line, code)] = python_blocks(README.read_text(encoding="utf-8"), "## Offline HTML report")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md:{line}", "exec"), {})
    written = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert written.startswith("<!DOCTYPE html>") and 'lang="ja"' in written


def test_a_report_built_in_the_app_is_not_in_streamlits_theme(result, monkeypatch):
    """Built in the app, every figure would carry Streamlit's theme (the default once it has
    drawn a chart), which needs the app page's CSS: the report's figures use plotly.py's."""
    import plotly.io as pio
    from streamlit.elements.lib.streamlit_plotly_theme import configure_streamlit_plotly_theme

    from viz.report import report_data

    configure_streamlit_plotly_theme()
    monkeypatch.setattr(pio.templates, "default", "streamlit")
    data = report_data(result)
    figures = [data["entropy"], *data["heatmaps"].values()]
    expected = pio.templates["plotly"].layout.font.color
    assert len(figures) == 1 + len(result.held_layers)
    assert {f["layout"]["template"]["layout"]["font"]["color"] for f in figures} == {expected}
