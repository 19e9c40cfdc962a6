"""Tables as pandas DataFrames with plain column names (an analysis, head statistics, ablation,
predictions, comparisons, generation steps), and CSV and JSON exports."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from core.engine.analysis import Analysis, Ranking
from core.engine.stats import max_entropy
from core.engine.tokens import readable_raw_token
from core.methods.head_stats import HEAD_METRICS, PATTERN_THRESHOLDS
from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.labels import METRIC_KEYS, PATTERN_KEYS, rule_text

if TYPE_CHECKING:
    from core.methods.ablation import AblationEffect, HeadRanking
    from core.methods.compare import Comparison
    from core.methods.generate import GenerationStep
    from core.methods.head_stats import HeadMetric, HeadStats
    from core.methods.predictions import LogitLens, NextTokenPredictions

__all__ = [
    "ablation_table",
    "analysis_json",
    "candidates_table",
    "changes_table",
    "head_entropy_matrix",
    "head_stats_frame",
    "head_stats_table",
    "layer_entropy_table",
    "localized",
    "logit_lens_frame",
    "most_attended_table",
    "pattern_rules_frame",
    "predictions_frame",
    "ranking_frame",
    "to_csv_bytes",
    "tokens_table",
]


# Column name -> catalogue key of its heading: tables are built with these names and shown (and
# exported as CSV) with the headings of the chosen language.
COLUMN_KEYS = {
    "position": "col.position",
    "token": "col.token",
    "raw_token": "col.raw_token",
    "token_id": "col.token_id",
    "special": "col.special",
    "layer": "col.layer",
    "head": "col.head",
    "rank": "col.rank",
    "share": "col.share",
    "entropy": "col.entropy",
    "normalized_entropy": "col.normalized_entropy",
    "layer_entropy": "col.layer_entropy",
    "mean_head_entropy": "col.mean_head_entropy",
    "max_entropy_ln_T": "col.max_entropy",
    "seen_by": "col.seen_by",
}


def localized(frame: pd.DataFrame, lang: Lang) -> pd.DataFrame:
    """``frame`` with its column headings in ``lang`` (English headings are the names).

    >>> list(localized(pd.DataFrame({"layer": [0], "share": [1.0]}), "ja").columns)
    ['レイヤー', '割合']
    """
    return frame.rename(columns={name: t(key, lang) for name, key in COLUMN_KEYS.items()})


def tokens_table(result: Analysis, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per token: position, readable label, the tokenizer's raw token, id, special."""
    frame = pd.DataFrame(
        {
            "position": range(result.seq_len),
            "token": result.tokens,
            "raw_token": [readable_raw_token(raw) for raw in result.raw_tokens],
            "token_id": result.token_ids,
            "special": result.special,
        }
    )
    return localized(frame, lang)


def head_entropy_matrix(
    result: Analysis, *, normalized: bool = False, choice: bool = False, lang: Lang = DEFAULT_LANG
) -> pd.DataFrame:
    """Layer x head matrix of (normalised) head entropy: rows ``layer l``, columns ``head h``;
    with ``choice``, averaged over the queries with a choice (``*_choice``)."""
    if choice:
        values = result.normalized_head_entropy_choice if normalized else result.head_entropy_choice
    else:
        values = result.normalized_head_entropy if normalized else result.head_entropy  # (L, H)
    return pd.DataFrame(
        values.numpy(),
        index=pd.Index(
            [t("common.layer_n", lang, layer=layer) for layer in range(result.n_layers)],
            name=t("col.layer", lang),
        ),
        columns=[t("common.head_n", lang, head=h) for h in range(result.n_heads)],
    )


