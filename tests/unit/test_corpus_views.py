"""The corpus views' queries on a small run written here (``bench.corpus_views.synthetic_run``:
the store's layout, random values): per-head medians and IQRs, layer boxes, the label split and
its Cohen's d, the atlas' input and map, and where a head fires, each against numpy on the raw
Parquet rows read with pyarrow, or hand arithmetic."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench.corpus_views import STATISTICS, synthetic_run
from core.corpus.atlas import head_atlas, head_profiles, standardise
from core.corpus.views import (
    cohens_d,
    group_split,
    head_grid,
    head_values,
    label_values,
    layer_boxes,
    numeric_statistics,
    where_it_fires,
)
from core.policy.errors import InputError

N_LAYERS, N_HEADS = 2, 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("views") / "run"
    return synthetic_run(folder, 40, N_LAYERS, N_HEADS, chunk_size=16, tokens=9, top_n=4)


def raw(run, table: str):
    """Every chunk's rows of ``table``, read without DuckDB."""
    files = sorted((run.folder / "chunks").glob(f"*/{table}.parquet"))
    return pq.ParquetDataset(files).read().to_pandas()


def test_cohens_d_equals_hand_arithmetic():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 6.0, 8.0])
    # means 2.5 and 5; sample variances 5/3 and 20/3; pooled sqrt((3*5/3 + 3*20/3) / 6) = sqrt(25/6)
    d = cohens_d(a.mean(), a.var(ddof=1), 4, b.mean(), b.var(ddof=1), 4)
    assert d == pytest.approx(-2.5 / np.sqrt(25 / 6))
    assert np.isnan(cohens_d(1.0, 0.5, 1, 2.0, 0.5, 5))  # one value in A: undefined


def test_statistics_are_every_numeric_head_column(run):
    assert numeric_statistics(run) == list(STATISTICS)
    with pytest.raises(InputError):
        head_grid(run, "pattern")  # a label, not a number
    with pytest.raises(InputError):
        head_grid(run, 'entropy" FROM texts; --')


def test_medians_and_iqr_per_head_equal_numpy(run):
    heads = raw(run, "heads")
    grid = head_grid(run, "confidence")
    assert grid.median.shape == (N_LAYERS, N_HEADS)
    for layer in range(N_LAYERS):
        for head in range(N_HEADS):
            values = heads[(heads.layer == layer) & (heads["head"] == head)].confidence
            q1, median, q3 = np.percentile(values.to_numpy(np.float64), [25, 50, 75])
            assert grid.median[layer, head] == pytest.approx(median, rel=1e-6)
            assert grid.iqr[layer, head] == pytest.approx(q3 - q1, rel=1e-6)
            assert grid.mean[layer, head] == pytest.approx(values.mean(), rel=1e-6)
            assert grid.count[layer, head] == 40
    mine = heads[(heads.layer == 1) & (heads["head"] == 2)].sort_values("text_id")
    np.testing.assert_allclose(head_values(run, "confidence", 1, 2), mine.confidence, rtol=1e-6)


def test_layer_boxes_equal_numpy(run):
    heads = raw(run, "heads")
    boxes = layer_boxes(run, "entropy")
    for layer in range(N_LAYERS):
        values = heads[heads.layer == layer].entropy.to_numpy(np.float64)
        expected = np.percentile(values, [5, 25, 50, 75, 95])
        row = boxes[boxes.layer == layer].iloc[0]
        got = [row.p05, row.q1, row["median"], row.q3, row.p95]
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        assert row.n == len(values) == 40 * N_HEADS


