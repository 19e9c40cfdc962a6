"""The Ray engine on a local cluster (2 CPUs, no dashboard) writes the rows the local engine
writes, and leaves no Ray process behind."""

from __future__ import annotations

import numpy as np
import pytest

from core.corpus import BatchOptions, open_run, run_corpus, sample_corpus

pytestmark = pytest.mark.integration
ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")


@pytest.fixture
def no_ray_left_behind():
    """Ray is shut down after the test whatever happens, and none of its processes remain."""
    yield
    ray.shutdown()
    children = psutil.Process().children(recursive=True)
    _, alive = psutil.wait_procs(children, timeout=15)
    names = [p.name() for p in alive if p.is_running()]
    assert not any("ray" in n or "gcs" in n for n in names), names


def test_ray_equals_the_local_engine(minilm, tmp_path, no_ray_left_behind):
    corpus = sample_corpus().head(48)
    options = BatchOptions(batch_size=8, chunk_size=12)
    local = run_corpus(corpus, minilm, out=tmp_path / "local", options=options)
    ray_run = run_corpus(
        corpus, minilm, out=tmp_path / "ray", options=options, engine="ray", ray_workers=2
    )
    assert not ray.is_initialized()
    assert ray_run.complete and ray_run.manifest["engine"] == "ray" and ray_run.n_done == 48
    sql = "SELECT * FROM heads ORDER BY text_id, layer, head"
    a, b = local.query(sql), open_run(tmp_path / "ray").query(sql)
    assert a[["text_id", "layer", "head"]].equals(b[["text_id", "layer", "head"]])
    numeric = [c for c in a.columns if a[c].dtype.kind == "f"]
    assert len(numeric) == 25  # 24 statistics and the duplicate-token score (null: no repeat)
    np.testing.assert_allclose(a[numeric].to_numpy(), b[numeric].to_numpy(), atol=1e-5)
    agg = "SELECT layer, head, avg(entropy), avg(first_token) FROM heads GROUP BY ALL ORDER BY ALL"
    np.testing.assert_allclose(
        local.query(agg).to_numpy(), ray_run.query(agg).to_numpy(), atol=1e-5
    )
    assert (a.pattern == b.pattern).mean() > 0.999
    texts = "SELECT text_id, tokens FROM texts ORDER BY text_id"
    assert local.query(texts).to_json() == ray_run.query(texts).to_json()