def head_stats_table(result: Analysis, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per (layer, head): entropy in nats and normalised entropy."""
    n_layers, n_heads = result.n_layers, result.n_heads
    frame = pd.DataFrame(
        {
            "layer": [layer for layer in range(n_layers) for _ in range(n_heads)],
            "head": [h for _ in range(n_layers) for h in range(n_heads)],
            "entropy": result.head_entropy.reshape(-1).tolist(),
            "normalized_entropy": result.normalized_head_entropy.reshape(-1).tolist(),
        }
    )
    return localized(frame, lang)


def layer_entropy_table(result: Analysis, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per layer: layer entropy, mean head entropy, and ``ln T`` for scale."""
    frame = pd.DataFrame(
        {
            "layer": range(result.n_layers),
            "layer_entropy": result.layer_entropy.tolist(),
            "mean_head_entropy": result.mean_head_entropy.tolist(),
            "max_entropy_ln_T": [max_entropy(result.seq_len)] * result.n_layers,
        }
    )
    return localized(frame, lang)


def most_attended_table(
    result: Analysis,
    top_k: int = 5,
    *,
    per_head: bool = False,
    ranking: Ranking = "plain",
    lang: Lang = DEFAULT_LANG,
) -> pd.DataFrame:
    """Top-``top_k`` key positions by received attention per layer (or per head); the
    ``"visible"`` ranking puts the sink first as rank 0 and adds how many queries see each key."""
    rows = result.most_attended(top_k, per_head=per_head, ranking=ranking)
    frame = pd.DataFrame(
        {
            "layer": [r.layer for r in rows],
            "head": [r.head for r in rows],
            "rank": [r.rank for r in rows],
            "position": [r.position for r in rows],
            "token": [r.token for r in rows],
            "share": [r.share for r in rows],
            "seen_by": [r.seen_by for r in rows],
        }
    )
    dropped = ([] if per_head else ["head"]) + ([] if ranking == "visible" else ["seen_by"])
    return localized(frame.drop(columns=dropped), lang)


def to_csv_bytes(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """UTF-8 CSV with a byte-order mark, so Excel opens Japanese text correctly."""
    return frame.to_csv(index=index).encode("utf-8-sig")


def analysis_json(result: Analysis, top_k: int = 5) -> bytes:
    """The same JSON object as ``python -m core analyze --json``, characters kept as characters."""
    return json.dumps(result.to_dict(top_k), ensure_ascii=False, indent=1).encode("utf-8")


# --- head statistics -----------------------------------------------------------------------------


def head_stats_frame(
    stats: HeadStats, *, lang: Lang = DEFAULT_LANG, omit: Sequence[HeadMetric] = ()
) -> pd.DataFrame:
    """One row per head: layer, head, pattern (in ``lang``) and every metric but ``omit`` (those
    that do not apply, e.g. positions in cross-attention)."""
    frame = pd.DataFrame(stats.rows()).drop(columns=list(omit))
    frame["pattern"] = [t(PATTERN_KEYS[p], lang) for p in frame["pattern"]]
    names = {"pattern": t("col.pattern", lang)}
    names |= {metric: t(METRIC_KEYS[metric], lang) for metric in HEAD_METRICS}
    return localized(frame, lang).rename(columns=names)


def pattern_rules_frame(*, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """The rules behind the pattern labels, in the order they are tried."""
    rows = [
        {
            t("col.pattern", lang): t(PATTERN_KEYS[pattern], lang),
            t("col.rule", lang): rule_text(rule, lang),
        }
        for pattern, rule in PATTERN_THRESHOLDS.items()
    ]
    rows.append({t("col.pattern", lang): t("pattern.mixed", lang), t("col.rule", lang): "-"})
    return pd.DataFrame(rows)


# --- ablation ------------------------------------------------------------------------------------


def ablation_table(effect: AblationEffect, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """Decoders: the top next tokens before and after, side by side."""
    rows = []
    for rank, (before, after) in enumerate(zip(effect.top_before, effect.top_after), start=1):
        rows.append(
            {
                t("col.rank", lang): rank,
                t("ablation.before", lang): before.token,
                t("ablation.p_before", lang): before.prob,
                t("ablation.after", lang): after.token,
                t("ablation.p_after", lang): after.prob,
            }
        )
    return pd.DataFrame(rows)


def ranking_frame(ranking: HeadRanking, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """Heads ablated so far, most important first."""
    name = t("ablation.metric_kl" if ranking.metric == "kl" else "ablation.metric_cos", lang)
    rows = [
        {t("col.rank", lang): rank, "layer": layer, "head": head, name: value}
        for rank, (layer, head, value) in enumerate(ranking.ranked(), start=1)
    ]
    return localized(pd.DataFrame(rows), lang)


# --- predictions ---------------------------------------------------------------------------------


def predictions_frame(preds: NextTokenPredictions, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """One row per position: the token, the token that follows and its probability, then the
    top-k predictions as ``token (p)``."""
    rows = []
    following = preds.next_token_prob.tolist()
    for position, token in enumerate(preds.tokens):
        row = {
            "position": position,
            "token": token,
            t("predict.actual_next", lang): (
                preds.tokens[position + 1] if position + 1 < len(preds.tokens) else ""
            ),
            t("predict.p_actual", lang): following[position]
            if position < len(following)
            else math.nan,
        }
        for rank, guess in enumerate(preds.at(position), start=1):
            row[t("predict.top_n", lang, rank=rank)] = f"{guess.token} ({guess.prob:.3f})"
        rows.append(row)
    return localized(pd.DataFrame(rows), lang)


def logit_lens_frame(lens: LogitLens, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """The logit lens as a table: one row per (layer, position)."""
    rows = []
    names = [t("predict.embeddings", lang)] + [
        t("common.layer_n", lang, layer=layer) for layer in range(len(lens.row_labels) - 1)
    ]
    for row, name in enumerate(names):
        for position, token in enumerate(lens.tokens):
            rows.append(
                {
                    "layer": name,
                    "position": position,
                    "token": token,
                    t("predict.top1", lang): lens.top_tokens[row][position],
                    t("predict.prob", lang): float(lens.top_probs[row, position]),
                }
            )
    return localized(pd.DataFrame(rows), lang)


# --- comparison ----------------------------------------------------------------------------------


def changes_table(
    comparison: Comparison,
    metric: HeadMetric | None = None,
    n: int = 50,
    *,
    lang: Lang = DEFAULT_LANG,
) -> pd.DataFrame:
    """The largest head-statistic changes (B minus A), of one metric or all."""
    rows = [
        {
            "layer": change.layer,
            "head": change.head,
            t("col.metric", lang): t(METRIC_KEYS[change.metric], lang),
            "A": change.before,
            "B": change.after,
            t("col.change", lang): change.change,
        }
        for change in comparison.top_changes(n, metric)
    ]
    return localized(pd.DataFrame(rows), lang)


# --- generation ----------------------------------------------------------------------------------


def candidates_table(step: GenerationStep, *, lang: Lang = DEFAULT_LANG) -> pd.DataFrame:
    """The top next-token candidates of a step; the chosen one is marked."""
    rows = [
        {
            t("col.rank", lang): rank,
            "token": candidate.token,
            t("generate.p_sampled", lang): candidate.prob,
            t("generate.p_raw", lang): candidate.raw_prob,
            t("generate.chosen", lang): "✔" if candidate.chosen else "",
        }
        for rank, candidate in enumerate(step.candidates, start=1)
    ]
    return localized(pd.DataFrame(rows), lang)
