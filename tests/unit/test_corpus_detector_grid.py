"""The Corpus page's detector scores and its text sample for the query-key map, on a small run
written here (``bench.corpus_views.synthetic_run``): per-head means against pandas on the raw
Parquet rows, the manifest's random-token scores read back as (L, H), and a seeded sample."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench.corpus_views import synthetic_run
from core.corpus.detectors import corpus_detectors, sample_texts
from core.policy.errors import InputError

N_LAYERS, N_HEADS, N_TEXTS = 2, 3, 30


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detector_grid") / "run"
    return synthetic_run(folder, N_TEXTS, N_LAYERS, N_HEADS, chunk_size=8, tokens=7, top_n=3)


def raw(run, table: str):
    files = sorted((run.folder / "chunks").glob(f"*/{table}.parquet"))
    return pq.ParquetDataset(files).read().to_pandas()


def test_per_text_scores_are_each_heads_mean_over_texts(run):
    found = corpus_detectors(run)
    heads = raw(run, "heads")
    expected = heads.groupby(["layer", "head"])["previous_token"].mean().unstack().to_numpy()
    assert found.on_texts["previous_token"].shape == (N_LAYERS, N_HEADS)
    np.testing.assert_allclose(found.on_texts["previous_token"], expected, rtol=1e-6)
    assert (found.texts_with["previous_token"] == N_TEXTS).all()
    # This layout has no duplicate_token column (the first store format): NaN, from no texts.
    assert "duplicate_token" not in heads.columns
    assert np.isnan(found.on_texts["duplicate_token"]).all()
    assert (found.texts_with["duplicate_token"] == 0).all()
    # One head by hand: the plain mean of its 30 rows.
    rows = heads[(heads.layer == 1) & (heads["head"] == 2)]["previous_token"].to_numpy(float)
    assert found.on_texts["previous_token"][1, 2] == pytest.approx(rows.sum() / len(rows))


def test_random_token_scores_come_from_the_manifest(run):
    assert corpus_detectors(run).induction is None  # this run never measured them
    induction = [[0.1, 0.2, 0.9], [0.0, 0.5, 0.25]]
    run.manifest["detectors"] = {
        "seed": 3,
        "n_tokens": 20,
        "n_sequences": 4,
        "induction": induction,
        "previous_token": [[1, 0, 0], [0, 0, 0]],
    }
    try:
        found = corpus_detectors(run)
        np.testing.assert_array_equal(found.induction, np.array(induction))
        assert found.on_random["previous_token"][0, 0] == 1.0
        assert "duplicate_token" not in found.on_random
        assert (found.seed, found.n_tokens, found.n_sequences) == (3, 20, 4)
    finally:
        del run.manifest["detectors"]


def test_sample_is_seeded_distinct_and_from_the_run(run):
    texts = dict(zip(raw(run, "texts")["text_id"], raw(run, "texts")["text"], strict=True))
    first = sample_texts(run, 10, seed=5)
    assert first == sample_texts(run, 10, seed=5)
    assert first != sample_texts(run, 10, seed=6)
    ids = [i for i, _ in first]
    assert len(set(ids)) == 10
    assert ids == np.random.default_rng(5).choice(np.arange(N_TEXTS), 10, replace=False).tolist()
    assert all(texts[i] == text for i, text in first)
    assert len(sample_texts(run, 100)) == N_TEXTS  # all of them, none twice
    with pytest.raises(InputError):
        sample_texts(run, 0)
