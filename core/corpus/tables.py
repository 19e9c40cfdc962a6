"""A chunk's statistics as Arrow tables, the rows the store writes: ``texts`` (one per text),
``layers`` (text x layer), ``heads`` (text x layer x head) and ``instances`` (each head's strongest
(text, query, key) weights in the chunk). The README's "Corpus mode" section has the schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from core.corpus.batch import DUPLICATE, PATTERNS, BatchStatistics
from core.engine.tokenize import Tokenized

__all__ = ["TABLES", "ChunkBuilder", "label_field", "top_instances"]

TABLES = ("texts", "layers", "heads", "instances")
_INSTANCE_COLUMNS = ("layer", "head", "text_id", "query", "key", "weight")


def label_field(column: str) -> str:
    """The ``texts`` column that holds a corpus label column: ``label_<name>``.

    >>> label_field("kind")
    'label_kind'
    """
    return f"label_{column}"


def _lists(values: np.ndarray, pa_type: pa.DataType) -> pa.Array:
    """Rows of ``values`` ``(N, k)`` as an Arrow list column, without the ``-1`` / NaN padding
    that marks a text with fewer than ``k`` keys."""
    valid = values >= 0 if values.dtype.kind == "i" else ~np.isnan(values)
    offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values[valid], type=pa_type))


def _labels(indices: np.ndarray) -> pa.Array:
    """Pattern label indices ``(B, L, H)`` as a dictionary-encoded string column (no Python
    string per row; Parquet keeps it as a dictionary, DuckDB reads it as text)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(indices.reshape(-1), pa.int8()), pa.array(list(PATTERNS), pa.string())
    )


def top_instances(columns: Mapping[str, np.ndarray], top_n: int) -> dict[str, np.ndarray]:
    """Each head's ``top_n`` strongest instances among ``columns`` (parallel arrays ``layer``,
    ``head``, ``text_id``, ``query``, ``key``, ``weight``): ranked by weight, ties by text, query
    and key, so the choice never depends on how texts were batched. The store's ``instances``
    view ranks the chunks' rows the same way.

    >>> rows = {"layer": np.array([0, 0, 0]), "head": np.array([1, 1, 1]),
    ...         "text_id": np.array([5, 2, 9]), "query": np.array([1, 1, 1]),
    ...         "key": np.array([0, 0, 0]), "weight": np.array([0.5, 0.9, 0.5])}
    >>> top_instances(rows, 2)["text_id"].tolist()
    [2, 5]
    """
    order = np.lexsort(
        (
            columns["key"],
            columns["query"],
            columns["text_id"],
            -columns["weight"].astype(np.float64),
            columns["head"],
            columns["layer"],
        )
    )
    layer, head = columns["layer"][order], columns["head"][order]
    starts = np.flatnonzero(
        np.concatenate([[True], (layer[1:] != layer[:-1]) | (head[1:] != head[:-1])])
    )
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.append(starts, len(order))))
    keep = order[rank < top_n]
    return {name: columns[name][keep] for name in _INSTANCE_COLUMNS}


