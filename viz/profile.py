"""A forward pass's profile as tables (per operator, per layer; times in ms, memory in KiB, CUDA
columns only on a GPU) and the time and peak memory of a pass against sequence length."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.labels import MARGIN

if TYPE_CHECKING:
    from core.methods.profile import ForwardProfile, LengthCurve

__all__ = [
    "PROFILE_COLUMN_KEYS",
    "layers_frame",
    "length_figure",
    "lengths_frame",
    "operators_frame",
]

# Column name -> catalogue key of its heading (the frames are built with the names).
PROFILE_COLUMN_KEYS = {
    "operator": "profile.col_operator",
    "layer": "profile.col_layer",
    "module": "profile.col_module",
    "calls": "profile.col_calls",
    "cpu_total_ms": "profile.col_cpu_total",
    "cpu_self_ms": "profile.col_cpu_self",
    "cuda_total_ms": "profile.col_cuda_total",
    "cuda_self_ms": "profile.col_cuda_self",
    "cpu_memory_kib": "profile.col_cpu_memory",
    "cpu_self_memory_kib": "profile.col_cpu_self_memory",
    "cuda_memory_kib": "profile.col_cuda_memory",
    "share": "profile.col_share",
    "tokens": "profile.col_tokens",
    "ms": "profile.col_ms",
    "peak_mib": "profile.col_peak",
}
_CUDA_COLUMNS = ("cuda_total_ms", "cuda_self_ms", "cuda_memory_kib")


def _localized(frame: pd.DataFrame, lang: Lang) -> pd.DataFrame:
    return frame.rename(columns={n: t(k, lang) for n, k in PROFILE_COLUMN_KEYS.items()})


def _without_cuda(frame: pd.DataFrame, profile: ForwardProfile) -> pd.DataFrame:
    if profile.device.startswith("cuda"):
        return frame
    return frame.drop(columns=[c for c in _CUDA_COLUMNS if c in frame.columns])


def operators_frame(profile: ForwardProfile, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per operator, largest CPU self time first.

    >>> from core.methods.profile import ForwardProfile, OperatorRow
    >>> row = OperatorRow("aten::mm", 2, 3000.0, 2500.0, 0.0, 0.0, 4096, 2048, 0)
    >>> p = ForwardProfile("m", 4, "cpu", 1, 5000.0, 0.0, 0, "profiler_cpu_allocations",
    ...                    (row,), (), b"{}")
    >>> list(operators_frame(p).iloc[0].astype(str))
    ['aten::mm', '2', '3.0', '2.5', '4.0', '2.0']
    """
    frame = pd.DataFrame(
        {
            "operator": [r.name for r in profile.operators],
            "calls": [r.calls for r in profile.operators],
            "cpu_total_ms": [r.cpu_total_us / 1e3 for r in profile.operators],
            "cpu_self_ms": [r.cpu_self_us / 1e3 for r in profile.operators],
            "cuda_total_ms": [r.cuda_total_us / 1e3 for r in profile.operators],
            "cuda_self_ms": [r.cuda_self_us / 1e3 for r in profile.operators],
            "cpu_memory_kib": [r.cpu_memory_bytes / 1024 for r in profile.operators],
            "cpu_self_memory_kib": [r.cpu_self_memory_bytes / 1024 for r in profile.operators],
            "cuda_memory_kib": [r.cuda_memory_bytes / 1024 for r in profile.operators],
        }
    )
    return _localized(_without_cuda(frame, profile), lang)


def layers_frame(profile: ForwardProfile, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per layer (block), in layer order, with its share of the pass's CPU time."""
    frame = pd.DataFrame(
        {
            "layer": [r.layer for r in profile.layers],
            "module": [r.module for r in profile.layers],
            "calls": [r.calls for r in profile.layers],
            "cpu_total_ms": [r.cpu_total_us / 1e3 for r in profile.layers],
            "cuda_total_ms": [r.cuda_total_us / 1e3 for r in profile.layers],
            "cpu_memory_kib": [r.cpu_memory_bytes / 1024 for r in profile.layers],
            "cuda_memory_kib": [r.cuda_memory_bytes / 1024 for r in profile.layers],
            "share": [r.share for r in profile.layers],
        }
    )
    return _localized(_without_cuda(frame, profile), lang)


def lengths_frame(curve: LengthCurve, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per sequence length: tokens, time of a pass (ms), peak memory (MiB)."""
    frame = pd.DataFrame(
        {
            "tokens": [p.seq_len for p in curve.points],
            "ms": [p.seconds * 1e3 for p in curve.points],
            "peak_mib": [p.peak_bytes / 2**20 for p in curve.points],
        }
    )
    return _localized(frame, lang)


def length_figure(curve: LengthCurve, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """Time of one pass (left axis) and its peak memory (right axis) against tokens (log 2)."""
    tokens = [p.seq_len for p in curve.points]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=tokens,
            y=[p.seconds * 1e3 for p in curve.points],
            mode="lines+markers",
            name=t("profile.axis_ms", lang),
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=tokens,
            y=[p.peak_bytes / 2**20 for p in curve.points],
            mode="lines+markers",
            line={"dash": "dot"},
            name=t("profile.axis_peak", lang),
        ),
        secondary_y=True,
    )
    fig.update_xaxes(title_text=t("profile.axis_tokens", lang), type="log", dtick=0.30103)
    fig.update_yaxes(title_text=t("profile.axis_ms", lang), rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text=t("profile.axis_peak", lang), rangemode="tozero", secondary_y=True)
    fig.update_layout(
        title={"text": t("profile.lengths_title", lang, device=curve.device)},
        height=400,
        margin=MARGIN,
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
