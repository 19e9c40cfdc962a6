"""Corpus views benchmark: ``python -m bench corpus_views [--texts N] [--keep DIR]``.

Times each corpus view's query (``core.corpus.views``, ``core.corpus.atlas``) on a run of
``--texts`` (10 000) texts, in DuckDB (what the app uses) and in pandas (``pd.read_parquet`` of
the same chunk files, then the same computation), for MiniLM's shape (6 x 12 heads) and
SmolLM2's (30 x 9). The run is synthetic: written through ``core.corpus.store.RunWriter`` in
the store's real layout and column names (every head statistic and its ``_choice`` variant,
pattern labels, texts with tokens and two labels, each chunk's top 20 instances per head), with
random values: query time depends on the rows and columns, not on what the numbers are. The
list columns ``top_*`` / ``visible_*`` are left out (no view reads them). Each time is the
median of 3 calls, each opening the files afresh, as the app's cached queries do the first time.
Results are printed and written to ``bench/results/corpus_views.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from core.corpus.atlas import head_atlas, head_profiles
from core.corpus.batch import METRICS, PATTERNS
from core.corpus.store import FORMAT, FORMAT_VERSION, RunWriter, open_run
from core.corpus.views import (
    group_split,
    head_grid,
    head_values,
    layer_boxes,
    where_it_fires,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORDS = tuple(f"w{i}" for i in range(500)) + ("the", "<script>", "猫", "##ing")
STATISTICS = tuple(METRICS) + tuple(f"{m}_choice" for m in METRICS)


def synthetic_run(
    folder: Path,
    n_texts: int,
    n_layers: int,
    n_heads: int,
    *,
    chunk_size: int = 256,
    tokens: int = 28,
    top_n: int = 20,
    seed: int = 0,
):
    """A complete run folder of ``n_texts`` texts with random statistics, in the store's layout
    (see the module docstring); returns it opened."""
    rng = np.random.default_rng(seed)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "identity": {"corpus": f"synthetic-{n_texts}-{seed}", "model": "synthetic"},
        "corpus": {
            "source": "synthetic",
            "format": "text",
            "n_texts": n_texts,
            "label_columns": ["lang", "kind"],
        },
        "model": {"name": "minilm", "kind": "encoder", "n_layers": n_layers, "n_heads": n_heads},
        "options": {"top_n": top_n, "max_tokens": 512, "chunk_size": chunk_size},
    }
    writer = RunWriter.prepare(folder, manifest)
    cells = n_layers * n_heads
    try:
        for index, start in enumerate(range(0, n_texts, chunk_size)):
            ids = np.arange(start, min(start + chunk_size, n_texts), dtype=np.int32)  # (B,)
            n = len(ids)
            words = rng.integers(0, len(WORDS), (n, tokens))  # (B, T)
            token_lists = [[WORDS[w] for w in row] for row in words]
            texts = pa.table(
                {
                    "text_id": ids,
                    "text": [" ".join(row) for row in token_lists],
                    "n_tokens": np.full(n, tokens, np.int32),
                    "n_input_tokens": np.full(n, tokens, np.int32),
                    "truncated": np.zeros(n, np.bool_),
                    "tokens": pa.array(token_lists, pa.list_(pa.string())),
                    "label_lang": rng.choice(["en", "ja"], n),
                    "label_kind": rng.choice(["question", "statement"], n),
                }
            )
            layers = pa.table(
                {
                    "text_id": np.repeat(ids, n_layers),
                    "layer": np.tile(np.arange(n_layers, dtype=np.int16), n),
                    "layer_entropy": rng.random(n * n_layers, np.float32),
                    "layer_entropy_choice": rng.random(n * n_layers, np.float32),
                }
            )
            # Each head has its own centre, so the atlas has structure to find.
            centres = rng.random((cells, len(STATISTICS)), np.float32)  # (L*H, S)
            noise = rng.normal(0, 0.1, (n, cells, len(STATISTICS))).astype(np.float32)
            values = (centres[None] + noise).reshape(n * cells, -1)  # (B*L*H, S)
            codes = rng.integers(0, len(PATTERNS), (2, n * cells)).astype(np.int8)
            heads = pa.table(
                {
                    "text_id": np.repeat(ids, cells),
                    "layer": np.tile(np.repeat(np.arange(n_layers, dtype=np.int16), n_heads), n),
                    "head": np.tile(np.arange(n_heads, dtype=np.int16), n * n_layers),
                    **{name: values[:, i] for i, name in enumerate(STATISTICS)},
                    **{
                        name: pa.DictionaryArray.from_arrays(
                            pa.array(codes[j]), pa.array(list(PATTERNS), pa.string())
                        )
                        for j, name in enumerate(("pattern", "pattern_choice"))
                    },
                }
            )
            rows = cells * top_n
            which = rng.integers(0, n, rows)
            query = rng.integers(1, tokens, rows)
            key = rng.integers(0, tokens, rows)
            instances = pa.table(
                {
                    "layer": np.repeat(np.arange(n_layers, dtype=np.int16), n_heads * top_n),
                    "head": np.tile(np.repeat(np.arange(n_heads, dtype=np.int16), top_n), n_layers),
                    "text_id": ids[which],
                    "query": query.astype(np.int32),
                    "key": key.astype(np.int32),
                    "weight": rng.random(rows, np.float32),
                    "query_token": [token_lists[w][q] for w, q in zip(which, query, strict=True)],
                    "key_token": [token_lists[w][k] for w, k in zip(which, key, strict=True)],
                }
            )
            tables = {"texts": texts, "layers": layers, "heads": heads, "instances": instances}
            writer.write_chunk(index, tables, {"n_texts": n})
        writer.update(status="complete")
    finally:
        writer.close()
    return open_run(folder)


def _files(run, table: str) -> list[str]:
    return sorted(str(p) for p in (run.folder / "chunks").glob(f"*/{table}.parquet"))


def _read(run, table: str, columns: list[str], filters=None) -> pd.DataFrame:
    return pd.read_parquet(_files(run, table), columns=columns, filters=filters)


def pandas_queries(run, statistic: str, layer: int, head: int) -> dict[str, Callable[[], object]]:
    """The same computations in pandas, reading the same Parquet files."""

    def grid():
        frame = _read(run, "heads", ["layer", "head", statistic])
        return frame.groupby(["layer", "head"])[statistic].quantile([0.25, 0.5, 0.75])

    def values():
        filters = [("layer", "=", layer), ("head", "=", head)]
        return _read(run, "heads", ["text_id", statistic], filters)[statistic].to_numpy()

    def boxes():
        frame = _read(run, "heads", ["layer", statistic])
        return frame.groupby("layer")[statistic].quantile([0.05, 0.25, 0.5, 0.75, 0.95])

    def split():
        heads = _read(run, "heads", ["text_id", "layer", "head", statistic])
        labels = _read(run, "texts", ["text_id", "label_lang"])
        frame = heads.merge(labels, on="text_id")
        return frame.groupby(["layer", "head", "label_lang"])[statistic].agg(
            ["median", "mean", "var", "count"]
        )

    def fires():
        filters = [("layer", "=", layer), ("head", "=", head)]
        hits = _read(run, "instances", ["text_id", "query", "key", "weight"], filters)
        hits = hits.sort_values(["weight", "text_id"], ascending=[False, True]).head(50)
        ids = hits.text_id.unique().tolist()
        patterns = _read(run, "heads", ["text_id", "pattern"], [*filters, ("text_id", "in", ids)])
        texts = _read(run, "texts", ["text_id", "text", "tokens"], [("text_id", "in", ids)])
        return hits.merge(patterns, on="text_id").merge(texts, on="text_id")

    def atlas():
        frame = _read(run, "heads", ["layer", "head", *STATISTICS])
        return frame.groupby(["layer", "head"])[list(STATISTICS)].median()

    return {
        "grid": grid,
        "values": values,
        "boxes": boxes,
        "split": split,
        "fires": fires,
        "atlas profiles": atlas,
    }


def duckdb_queries(run, statistic: str, layer: int, head: int) -> dict[str, Callable[[], object]]:
    """Each view's query as the app runs it (``core.corpus.views``)."""
    return {
        "grid": lambda: head_grid(run, statistic),
        "values": lambda: head_values(run, statistic, layer, head),
        "boxes": lambda: layer_boxes(run, statistic),
        "split": lambda: group_split(run, statistic, "lang", "en", "ja"),
        "fires": lambda: where_it_fires(run, layer, head, limit=50),
        "atlas profiles": lambda: head_profiles(run),
    }


