"""Figures for papers, from a real MiniLM analysis rendered by kaleido in Debian's Chromium: an
SVG whose text nodes hold the tokens (Japanese ones too), a PNG of the asked-for pixel size, a PDF
of one page, and Japanese labels drawn as glyphs (not as boxes) in PNG, SVG and PDF."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from core import analyze
from core.policy.errors import FigureExportError
from core.policy.i18n import t
from viz import head_heatmap, layer_entropy_chart
from viz.export import _kaleido_options, chromium_path, figure_bytes, render_figure
from viz.labels import position_labels

TEXT = "Attention heads make figures for papers."
JA_TEXT = "東京は日本の首都です。"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def english(minilm):
    return analyze(minilm, TEXT)


@pytest.fixture(scope="module")
def japanese(minilm):
    return analyze(minilm, JA_TEXT)


def axis_texts(svg: bytes, axis: str) -> list[str]:
    """The tick labels of the ``x`` or ``y`` axis of a Plotly SVG, as its text nodes hold them."""
    root = ET.fromstring(svg)
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == f"{axis}axislayer-above"]
    assert len(groups) == 1
    return ["".join(node.itertext()) for node in groups[0].iter(f"{SVG}text")]


def all_texts(svg: bytes) -> list[str]:
    return ["".join(node.itertext()) for node in ET.fromstring(svg).iter(f"{SVG}text")]


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def pdf_pages(pdf: bytes) -> int:
    """Page objects (``/Type /Page``, not the ``/Type /Pages`` tree above them)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def test_chromium_is_debians_and_nothing_is_fetched():
    assert chromium_path() == "/usr/bin/chromium"
    options = _kaleido_options("/usr/bin/chromium")
    assert options["mathjax"] is False and options["path"] == "/usr/bin/chromium"
    from kaleido import PageGenerator

    page = PageGenerator(plotly=options["plotlyjs"], mathjax=options["mathjax"]).generate_index()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert len(scripts) == 2  # plotly.js, kaleido's own scope script
    assert all(src.startswith("file:///") for src in scripts), scripts
    assert "http" not in page


def test_svg_text_nodes_hold_the_tokens(english):
    svg = figure_bytes(head_heatmap(english, 0, 3), "svg")
    labels = position_labels(english.tokens)
    assert axis_texts(svg, "x") == labels
    assert axis_texts(svg, "y") == labels[::-1]  # query axis, first token at the top


def test_svg_of_a_japanese_text_holds_its_tokens_and_japanese_titles(japanese):
    svg = figure_bytes(head_heatmap(japanese, 1, 0, lang="ja"), "svg")
    assert axis_texts(svg, "x") == position_labels(japanese.tokens)
    assert {"東", "京", "都", "。"} <= set(japanese.tokens)
    texts = all_texts(svg)
    assert t("heatmap.key_axis", "ja") in texts and t("heatmap.query_axis", "ja") in texts


@pytest.mark.parametrize(("scale", "size"), [(1, None), (2, None), (3, (400, 300))])
def test_png_has_the_asked_for_pixel_size(english, scale, size):
    fig = head_heatmap(english, 0, 0)
    width, height = size or (900, fig.layout.height)
    kwargs = {"width": size[0], "height": size[1]} if size else {}
    rendered = render_figure(fig, "png", scale=scale, **kwargs)
    image = Image.open(io.BytesIO(rendered.data))
    assert image.format == "PNG"
    assert image.size == (width * scale, height * scale)
    assert (rendered.width, rendered.height, rendered.scale) == (width, height, scale)


def test_png_is_the_figure_not_a_blank_page(english):
    picture = pixels(figure_bytes(layer_entropy_chart(english), "png"))
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 20  # lines, labels, antialiasing


def test_pdf_has_exactly_one_page_of_the_figures_proportions(english):
    fig = head_heatmap(english, 2, 1)
    pdf = figure_bytes(fig, "pdf")
    assert pdf.startswith(b"%PDF-")
    assert pdf_pages(pdf) == 1
    (box,) = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    width, height = map(float, box)
    assert width / height == pytest.approx(900 / fig.layout.height, rel=0.01)


def test_page_counter_tells_pages_from_the_page_tree():
    tree = b"<< /Type /Pages /Kids [3 0 R 4 0 R] >> << /Type /Page >> << /Type/Page>>"
    assert pdf_pages(tree) == 2


