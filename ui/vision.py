"""Vision page glue: an uploaded (or the bundled example) image read safely, run through a vision
transformer, its attention over the patches laid on the picture, and per-head patch statistics."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from core.engine.vision import ImageAnalysis, analyze_image, read_image
from core.methods.patches import patch_at, patch_map, patch_rollout, patch_statistics
from core.policy.errors import AttnScopeError
from core.policy.i18n import t
from core.policy.settings import check_request
from ui.figures import show_figure
from ui.services import app_settings, count_request, heavy_work, model_named
from ui.text import lang, show_error, tr
from ui.widgets import table_with_csv
from viz.vision import overlay_figure, patch_statistic_heatmap

__all__ = [
    "EXAMPLE_IMAGE",
    "RESULT_KEY",
    "overlay_section",
    "run_image",
    "statistics_section",
]

EXAMPLE_IMAGE = Path(__file__).resolve().parent.parent / "assets" / "examples" / "scene.png"
RESULT_KEY = "vision_result"
LAYER_WIDGET = "vision_layer"
SHOWN_WIDGET = "vision_shown"
QUERY_WIDGET = "vision_query"
OPACITY_WIDGET = "vision_opacity"
ROLLOUT = "rollout"
OVERLAY_KEY = "vision_overlay"


def run_image(model_name: str, data: bytes, label: str) -> None:
    """Read ``data`` (limits, conversion notes shown), run the model and keep the result in the
    session; every failure is one message."""
    try:
        check_request(app_settings(), model=model_name, text=label)
        read = read_image(data)
        for key, values in read.notes:
            st.info(tr(key, **dict(values)))
        count_request()
        model = model_named(model_name)
        with heavy_work(), st.spinner(tr("vision.computing")):
            result = analyze_image(model, read.image, label=label)
    except AttnScopeError as error:
        show_error(error)
        return
    digest = hashlib.sha256(data).hexdigest()[:16]
    st.session_state[RESULT_KEY] = (model_name, digest, read.notes, result)


def _follow_click() -> None:
    """A click on the overlay makes the clicked patch the query (before the page reruns)."""
    event = st.session_state.get(OVERLAY_KEY) or {}
    points = event.get("selection", {}).get("points", [])
    kept = st.session_state.get(RESULT_KEY)
    if not points or kept is None or "x" not in points[0] or "y" not in points[0]:
        return
    result = kept[3]
    size = result.pixels.shape[:2]
    patch = patch_at(result.grid, size, float(points[0]["x"]), float(points[0]["y"]))
    if patch is not None:
        st.session_state[QUERY_WIDGET] = result.n_prefix + patch


def _shown_label(choice: object) -> str:
    if choice is None:
        return tr("common.average_heads")
    if choice == ROLLOUT:
        return tr("vision.rollout")
    return t("common.head_n", lang(), head=choice)


def overlay_section(result: ImageAnalysis) -> None:
    """The image, its grid and one query's attention over the patches (a head, the head average
    or rollout of a layer) at the chosen opacity."""
    analysis = result.analysis
    left, middle, right = st.columns(3)
    shown = middle.selectbox(
        tr("vision.shown"),
        [None, *range(analysis.n_heads), ROLLOUT],
        format_func=_shown_label,
        key=SHOWN_WIDGET,
    )
    last = analysis.n_layers - 1
    layer = left.selectbox(
        tr("common.layer"), range(analysis.n_layers), index=last, key=LAYER_WIDGET
    )
    queries = list(range(result.n_prefix)) + list(range(result.n_prefix, analysis.seq_len))
    query = right.selectbox(
        tr("vision.query"), queries, format_func=lambda q: analysis.tokens[q], key=QUERY_WIDGET
    )
    opacity = st.slider(tr("vision.opacity"), 0.0, 1.0, 0.6, 0.05, key=OPACITY_WIDGET)
    if shown == ROLLOUT:
        weights = patch_rollout(result)[layer]  # (T, T)
    elif shown is None:
        weights = analysis.layer_average(layer)  # (T, T)
    else:
        weights = analysis.head(layer, shown)  # (T, T)
    values = patch_map(result, weights, query)  # (rows, cols)
    title = tr("vision.overlay_title", token=analysis.tokens[query], layer=layer)
    title += f" · {_shown_label(shown)}"
    patch = query - result.n_prefix if query >= result.n_prefix else None
    fig = overlay_figure(
        result.pixels, result.grid, values, opacity=opacity, title=title, query_patch=patch
    )
    show_figure(fig, key=OVERLAY_KEY, on_select=_follow_click)
    rows, cols = result.grid
    st.caption(
        tr(
            "vision.grid_caption",
            rows=rows,
            cols=cols,
            patch=result.patch_size,
            prefix=", ".join(analysis.tokens[: result.n_prefix]) or "-",
        )
    )


def statistics_section(result: ImageAnalysis) -> None:
    """Per-head entropy, mean attention distance and register / sink shares over the patches."""
    found = patch_statistics(result)
    language = lang()
    for name_key, values in (
        ("vision.stat_entropy", found.entropy),
        ("vision.stat_distance", found.distance),
        ("vision.stat_sink", found.sink_share),
    ):
        name = tr(name_key)
        fig = patch_statistic_heatmap(values, name=name, title=name, lang=language)
        show_figure(fig, key=f"vision_{name_key.split('.')[-1]}")
    sinks = [result.analysis.tokens[i] for i in found.sinks]
    st.caption(tr("vision.sinks", sinks=", ".join(sinks) or "-"))
    n_layers, n_heads = found.entropy.shape
    rows = [
        {
            tr("common.layer"): layer,
            tr("common.head"): head,
            tr("vision.stat_entropy"): round(float(found.entropy[layer, head]), 4),
            tr("vision.stat_distance"): round(float(found.distance[layer, head]), 4),
            tr("vision.stat_register"): round(float(found.register_share[layer, head]), 4),
            tr("vision.stat_sink"): round(float(found.sink_share[layer, head]), 4),
        }
        for layer in range(n_layers)
        for head in range(n_heads)
    ]
    table_with_csv(pd.DataFrame(rows), tr("translation.csv"), "patch-statistics.csv")
