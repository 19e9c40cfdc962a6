"""Figures as files for papers and slides: a Plotly figure rendered to PNG, SVG or PDF by kaleido
in the Chromium this machine already has, offline.

kaleido 1.x drives a Chrome through choreographer. Left to itself, choreographer looks for a copy
it downloaded into its own package folder (``kaleido.get_chrome()``), then ``$BROWSER_PATH``, then
``chrome``/``chromium``/... on ``$PATH`` and their usual install paths; kaleido's page loads
MathJax from a CDN unless told not to. Here nothing is left to it: :func:`chromium_path` picks the
browser (``$BROWSER_PATH``, else ``/usr/bin/chromium`` and its kin) and it is passed as ``path=``,
so no download is ever looked for or made; the page loads plotly.py's own ``plotly.min.js`` from
disk, MathJax is off, and Chromium runs with a proxy that answers nothing, so a render that tried
to reach the network would fail here rather than quietly depend on it.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from core.policy.errors import FigureExportError

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "EXPORT_FORMATS",
    "MIME_TYPES",
    "PNG_SCALES",
    "ExportFormat",
    "RenderedFigure",
    "chromium_path",
    "export_size",
    "figure_bytes",
    "portable_figure",
    "render_figure",
]

ExportFormat = Literal["png", "svg", "pdf"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("png", "svg", "pdf")
MIME_TYPES: dict[ExportFormat, str] = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
}
# PNG only: pixels per figure unit (2 for a slide, 3-4 for print at column width).
PNG_SCALES = (1, 2, 3, 4)
MAX_SCALE = 8
# Width of a figure that leaves it to the page (the app's figures fill their column).
DEFAULT_WIDTH = 900
DEFAULT_HEIGHT = 600
RENDER_TIMEOUT_S = 60
# Every file is drawn with plotly.py's own template. Inside the app Streamlit makes its theme the
# default for every figure built after its first chart; that theme leans on the page's CSS, so a
# file rendered with it lost its margins and its tick labels (seen in a PNG from the app).
EXPORT_TEMPLATE = "plotly"
# Where Debian, Ubuntu and Chrome's own packages put the browser, in the order tried.
CHROMIUM_CANDIDATES = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome-stable",
    "/usr/bin/google-chrome",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
# A proxy nobody listens on (port 9 is "discard"): a network request fails at once.
NO_NETWORK_PROXY = "http://127.0.0.1:9"


@dataclass(frozen=True)
class RenderedFigure:
    """A figure as a file: its bytes, format, MIME type, pixel size of the page it was laid out
    on (before ``scale``) and how long Chromium took."""

    data: bytes
    fmt: ExportFormat
    mime: str
    width: int
    height: int
    scale: float
    seconds: float


def _executable(path: str | None) -> bool:
    return bool(path) and Path(path).is_file() and os.access(path, os.X_OK)


def chromium_path() -> str | None:
    """The browser kaleido will drive: ``$BROWSER_PATH`` when set (choreographer's own
    override; it must then exist), else the first of :data:`CHROMIUM_CANDIDATES` and
    :data:`CHROMIUM_NAMES` on ``$PATH`` that is there; ``None`` when there is none."""
    chosen = os.environ.get("BROWSER_PATH")
    if chosen:
        return chosen if _executable(chosen) else None
    for candidate in CHROMIUM_CANDIDATES:
        if _executable(candidate):
            return candidate
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if _executable(found):
            return found
    return None


def portable_figure(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` drawn with plotly.py's own template (:data:`EXPORT_TEMPLATE`), for a
    file or a page of its own; the figure on the app's page keeps its look.

    >>> import plotly.graph_objects as go
    >>> dark = go.Figure(layout={"template": "plotly_dark"})
    >>> portable_figure(dark).layout.template.layout.font.color
    '#2a3f5f'
    """
    import plotly.graph_objects as go_runtime
    import plotly.io as pio

    copy = go_runtime.Figure(fig)
    copy.layout.template = pio.templates[EXPORT_TEMPLATE]
    return copy


def export_size(fig: go.Figure) -> tuple[int, int]:
    """``(width, height)`` the figure is laid out at: its own, else 900 x 600.

    >>> import plotly.graph_objects as go
    >>> export_size(go.Figure(layout={"height": 420}))
    (900, 420)
    """
    width = fig.layout.width or DEFAULT_WIDTH
    height = fig.layout.height or DEFAULT_HEIGHT
    return int(width), int(height)


def _kaleido_options(browser: str) -> dict[str, object]:
    """kaleido's own options: this browser, plotly.py's plotly.js from disk, no MathJax, no
    network."""
    import plotly

    plotly_js = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    return {
        "path": browser,
        "plotlyjs": plotly_js.as_uri(),
        "mathjax": False,
        "timeout": RENDER_TIMEOUT_S,
        "proxy_server": NO_NETWORK_PROXY,
    }


def render_figure(
    fig: go.Figure,
    fmt: ExportFormat,
    *,
    scale: float = 1,
    width: int | None = None,
    height: int | None = None,
) -> RenderedFigure:
    """``fig`` as a ``fmt`` file. A PNG is ``round(width * scale) x round(height * scale)``
    pixels; SVG and PDF are vectors (``scale`` is ignored), text stays text. ``width`` and
    ``height`` default to :func:`export_size`. Takes a few seconds (Chromium starts each time).

    Raises :class:`core.policy.errors.FigureExportError` when no Chromium is found or the render
    fails; ``ValueError`` on a format or scale outside the choices.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {EXPORT_FORMATS}, not {fmt!r}")
    if not 0 < scale <= MAX_SCALE:
        raise ValueError(f"scale must be above 0 and at most {MAX_SCALE}, not {scale!r}")
    browser = chromium_path()
    if browser is None:
        searched = os.environ.get("BROWSER_PATH") or ", ".join(CHROMIUM_CANDIDATES)
        raise FigureExportError("error.no_chromium", searched=searched)
    own_width, own_height = export_size(fig)
    width, height = width or own_width, height or own_height
    scale = scale if fmt == "png" else 1
    import kaleido  # a second to import; only when a file is asked for

    paper = portable_figure(fig)
    started = time.perf_counter()
    try:
        data = kaleido.calc_fig_sync(
            paper,
            opts={"format": fmt, "width": width, "height": height, "scale": scale},
            kopts=_kaleido_options(browser),
        )
    except Exception as error:  # Chromium crashed, timed out, or plotly.js refused the figure
        detail = f"{type(error).__name__}: {str(error)[:200]}"
        raise FigureExportError("error.export_failed", fmt=fmt.upper(), detail=detail) from error
    return RenderedFigure(
        data=bytes(data),
        fmt=fmt,
        mime=MIME_TYPES[fmt],
        width=width,
        height=height,
        scale=scale,
        seconds=time.perf_counter() - started,
    )


def figure_bytes(fig: go.Figure, fmt: ExportFormat, *, scale: float = 1, **size: int) -> bytes:
    """The bytes of :func:`render_figure` (``width=``, ``height=`` as there)."""
    return render_figure(fig, fmt, scale=scale, **size).data
