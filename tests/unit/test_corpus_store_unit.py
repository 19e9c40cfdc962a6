"""The store without a model: one writer per run folder at a time, whole chunks only, and the
ranking of strongest instances independent of how texts were batched."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from core.corpus.batch import plan_batches
from core.corpus.store import FORMAT, FORMAT_VERSION, RunWriter, open_run, run_busy
from core.corpus.tables import TABLES, top_instances
from core.policy.errors import InputError

MANIFEST = {
    "format": FORMAT,
    "format_version": FORMAT_VERSION,
    "identity": {"corpus_sha256": "abc", "model": "m"},
    "corpus": {"n_texts": 2, "source": "x"},
    "model": {"name": "m"},
    "options": {"top_n": 2},
}


def test_one_writer_per_run_folder(tmp_path):
    folder = tmp_path / "run"
    writer = RunWriter.prepare(folder, MANIFEST)
    assert run_busy(folder)
    with pytest.raises(InputError) as caught:
        RunWriter.prepare(folder, MANIFEST)  # a second writer, e.g. Resume while stopping
    assert caught.value.key == "error.corpus_busy" and "書き込んで" in caught.value.localized("ja")
    writer.close()
    assert not run_busy(folder)
    again = RunWriter.prepare(folder, MANIFEST)  # taken up once free
    assert again.completed() == set()
    again.close()


def test_chunks_appear_whole_and_are_read_back(tmp_path):
    folder = tmp_path / "run"
    writer = RunWriter.prepare(folder, MANIFEST)
    columns = {"text_id": [0, 1], "layer": [0, 0], "head": [0, 0], "query": [1, 1], "key": [0, 1]}
    table = pa.table({**columns, "weight": [0.5, 0.25]})
    tables = dict.fromkeys(TABLES, table)
    writer.write_chunk(0, tables, {"n_texts": 2})
    writer.update(status="complete")
    writer.close()
    assert sorted(p.name for p in (folder / "chunks" / "00000").iterdir()) == [
        f"{name}.parquet" for name in sorted(TABLES)
    ]
    assert not list((folder / ".partial").iterdir())
    run = open_run(folder)
    assert run.complete and run.n_done == 2
    assert run.query("SELECT sum(weight) AS s FROM heads").s[0] == 0.75


def test_strongest_instances_do_not_depend_on_batching():
    rng = np.random.default_rng(0)
    n = 400
    rows = {
        "layer": rng.integers(0, 2, n),
        "head": rng.integers(0, 3, n),
        "text_id": rng.integers(0, 50, n),
        "query": rng.integers(0, 9, n),
        "key": rng.integers(0, 9, n),
        "weight": rng.choice([0.25, 0.5, 0.75, 1.0], n),  # many exact ties
    }
    whole = top_instances(rows, 5)
    order = rng.permutation(n)  # the same rows in another order, merged in two parts
    parts = [{k: v[order[i::2]] for k, v in rows.items()} for i in range(2)]
    firsts = [top_instances(part, 5) for part in parts]
    merged = top_instances({k: np.concatenate([f[k] for f in firsts]) for k in rows}, 5)
    for name in rows:
        assert merged[name].tolist() == whole[name].tolist()
    assert len(whole["weight"]) == 2 * 3 * 5


def test_batches_respect_size_and_memory():
    assert plan_batches([5] * 7, n_heads=2, batch_size=3) == [[0, 1, 2], [3, 4, 5], [6]]
    wide = plan_batches([512, 512, 512], n_heads=12, batch_size=32, layer_bytes=30_000_000)
    assert wide == [[0, 1], [2]]  # 12 x 512 x 512 x 4 bytes = 12.6 MB each
