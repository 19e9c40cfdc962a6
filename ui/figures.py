"""Every Plotly figure on a page, shown with a compact control beside it that downloads the figure
as PNG (at a chosen scale), SVG or PDF; the file is rendered only when asked for, since Chromium
takes seconds (see ``viz/export.py``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st

from core import AttnScopeError
from ui.services import count_request, heavy_work
from ui.state import FIGURE_FILES
from ui.text import show_error, tr
from viz.export import EXPORT_FORMATS, PNG_SCALES, ExportFormat, RenderedFigure, render_figure

# Widget keys: the figure's own key with these suffixes, so each figure keeps its own choice.
FORMAT_SUFFIX = "__export_format"
SCALE_SUFFIX = "__export_scale"
PREPARE_SUFFIX = "__export_prepare"
DOWNLOAD_SUFFIX = "__export_download"
DEFAULT_SCALE = 2


def live_figure(placeholder, fig: go.Figure) -> None:
    """``fig`` drawn into ``placeholder`` (an ``st.empty``), replacing what it showed: a curve
    redrawn while work runs (the Lab's training). No key and no download control, since it is
    drawn many times in one script run; the finished figure is shown with :func:`show_figure`."""
    placeholder.plotly_chart(fig)


def show_figure(
    fig: go.Figure,
    *,
    key: str,
    name: str | None = None,
    on_select: Callable[[], None] | None = None,
):
    """``fig`` on the page (``st.plotly_chart``) and, under it, a popover that downloads it;
    ``name`` is the file's stem (the widget ``key`` if not given). With ``on_select``, a click on
    a point selects it and calls ``on_select`` before the rerun (the selection is in
    ``st.session_state[key]``); the chart's selection event is returned."""
    clicks = {} if on_select is None else {"on_select": on_select, "selection_mode": "points"}
    event = st.plotly_chart(fig, key=key, **clicks)
    with st.popover(tr("common.export_figure"), icon=":material/download:"):
        export_controls(fig, key=key, name=name or key)
    return event


def _fingerprint(fig: go.Figure) -> str:
    """What the figure draws, by content: a changed layer or head is a different figure."""
    return hashlib.sha1(fig.to_json().encode("utf-8")).hexdigest()[:16]


@st.fragment
def export_controls(fig: go.Figure, *, key: str, name: str) -> None:
    """Format, PNG scale, a Prepare button that renders the file, then its download button
    (kept, one per session, until the figure or the choice changes). A fragment: a choice here
    reruns only these widgets, so the page above stays as it is and the popover stays open."""
    fmt: ExportFormat = st.radio(
        tr("common.export_format"),
        EXPORT_FORMATS,
        format_func=str.upper,
        horizontal=True,
        key=key + FORMAT_SUFFIX,
    )
    scale = 1
    if fmt == "png":
        scale = st.select_slider(
            tr("common.export_scale"),
            PNG_SCALES,
            value=DEFAULT_SCALE,
            key=key + SCALE_SUFFIX,
            help=tr("common.export_scale_help"),
        )
    if st.button(tr("common.export_prepare", fmt=fmt.upper()), key=key + PREPARE_SUFFIX):
        try:
            count_request()
            with st.spinner(tr("common.export_preparing")), heavy_work():
                rendered = render_figure(fig, fmt, scale=scale)
        except AttnScopeError as error:
            show_error(error)
            return
        FIGURE_FILES.put((key, fmt, scale, _fingerprint(fig)), rendered)
    stored = st.session_state.get(FIGURE_FILES.name) or {}
    if not any(entry[0] == key for entry in stored):  # nothing rendered here: skip the hash
        return
    found = FIGURE_FILES.get((key, fmt, scale, _fingerprint(fig)))
    if isinstance(found, RenderedFigure):
        file_name = f"{name}.{fmt}"
        st.caption(
            tr(
                "common.export_ready",
                fmt=fmt.upper(),
                kilobytes=f"{len(found.data) / 1024:.0f}",
                seconds=f"{found.seconds:.1f}",
            )
        )
        st.download_button(
            tr("common.export_download", name=file_name),
            found.data,
            file_name=file_name,
            mime=found.mime,
            key=key + DOWNLOAD_SUFFIX,
        )
