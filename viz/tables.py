"""Tables of an analysis as pandas DataFrames with plain column names; CSV and JSON exports."""

from __future__ import annotations

import json

import pandas as pd

from core.engine.analysis import Analysis
from core.engine.stats import max_entropy
from core.engine.tokens import readable_raw_token
from core.policy.i18n import DEFAULT_LANG, Lang, t

__all__ = [
    "analysis_json",
    "head_entropy_matrix",
    "head_stats_table",
    "localized",
    "layer_entropy_table",
    "most_attended_table",
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
    result: Analysis, *, normalized: bool = False, lang: Lang = DEFAULT_LANG
) -> pd.DataFrame:
    """Layer x head matrix of (normalised) head entropy: rows ``layer l``, columns ``head h``."""
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
    result: Analysis, top_k: int = 5, *, per_head: bool = False, lang: Lang = DEFAULT_LANG
) -> pd.DataFrame:
    """Top-``top_k`` key positions by received attention per layer (or per head)."""
    rows = result.most_attended(top_k, per_head=per_head)
    frame = pd.DataFrame(
        {
            "layer": [r.layer for r in rows],
            "head": [r.head for r in rows],
            "rank": [r.rank for r in rows],
            "position": [r.position for r in rows],
            "token": [r.token for r in rows],
            "share": [r.share for r in rows],
        }
    )
    return localized(frame if per_head else frame.drop(columns="head"), lang)


def to_csv_bytes(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """UTF-8 CSV with a byte-order mark, so Excel opens Japanese text correctly."""
    return frame.to_csv(index=index).encode("utf-8-sig")


def analysis_json(result: Analysis, top_k: int = 5) -> bytes:
    """The same JSON object as ``python -m core analyze --json``, characters kept as characters."""
    return json.dumps(result.to_dict(top_k), ensure_ascii=False, indent=1).encode("utf-8")
