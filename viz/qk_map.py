"""The query-key map (AttentionViz) as a Plotly scatter: queries and keys of one head in one
2-D space, coloured by query or key, by position or by token type; hovering a point shows its
token and a window of its text, escaped (they are user text)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import plotly.graph_objects as go

from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.labels import MARGIN, plotly_safe

if TYPE_CHECKING:
    from core.methods.qk_map import QKMap

__all__ = ["COLOR_BY", "COLOR_KEYS", "ColorBy", "qk_map_figure", "qk_map_frame"]

ColorBy = Literal["kind", "position", "token_type"]
COLOR_BY: tuple[ColorBy, ...] = ("kind", "position", "token_type")
_COLORS = {
    "query": "#1f77b4",
    "key": "#ff7f0e",
    "special": "#7f7f7f",
    "word": "#2ca02c",
    "punct": "#d62728",
}
_SYMBOLS = {"query": "circle", "key": "diamond"}
# Catalogue keys of the legend's names and titles.
_NAMES = {
    "query": "qk.kind_query",
    "key": "qk.kind_key",
    "special": "qk.type_special",
    "word": "qk.type_word",
    "punct": "qk.type_punct",
}
COLOR_KEYS = {
    "kind": "qk.color_kind",
    "position": "qk.color_position",
    "token_type": "qk.color_token_type",
}


def _hover(qk: QKMap, index: int, lang: Lang) -> str:
    """One point's hover text: kind, token, position (and text), its context; escaped."""
    kind = t(_NAMES[qk.kind[index]], lang)
    where = t(
        "qk.hover_where",
        lang,
        position=int(qk.position[index]),
        text=int(qk.text_index[index]) + 1,
    )
    return (
        f"{kind}: <b>{plotly_safe(qk.token[index])}</b><br>{where}<br>"
        f"{plotly_safe(qk.context[index])}"
    )


def qk_map_figure(qk: QKMap, color_by: str, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """The map of ``qk``; ``color_by`` is ``"kind"`` (query or key), ``"position"`` (a colour
    scale over positions; queries as circles, keys as diamonds) or ``"token_type"`` (special,
    word, punctuation). The title names the layer, head, key head and PCA's explained variance."""
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {COLOR_BY}, got {color_by!r}")
    hover = np.array([_hover(qk, i, lang) for i in range(len(qk.points))], dtype=object)
    kinds = np.array(qk.kind)
    fig = go.Figure()
    if color_by == "position":
        top = float(max(qk.position.max(initial=0), 1))
        for kind in ("query", "key"):
            rows = np.flatnonzero(kinds == kind)
            fig.add_trace(
                go.Scatter(
                    x=qk.points[rows, 0],
                    y=qk.points[rows, 1],
                    mode="markers",
                    name=t(_NAMES[kind], lang),
                    marker={
                        "color": qk.position[rows],
                        "colorscale": "Viridis",
                        "cmin": 0,
                        "cmax": top,
                        "symbol": _SYMBOLS[kind],
                        "size": 7,
                        "colorbar": {"title": {"text": t("qk.position", lang)}}
                        if kind == "query"
                        else None,
                        "showscale": kind == "query",
                    },
                    text=hover[rows],
                    hovertemplate="%{text}<extra></extra>",
                )
            )
    else:
        groups = ("query", "key") if color_by == "kind" else ("special", "word", "punct")
        labels = kinds if color_by == "kind" else np.array(qk.token_type)
        for group in groups:
            rows = np.flatnonzero(labels == group)
            if not len(rows):
                continue
            fig.add_trace(
                go.Scatter(
                    x=qk.points[rows, 0],
                    y=qk.points[rows, 1],
                    mode="markers",
                    name=t(_NAMES[group], lang),
                    marker={
                        "color": _COLORS[group],
                        "size": 7,
                        "opacity": 0.75,
                        "symbol": [_SYMBOLS[k] for k in kinds[rows]],
                    },
                    text=hover[rows],
                    hovertemplate="%{text}<extra></extra>",
                )
            )
    title = t(
        "qk.title",
        lang,
        layer=qk.layer,
        head=qk.head,
        kv_head=qk.kv_head,
        tokens=qk.n_tokens,
        var1=f"{float(qk.explained_variance[0]) * 100:.1f}",
        var2=f"{float(qk.explained_variance[1]) * 100:.1f}",
    )
    fig.update_layout(
        title={"text": plotly_safe(title)},
        height=560,
        margin={**MARGIN, "t": 60},
        xaxis={"title": {"text": "PC 1"}, "zeroline": False},
        yaxis={"title": {"text": "PC 2"}, "zeroline": False, "scaleanchor": "x"},
        legend={"title": {"text": t(COLOR_KEYS[color_by], lang)}},
    )
    return fig


def qk_map_frame(qk: QKMap, *, lang: Lang = DEFAULT_LANG):
    """The map's points as a table: kind, token, position, text, type, x, y, context."""
    import pandas as pd

    return pd.DataFrame(
        {
            "kind": list(qk.kind),
            t("col.token", lang): list(qk.token),
            t("col.position", lang): qk.position,
            "text": qk.text_index + 1,
            "type": list(qk.token_type),
            "x": qk.points[:, 0],
            "y": qk.points[:, 1],
            "context": list(qk.context),
        }
    )