def test_group_split_equals_numpy_per_group(run):
    heads, texts = raw(run, "heads"), raw(run, "texts")
    assert sorted(label_values(run, "lang")) == ["en", "ja"]
    split = group_split(run, "entropy", "lang", "en", "ja")
    merged = heads.merge(texts[["text_id", "label_lang"]], on="text_id")
    for row in split.table.itertuples(index=False):
        mine = merged[(merged.layer == row.layer) & (merged["head"] == row.head)]
        a = mine[mine.label_lang == "en"].entropy.to_numpy(np.float64)
        b = mine[mine.label_lang == "ja"].entropy.to_numpy(np.float64)
        assert (row.n_a, row.n_b) == (len(a), len(b)) and len(a) + len(b) == 40
        assert row.median_diff == pytest.approx(np.median(a) - np.median(b), abs=1e-6)
        assert row.mean_diff == pytest.approx(a.mean() - b.mean(), abs=1e-6)
        pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / 38)
        assert row.cohens_d == pytest.approx((a.mean() - b.mean()) / pooled, rel=1e-5)
    assert split.grid("cohens_d").shape == (N_LAYERS, N_HEADS)
    with pytest.raises(InputError):
        group_split(run, "entropy", "colour", "a", "b")


def test_atlas_input_is_each_heads_medians_and_its_map_is_pca(run):
    heads = raw(run, "heads")
    profiles = head_profiles(run)
    assert len(profiles) == N_LAYERS * N_HEADS
    for row in profiles.itertuples(index=False):
        mine = heads[(heads.layer == row.layer) & (heads["head"] == row.head)]
        for name in ("entropy", "previous_token_choice"):
            assert getattr(row, name) == pytest.approx(np.median(mine[name]), rel=1e-6)
        counts = mine.pattern.astype(str).value_counts()
        assert counts[row.pattern] == counts.max()  # the most frequent label
    matrix = profiles[list(STATISTICS)].to_numpy(np.float64)
    z, kept = standardise(matrix)
    assert kept.all()
    np.testing.assert_allclose(z, (matrix - matrix.mean(0)) / matrix.std(0), rtol=1e-9)
    atlas = head_atlas(profiles, n_clusters=2, seed=0)
    # PCA by hand: the centred z-scores on their first two right singular vectors (up to sign)
    _, _, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
    expected = (z - z.mean(0)) @ vt[:2].T  # (N, 2)
    got = atlas.table[["x", "y"]].to_numpy()
    for axis in range(2):
        sign = np.sign(got[:, axis] @ expected[:, axis])
        np.testing.assert_allclose(got[:, axis], sign * expected[:, axis], atol=1e-8)
    assert set(atlas.table.cluster) == {0, 1} and atlas.n_clusters == 2
    assert atlas.statistics == STATISTICS


def test_where_it_fires_ranks_the_heads_instances_with_their_tokens(run):
    instances, texts = raw(run, "instances"), raw(run, "texts")
    heads = raw(run, "heads")
    tokens = {int(r.text_id): list(r.tokens) for r in texts.itertuples(index=False)}
    mine = instances[(instances.layer == 1) & (instances["head"] == 0)]
    hits = where_it_fires(run, 1, 0, limit=5, window=2)
    expected = mine.sort_values(["weight", "text_id", "query", "key"], ascending=[0, 1, 1, 1])
    assert [h.weight for h in hits] == pytest.approx(expected.weight.head(5).tolist())
    for hit in hits:
        words = tokens[hit.text_id]
        assert hit.query_token == words[hit.query] and hit.key_token == words[hit.key]
        assert hit.query_before == tuple(words[max(hit.query - 2, 0) : hit.query])
        assert hit.key_after == tuple(words[hit.key + 1 : hit.key + 3])
        assert hit.text == " ".join(words)
        label = heads[(heads.text_id == hit.text_id) & (heads.layer == 1) & (heads["head"] == 0)]
        assert hit.pattern == str(label.pattern.iloc[0])
    word = hits[0].key_token
    filtered = where_it_fires(run, 1, 0, token=word.upper(), limit=100)
    assert filtered and all(word in (h.query_token, h.key_token) for h in filtered)
    wanted = (mine.query_token == word) | (mine.key_token == word)
    assert len(filtered) == int(wanted.sum())
    pattern = hits[0].pattern
    by_pattern = where_it_fires(run, 1, 0, pattern=pattern, limit=100)
    assert by_pattern and all(h.pattern == pattern for h in by_pattern)
