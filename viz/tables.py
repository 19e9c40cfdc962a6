"""Tables of an analysis as pandas DataFrames with plain column names; CSV and JSON exports."""

from __future__ import annotations

import json

import pandas as pd

from core.analysis import Analysis
from core.stats import max_entropy

__all__ = [
    "analysis_json",
    "head_entropy_matrix",
    "head_stats_table",
    "layer_entropy_table",
    "most_attended_table",
    "to_csv_bytes",
    "tokens_table",
]


def tokens_table(result: Analysis) -> pd.DataFrame:
    """One row per token: position, readable label, the tokenizer's raw token, id, special."""
    return pd.DataFrame(
        {
            "position": range(result.seq_len),
            "token": result.tokens,
            "raw_token": result.raw_tokens,
            "token_id": result.token_ids,
            "special": result.special,
        }
    )


def head_entropy_matrix(result: Analysis, *, normalized: bool = False) -> pd.DataFrame:
    """Layer x head matrix of (normalised) head entropy: rows ``layer l``, columns ``head h``."""
    values = result.normalized_head_entropy if normalized else result.head_entropy  # (L, H)
    return pd.DataFrame(
        values.numpy(),
        index=pd.Index([f"layer {layer}" for layer in range(result.n_layers)], name="layer"),
        columns=[f"head {h}" for h in range(result.n_heads)],
    )


def head_stats_table(result: Analysis) -> pd.DataFrame:
    """One row per (layer, head): entropy in nats and normalised entropy."""
    n_layers, n_heads = result.n_layers, result.n_heads
    return pd.DataFrame(
        {
            "layer": [layer for layer in range(n_layers) for _ in range(n_heads)],
            "head": [h for _ in range(n_layers) for h in range(n_heads)],
            "entropy": result.head_entropy.reshape(-1).tolist(),
            "normalized_entropy": result.normalized_head_entropy.reshape(-1).tolist(),
        }
    )


def layer_entropy_table(result: Analysis) -> pd.DataFrame:
    """One row per layer: layer entropy, mean head entropy, and ``ln T`` for scale."""
    return pd.DataFrame(
        {
            "layer": range(result.n_layers),
            "layer_entropy": result.layer_entropy.tolist(),
            "mean_head_entropy": result.mean_head_entropy.tolist(),
            "max_entropy_ln_T": [max_entropy(result.seq_len)] * result.n_layers,
        }
    )


def most_attended_table(
    result: Analysis, top_k: int = 5, *, per_head: bool = False
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
    return frame if per_head else frame.drop(columns="head")


def to_csv_bytes(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """UTF-8 CSV with a byte-order mark, so Excel opens Japanese text correctly."""
    return frame.to_csv(index=index).encode("utf-8-sig")


def analysis_json(result: Analysis, top_k: int = 5) -> bytes:
    """The same JSON object as ``python -m core analyze --json``, characters kept as characters."""
    return json.dumps(result.to_dict(top_k), ensure_ascii=False, indent=1).encode("utf-8")