def _is_cjk(char: str) -> bool:
    return "\u3041" <= char <= "\u9ffe"  # kana and ideographs (not the ideographic space)


def _other_cjk(label: str) -> str:
    """The label with every CJK character replaced by the next code point (another glyph)."""
    return "".join(chr(ord(c) + 1) if _is_cjk(c) else c for c in label)


def _with_labels(fig, change):
    other = fig.__class__(fig)
    trace = other.data[0]
    trace.x = [change(label) for label in trace.x]
    trace.y = [change(label) for label in trace.y]
    return other


def test_japanese_labels_are_glyphs_in_png_svg_and_pdf(japanese):
    fig = head_heatmap(japanese, 0, 0, lang="ja")
    png = figure_bytes(fig, "png", scale=2)
    # Other characters of the same width: a missing font draws the same box for every one of
    # them, so the pictures would be identical.
    other = figure_bytes(_with_labels(fig, _other_cjk), "png", scale=2)
    assert png != other
    difference = (pixels(png) != pixels(other)).any(axis=2).sum()
    assert difference > 2000, difference
    # The same labels with an ideographic space (same width, same layout) for every Japanese
    # character: the pixels that change are darker with the characters, so they were drawn.
    blank = _with_labels(fig, lambda s: "".join("\u3000" if _is_cjk(c) else c for c in s))
    plain = pixels(figure_bytes(blank, "png", scale=2))
    drawn = pixels(png)
    changed = (drawn != plain).any(axis=2)  # (H, W)
    assert changed.sum() > 2000, changed.sum()
    assert drawn[changed].sum(axis=1).mean() < plain[changed].sum(axis=1).mean() - 100
    # SVG keeps them as text; the PDF embeds a Japanese font for them.
    assert "1: 東" in axis_texts(figure_bytes(fig, "svg"), "x")
    pdf = figure_bytes(fig, "pdf")
    assert re.search(rb"/FontName\s*/[A-Z]{6}\+NotoSansCJK", pdf), "no CJK font in the PDF"
    assert pdf_pages(pdf) == 1


def test_no_chromium_is_a_clear_bilingual_error(english, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    assert chromium_path() is None
    with pytest.raises(FigureExportError) as caught:
        figure_bytes(head_heatmap(english, 0, 0), "png")
    assert caught.value.key == "error.no_chromium"
    assert "/nonexistent/chromium" in str(caught.value) and "BROWSER_PATH" in str(caught.value)
    japanese = caught.value.localized("ja")
    assert "Chromium" in japanese and "見つかりません" in japanese


def test_unknown_format_and_scale_are_refused(english):
    fig = head_heatmap(english, 0, 0)
    with pytest.raises(ValueError, match="format"):
        figure_bytes(fig, "jpeg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale"):
        figure_bytes(fig, "png", scale=0)


def test_the_readmes_export_example_writes_the_three_files(tmp_path, monkeypatch):
    from tests.integration.test_readme_api import README, python_blocks

    [(line, code)] = python_blocks(README.read_text(encoding="utf-8"), "## Exporting figures")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md:{line}", "exec"), {})
    assert Image.open(tmp_path / "head-0-0.png").size[0] == 900 * 3
    assert "1: 東" in axis_texts((tmp_path / "head-0-0.svg").read_bytes(), "x")
    assert pdf_pages((tmp_path / "head-0-0.pdf").read_bytes()) == 1


def test_streamlits_theme_does_not_reach_the_file(english, monkeypatch):
    """In the app, Streamlit makes its own Plotly theme the default once it draws a chart; a file
    rendered with it lost its margins and tick labels. Files always use plotly.py's template:
    the same picture whichever default was in force when the figure was built."""
    import plotly.io as pio
    from streamlit.elements.lib.streamlit_plotly_theme import configure_streamlit_plotly_theme

    monkeypatch.setattr(pio.templates, "default", "plotly")  # importing Streamlit may set it
    plain = pixels(figure_bytes(head_heatmap(english, 0, 0), "png"))
    configure_streamlit_plotly_theme()
    monkeypatch.setattr(pio.templates, "default", "streamlit")
    themed = head_heatmap(english, 0, 0)
    assert themed.layout.template.layout.font.color != pio.templates["plotly"].layout.font.color
    assert np.array_equal(pixels(figure_bytes(themed, "png")), plain)
    assert "streamlit" in pio.templates.default  # the app's own figures keep their theme
