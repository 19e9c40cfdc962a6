"""Views of attributions (:mod:`core.methods.attribution`): the text shaded by every method, a
head's attention × gradient, the agreement map and tables, all through :func:`viz.heatmaps.heatmap`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.methods.attribution import DELTA_TOLERANCE, MAX_STEPS
from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.heatmaps import heatmap
from viz.labels import head_names, layer_names, position_labels

if TYPE_CHECKING:
    from core.methods.agreement import Agreement
    from core.methods.attribution import Attributions

__all__ = [
    "METHOD_KEYS",
    "agreement_frame",
    "agreement_heatmap",
    "attention_gradient_heatmap",
    "attribution_frame",
    "attribution_heatmap",
    "delta_warning",
    "method_name",
    "shaded_scores",
    "values_caption",
]

METHOD_KEYS = {
    "saliency": "attribution.method_saliency",
    "input_x_gradient": "attribution.method_input_x_gradient",
    "integrated_gradients": "attribution.method_integrated_gradients",
    "occlusion": "attribution.method_occlusion",
    "gradient_rollout": "attribution.method_gradient_rollout",
    "value_zeroing": "attribution.method_value_zeroing",
}


def method_name(method: str, lang: Lang = DEFAULT_LANG) -> str:
    return t(METHOD_KEYS[method], lang)


def values_caption(result: Attributions, *, lang: Lang = DEFAULT_LANG) -> str:
    """``f(x)``, ``f(x')`` and integrated gradients' convergence delta ("—" when not run)."""
    delta = result.captum.ig_delta
    return t(
        "attribution.values",
        lang,
        value=f"{result.f_input:.6g}",
        reference=f"{result.f_baseline:.6g}",
        delta="—" if delta is None else f"{delta:.3g}",
    )


def delta_warning(result: Attributions, *, lang: Lang = DEFAULT_LANG) -> str | None:
    """The warning for integrated gradients that have not converged (``|delta|`` over
    :data:`~core.methods.attribution.DELTA_TOLERANCE` of ``|f(x) - f(x')|``), suggesting four
    times the steps; None when they have, or were not run."""
    if result.converged() is not False:
        return None
    return t(
        "attribution.delta_large",
        lang,
        delta=f"{abs(result.captum.ig_delta):.3g}",
        percent=f"{100 * result.relative_delta:.3g}",
        gap=f"{abs(result.f_input - result.f_baseline):.3g}",
        most=f"{100 * DELTA_TOLERANCE:g}",
        steps=min(MAX_STEPS, 4 * result.steps),
    )


def shaded_scores(result: Attributions) -> tuple[list[str], np.ndarray]:
    """The methods computed and their scores divided by each method's largest magnitude,
    ``(n_methods, T)`` in ``[-1, 1]`` (a method that is 0 everywhere stays 0).

    >>> import torch
    >>> from types import SimpleNamespace
    >>> fake = SimpleNamespace(scores=lambda: {"occlusion": torch.tensor([2.0, -4.0])})
    >>> shaded_scores(fake)
    (['occlusion'], array([[ 0.5, -1. ]]))
    """
    scores = result.scores()
    rows = np.stack([v.double().numpy() for v in scores.values()])  # (M, T)
    largest = np.abs(rows).max(axis=1, keepdims=True)  # (M, 1)
    return list(scores), np.divide(rows, largest, out=np.zeros_like(rows), where=largest > 0)


def attribution_heatmap(result: Attributions, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """Methods down, positions across: each cell is the token, shaded by its scaled score (red
    for, blue against); the hover gives the raw score."""
    methods, z = shaded_scores(result)
    raw = result.scores()
    tokens = list(result.tokens)
    return heatmap(
        z,
        kind="head_position",
        x=position_labels(tokens),
        y=[method_name(m, lang) for m in methods],
        title=t("attribution.tokens_title", lang),
        value_name="score / max |score|",
        scale="difference",
        zmin=-1.0,
        zmax=1.0,
        cell_text=[tokens for _ in methods],
        notes=[[f"{v:.6g}" for v in raw[m].tolist()] for m in methods],
        lang=lang,
    )


def attention_gradient_heatmap(
    result: Attributions, layer: int, head: int, *, lang: Lang = DEFAULT_LANG
) -> go.Figure:
    """``A ⊙ ∂f/∂A`` of one head, queries down and keys across, on a symmetric colour scale."""
    assert result.attention is not None
    z = result.attention.product[layer, head].double().numpy()  # (T, T)
    bound = float(max(np.abs(z).max(initial=0.0), 1e-12))
    labels = position_labels(result.tokens)
    return heatmap(
        z,
        kind="query_key",
        x=labels,
        y=labels,
        title=t("attribution.grad_title", lang, layer=layer, head=head),
        value_name="A ⊙ ∇A",
        scale="difference",
        zmin=-bound,
        zmax=bound,
        value_format=".3g",
        lang=lang,
    )


def agreement_heatmap(agreement: Agreement, method: str, *, lang: Lang = DEFAULT_LANG) -> go.Figure:
    """Layer × head map of Spearman's ρ with ``method``, from -1 (blue) to 1 (red)."""
    values = agreement.heads[:, :, agreement.methods.index(method)].numpy()  # (L, H)
    return heatmap(
        values,
        kind="layer_head",
        x=head_names(values.shape[1], lang),
        y=layer_names(values.shape[0], lang),
        title=t("attribution.agreement_title", lang, method=method_name(method, lang)),
        value_name="ρ",
        scale="difference",
        zmin=-1.0,
        zmax=1.0,
        value_format=".3f",
        cell_values=True,
        lang=lang,
    )


def agreement_frame(
    agreement: Agreement, sort_by: str, *, lang: Lang = DEFAULT_LANG
) -> pd.DataFrame:
    """The agreement table sorted by ``sort_by``, highest ρ first: ``source``, ``layer``,
    ``head`` and one column per method (named in ``lang``)."""
    frame = pd.DataFrame(agreement.rows(sort_by=sort_by))
    frame["layer"] = frame["layer"].astype("Int64")
    frame["head"] = frame["head"].astype("Int64")
    return frame.rename(columns={m: method_name(m, lang) for m in agreement.methods})


def attribution_frame(result: Attributions, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per token: ``position``, ``token`` and each method's raw score."""
    frame = pd.DataFrame({"position": range(len(result.tokens)), "token": list(result.tokens)})
    for method, values in result.scores().items():
        frame[method_name(method, lang)] = values.double().numpy()
    return frame
