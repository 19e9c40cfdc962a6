"""The figure download control in the app: nothing is rendered until Prepare is pressed; then the
heatmap on the page comes back as an SVG whose tick labels are the analysis' tokens, and as a PNG
of the chosen scale; another layer is another figure, so the prepared file is dropped."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager

from core import analyze
from tests.app.helpers import analyze_in_app, plotly_specs
from viz.labels import position_labels

HEATMAPS = "pages/heatmaps.py"
TEXT = "Figures for papers, 論文の図."
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def files(monkeypatch):
    """The bytes download buttons were given: (file name, MIME type, data)."""
    made: list[tuple[str, str, bytes]] = []
    original = MediaFileManager.add

    def record(self, path_or_data, mimetype, coordinates, file_name=None, **kwargs):
        if isinstance(path_or_data, bytes):
            made.append((file_name, mimetype, path_or_data))
        return original(self, path_or_data, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add", record)
    return made


def figure_buttons(app) -> list:
    return [b for b in app.get("download_button") if b.proto.label.startswith("Download heatmap")]


def test_heatmap_downloads_as_svg_and_png_when_asked(app, minilm, files):
    analyze_in_app(app, TEXT)
    app.switch_page(HEATMAPS).run()
    assert not app.exception
    assert figure_buttons(app) == [] and "figure_files" not in app.session_state

    app.radio(key="heatmap__export_format").set_value("svg").run()
    app.button(key="heatmap__export_prepare").click().run()
    assert not app.exception, app.exception
    [button] = figure_buttons(app)
    assert button.proto.label == "Download heatmap.svg"
    name, mime, data = files[-1]
    assert (name, mime) == ("heatmap.svg", "image/svg+xml")
    tokens = analyze(minilm, TEXT).tokens
    assert "の" in tokens and "論 [UNK]" in tokens
    root = ET.fromstring(data)
    (ticks,) = [g for g in root.iter(f"{SVG}g") if g.get("class") == "xaxislayer-above"]
    assert ["".join(t.itertext()) for t in ticks.iter(f"{SVG}text")] == position_labels(tokens)

    app.radio(key="heatmap__export_format").set_value("png").run()
    assert figure_buttons(app) == []  # the SVG is not offered as a PNG
    app.select_slider(key="heatmap__export_scale").set_value(3).run()
    app.button(key="heatmap__export_prepare").click().run()
    name, mime, data = files[-1]
    assert (name, mime) == ("heatmap.png", "image/png")
    [rendered] = app.session_state["figure_files"].values()  # one file kept per session
    assert rendered.data == data and rendered.scale == 3
    image = Image.open(io.BytesIO(data))
    assert image.size == (900 * 3, rendered.height * 3)
    assert rendered.height == plotly_specs(app)[0]["layout"]["height"]
    assert len(figure_buttons(app)) == 1

    app.selectbox(key="heatmaps_layer").set_value(2).run()  # another figure
    assert figure_buttons(app) == []
