"""Corpus mode: run a model over many texts, keep every per-text and per-head statistic in a
Parquet store with a manifest, and query it with DuckDB.

    from core.corpus import run_corpus, sample_corpus
    run = run_corpus(sample_corpus(), "minilm", out="runs/sample-minilm")
    run.query("SELECT layer, head, avg(entropy) FROM heads GROUP BY ALL ORDER BY 3")

:mod:`core.corpus.sources` reads corpora, :mod:`core.corpus.batch` takes the statistics of a
padded batch, :mod:`core.corpus.tables` turns them into rows, :mod:`core.corpus.store` keeps them,
:mod:`core.corpus.engines` runs the chunks (in-process or on Ray) and :mod:`core.corpus.run` ties
it together.
"""

from core.corpus.batch import BatchOptions
from core.corpus.run import CorpusProgress, run_corpus
from core.corpus.sources import Corpus, read_corpus, sample_corpus
from core.corpus.store import CorpusRun, list_runs, open_run

__all__ = [
    "BatchOptions",
    "Corpus",
    "CorpusProgress",
    "CorpusRun",
    "list_runs",
    "open_run",
    "read_corpus",
    "run_corpus",
    "sample_corpus",
]
