"""The lab's figures and tables: a training run's loss curves beside its heads' detector scores
over the steps (so the induction phase change shows where the repeated half's loss falls), and
how tokenizers split one text. Labels in the reader's language; tokens escaped."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.lab.runs import CheckpointRecord, StepRecord
from core.lab.tokenizer import TokenSplit
from core.policy.i18n import DEFAULT_LANG, Lang, t

__all__ = ["DETECTOR_LINES", "LOSS_LINES", "best_scores", "split_frame", "training_figure"]

# Field of a StepRecord -> catalogue key of its curve's name.
LOSS_LINES = {
    "loss": "lab.curve_loss",
    "first_loss": "lab.curve_first",
    "repeated_loss": "lab.curve_repeated",
}
# Detector -> catalogue key of its curve's name (the best head's score at each checkpoint).
DETECTOR_LINES = {
    "induction": "lab.curve_induction",
    "previous_token": "lab.curve_previous",
    "duplicate_token": "lab.curve_duplicate",
}
COLORS = {
    "loss": "#1f77b4",
    "first_loss": "#9aa5b1",
    "repeated_loss": "#d62728",
    "induction": "#d62728",
    "previous_token": "#2ca02c",
    "duplicate_token": "#9467bd",
}


def best_scores(checkpoints: Sequence[CheckpointRecord], detector: str) -> list[float]:
    """The highest score of ``detector`` over every head, at each checkpoint (NaN scores, a
    head with nowhere to look, never win).

    >>> c = CheckpointRecord(3, "step-3", 1.0, {"induction": [[0.2, float("nan")], [0.7, 0.1]]}, 8)
    >>> best_scores([c], "induction")
    [0.7]
    """
    return [
        max((v for row in c.scores[detector] for v in row if v == v), default=float("nan"))
        for c in checkpoints
    ]


def training_figure(
    history: Sequence[StepRecord],
    checkpoints: Sequence[CheckpointRecord],
    *,
    marker: int | None = None,
    lang: Lang = DEFAULT_LANG,
) -> go.Figure:
    """Left: the loss of every step (all positions, the first half and the repeated half of
    the repeat task). Right: each detector's best head at every checkpoint. ``marker``: a
    step drawn as a dashed line on both (the checkpoint on screen)."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(t("lab.loss_title", lang), t("lab.scores_title", lang)),
        horizontal_spacing=0.1,
    )
    steps = [r.step for r in history]
    for field, key in LOSS_LINES.items():
        values = [getattr(r, field) for r in history]
        if not values or all(v is None for v in values):
            continue
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[float("nan") if v is None else v for v in values],
                mode="lines",
                name=t(key, lang),
                line={"color": COLORS[field], "width": 2 if field != "first_loss" else 1},
                legendgroup="loss",
            ),
            row=1,
            col=1,
        )
    points = [c.step for c in checkpoints]
    for detector, key in DETECTOR_LINES.items():
        if not checkpoints or detector not in checkpoints[0].scores:
            continue
        fig.add_trace(
            go.Scatter(
                x=points,
                y=best_scores(checkpoints, detector),
                mode="lines+markers",
                name=t(key, lang),
                line={"color": COLORS[detector]},
                legendgroup="scores",
            ),
            row=1,
            col=2,
        )
    if marker is not None:
        for col in (1, 2):
            fig.add_vline(x=marker, line={"dash": "dash", "color": "#555"}, row=1, col=col)
    fig.update_xaxes(title_text=t("lab.step", lang))
    fig.update_yaxes(title_text=t("lab.loss_axis", lang), row=1, col=1)
    fig.update_yaxes(title_text=t("lab.score_axis", lang), range=[0, 1.02], row=1, col=2)
    fig.update_layout(
        height=380,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def split_frame(splits: Sequence[TokenSplit], *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per tokenizer: its name, how many tokens, and the tokens as the app labels
    them, separated by `` | `` (plain text: a table cell is never HTML).

    >>> split = TokenSplit("lab", ("▁猫", "は"), ("猫", "は"), (False, False))
    >>> [str(v) for v in split_frame([split]).iloc[0]]
    ['lab', '2', '猫 | は']
    """
    return pd.DataFrame(
        {
            t("lab.col_tokenizer", lang): [s.name for s in splits],
            t("lab.col_tokens", lang): [s.n_tokens for s in splits],
            t("lab.col_split", lang): [" | ".join(s.labels) for s in splits],
        }
    )