class ChunkBuilder:
    """Collects the batches of one chunk and makes its four tables, rows sorted by text id."""

    def __init__(self, n_layers: int, n_heads: int, label_columns: Sequence[str], top_n: int):
        self.n_layers, self.n_heads, self.top_n = n_layers, n_heads, top_n
        self.label_columns = tuple(label_columns)
        self._parts: dict[str, list[pa.Table]] = {name: [] for name in TABLES}
        self._instances: list[dict[str, np.ndarray]] = []
        self._tokens: dict[int, tuple[str, ...]] = {}

    def add(
        self,
        stats: BatchStatistics,
        text_ids: Sequence[int],
        tokenized: Sequence[Tokenized],
        texts: Sequence[str],
        labels: Mapping[str, Sequence[str | None]],
    ) -> None:
        """One batch: ``stats`` of the texts ``text_ids`` (their tokenizations, texts and labels,
        all in batch order)."""
        ids = np.asarray(text_ids, dtype=np.int32)  # (B,)
        n_texts, n_layers, n_heads = len(ids), self.n_layers, self.n_heads
        self._tokens.update(zip(text_ids, (t.tokens for t in tokenized), strict=True))
        self._parts["texts"].append(
            pa.table(
                {
                    "text_id": ids,
                    "text": pa.array(list(texts), pa.string()),
                    "n_tokens": np.array([t.input_ids.shape[-1] for t in tokenized], np.int32),
                    "n_input_tokens": np.array([t.n_input_tokens for t in tokenized], np.int32),
                    "truncated": np.array([t.truncated for t in tokenized], np.bool_),
                    "tokens": pa.array([list(t.tokens) for t in tokenized], pa.list_(pa.string())),
                    **{
                        label_field(c): pa.array(list(labels[c]), pa.string())
                        for c in self.label_columns
                    },
                }
            )
        )
        self._parts["layers"].append(
            pa.table(
                {
                    "text_id": np.repeat(ids, n_layers),
                    "layer": np.tile(np.arange(n_layers, dtype=np.int16), n_texts),
                    **{name: values.reshape(-1) for name, values in stats.layer.items()},
                }
            )
        )
        cells = n_layers * n_heads
        rows = n_texts * cells
        self._parts["heads"].append(
            pa.table(
                {
                    "text_id": np.repeat(ids, cells),
                    "layer": np.tile(
                        np.repeat(np.arange(n_layers, dtype=np.int16), n_heads), n_texts
                    ),
                    "head": np.tile(np.arange(n_heads, dtype=np.int16), n_texts * n_layers),
                    **{name: values.reshape(-1) for name, values in stats.metrics.items()},
                    # NaN (no token repeats in the text) is stored as null: SQL's avg and
                    # median leave it out.
                    DUPLICATE: pa.array(stats.metrics[DUPLICATE].reshape(-1), from_pandas=True),
                    "pattern": _labels(stats.patterns),
                    "pattern_choice": _labels(stats.patterns_choice),
                    "top_positions": _lists(stats.top["positions"].reshape(rows, -1), pa.int32()),
                    "top_shares": _lists(stats.top["shares"].reshape(rows, -1), pa.float32()),
                    "visible_positions": _lists(
                        stats.top["visible_positions"].reshape(rows, -1), pa.int32()
                    ),
                    "visible_shares": _lists(
                        stats.top["visible_shares"].reshape(rows, -1), pa.float32()
                    ),
                }
            )
        )
        found = dict(stats.instances)
        found["text_id"] = ids[found.pop("item")]
        self._instances.append(found)

    def tables(self) -> dict[str, pa.Table]:
        """The chunk's ``texts``, ``layers``, ``heads`` and ``instances`` tables."""
        out = {
            name: pa.concat_tables(parts).sort_by(
                [("text_id", "ascending")]
                + ([("layer", "ascending")] if name != "texts" else [])
                + ([("head", "ascending")] if name == "heads" else [])
            )
            for name, parts in self._parts.items()
            if name != "instances"
        }
        merged = {
            name: np.concatenate([part[name] for part in self._instances])
            for name in _INSTANCE_COLUMNS
        }
        best = top_instances(merged, self.top_n)
        out["instances"] = pa.table(
            {
                "layer": best["layer"].astype(np.int16),
                "head": best["head"].astype(np.int16),
                "text_id": best["text_id"].astype(np.int32),
                "query": best["query"].astype(np.int32),
                "key": best["key"].astype(np.int32),
                "weight": best["weight"].astype(np.float32),
                "query_token": pa.array(
                    [self._tokens[int(t)][q] for t, q in zip(best["text_id"], best["query"])],
                    pa.string(),
                ),
                "key_token": pa.array(
                    [self._tokens[int(t)][k] for t, k in zip(best["text_id"], best["key"])],
                    pa.string(),
                ),
            }
        )
        return out
