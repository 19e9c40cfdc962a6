"""The corpus views' queries on a real run (24 texts of the bundled corpus through MiniLM, in
three chunks): medians and IQRs per head equal numpy on the raw heads rows, and where a head
fires returns the head's strongest weights of the whole corpus in order, with the tokens and
context of a one-text analysis and the weight that analysis gives."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from core import analyze
from core.corpus import BatchOptions, run_corpus, sample_corpus
from core.corpus.views import head_grid, where_it_fires

pytestmark = pytest.mark.integration
CORPUS = sample_corpus().head(24)


@pytest.fixture(scope="module")
def run(minilm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("views") / "minilm"
    made = run_corpus(CORPUS, minilm, out=folder, options=BatchOptions(batch_size=8, chunk_size=8))
    assert made.complete and len(made.manifest["chunks"]) == 3
    return made


@pytest.fixture(scope="module")
def analyses(minilm):
    return [analyze(minilm, text) for text in CORPUS.texts]


def test_medians_and_iqr_equal_numpy_on_the_raw_rows(run):
    files = sorted((run.folder / "chunks").glob("*/heads.parquet"))
    heads = pq.ParquetDataset(files).read(columns=["layer", "head", "entropy"]).to_pandas()
    grid = head_grid(run, "entropy")
    for layer, head in [(0, 0), (2, 7), (5, 11)]:
        values = heads[(heads.layer == layer) & (heads["head"] == head)].entropy.to_numpy(float)
        assert len(values) == 24
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        assert grid.median[layer, head] == pytest.approx(median, rel=1e-6)
        assert grid.iqr[layer, head] == pytest.approx(q3 - q1, rel=1e-6)


@pytest.mark.parametrize(("layer", "head"), [(0, 2), (4, 5)])
def test_where_it_fires_is_the_heads_strongest_weights_with_their_tokens(
    run, analyses, layer, head
):
    hits = where_it_fires(run, layer, head, limit=10, window=3)
    assert len(hits) == 10
    weights = [hit.weight for hit in hits]
    assert weights == sorted(weights, reverse=True)
    # The strongest hit is the largest weight of this head over every text of the corpus.
    strongest = max(float(a.head(layer, head).max()) for a in analyses)
    assert hits[0].weight == pytest.approx(strongest, abs=1e-5)
    for hit in hits:
        analysis = analyses[hit.text_id]
        assert hit.text == CORPUS.texts[hit.text_id]
        tokens = analysis.tokens
        assert (hit.query_token, hit.key_token) == (tokens[hit.query], tokens[hit.key])
        assert hit.query_before == tokens[max(hit.query - 3, 0) : hit.query]
        assert hit.key_after == tokens[hit.key + 1 : hit.key + 4]
        weight = float(analysis.head(layer, head)[hit.query, hit.key])
        assert hit.weight == pytest.approx(weight, abs=1e-5)
