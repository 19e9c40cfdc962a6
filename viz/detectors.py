"""Head detector scores as figures and tables: a layer x head heatmap per score (through
:func:`viz.heatmaps.heatmap`) and one table of every head's scores, headings in the reader's
language."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from torch import Tensor

from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.heatmaps import heatmap
from viz.labels import head_names, layer_names

__all__ = ["DETECTOR_KEYS", "detector_frame", "detector_heatmap"]

# Score name -> catalogue key of its name.
DETECTOR_KEYS = {
    "previous_token": "detectors.previous_token",
    "duplicate_token": "detectors.duplicate_token",
    "induction": "detectors.induction",
    "custom": "detectors.custom_score",
}


def detector_heatmap(
    scores: Tensor, name: str, *, title: str, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """Layer x head heatmap of one score ``(L, H)`` in [0, 1] (blank where NaN: no target)."""
    values = scores.detach().to("cpu", torch.float64).numpy()  # (L, H)
    label = t(DETECTOR_KEYS[name], lang)
    return heatmap(
        values.astype(np.float32),
        kind="layer_head",
        x=head_names(values.shape[1], lang),
        y=layer_names(values.shape[0], lang),
        title=title,
        value_name=label,
        scale="statistic",
        zmin=0.0,
        zmax=1.0,
        cell_values=True,
        lang=lang,
    )


def detector_frame(scores: Mapping[str, Tensor], *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per head (layer, head, then each score, named in ``lang``), in layer order.

    >>> detector_frame({"induction": torch.tensor([[0.5, 0.25]])}).to_dict("list")
    {'layer': [0, 0], 'head': [0, 1], 'induction': [0.5, 0.25]}
    """
    first = next(iter(scores.values()))
    n_layers, n_heads = first.shape
    frame = pd.DataFrame(
        {
            t("col.layer", lang): np.repeat(np.arange(n_layers), n_heads),
            t("col.head", lang): np.tile(np.arange(n_heads), n_layers),
            **{
                t(DETECTOR_KEYS[name], lang) if lang != "en" else name: (
                    values.detach().to("cpu", torch.float64).reshape(-1).numpy()
                )
                for name, values in scores.items()
            },
        }
    )
    return frame