def _median_seconds(call: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(run, name: str) -> list[dict]:
    shape = (run.manifest["model"]["n_layers"], run.manifest["model"]["n_heads"])
    layer, head = shape[0] // 2, shape[1] // 2
    duck = duckdb_queries(run, "entropy", layer, head)
    pandas = pandas_queries(run, "entropy", layer, head)
    rows = []
    for view in duck:
        rows.append(
            {
                "model": name,
                "view": view,
                "duckdb_s": _median_seconds(duck[view]),
                "pandas_s": _median_seconds(pandas[view]),
            }
        )
    profiles = head_profiles(run)
    head_atlas(profiles, n_clusters=6)  # scikit-learn's first import is not the view's time
    started = time.perf_counter()
    head_atlas(profiles, n_clusters=6)
    rows.append(
        {
            "model": name,
            "view": "atlas KMeans+PCA",
            "duckdb_s": time.perf_counter() - started,
            "pandas_s": None,
        }
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench corpus_views")
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, default=None, help="write the runs here and keep them")
    args = parser.parse_args(argv or [])
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        base = args.keep or Path(scratch)
        for name, shape in (("MiniLM shape 6x12", (6, 12)), ("SmolLM2 shape 30x9", (30, 9))):
            folder = base / f"views-{shape[0]}x{shape[1]}-{args.texts}"
            started = time.perf_counter()
            if (folder / "manifest.json").is_file():
                run = open_run(folder)
            else:
                run = synthetic_run(folder, args.texts, *shape)
            print(f"{name}: {args.texts} texts written in {time.perf_counter() - started:.1f} s")
            results += measure(run, name)
    print(f"\n{'run':<20} {'view':<20} {'DuckDB s':>9} {'pandas s':>9}  faster")
    for row in results:
        pandas = row["pandas_s"]
        faster = "" if pandas is None else ("DuckDB" if row["duckdb_s"] < pandas else "pandas")
        shown = "" if pandas is None else f"{pandas:9.3f}"
        print(f"{row['model']:<20} {row['view']:<20} {row['duckdb_s']:9.3f} {shown:>9}  {faster}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "corpus_views.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
