"""The store: a run's rows equal one-text analyses, a run killed or stopped mid-way resumes to
exactly the rows of an uninterrupted run, and damaged or foreign folders are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core import analyze
from core.corpus import BatchOptions, open_run, run_corpus, sample_corpus
from core.corpus.run import StopRun
from core.methods.head_stats import HeadStats
from core.policy.errors import InputError

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
OPTIONS = BatchOptions(batch_size=4, chunk_size=8)
CORPUS = sample_corpus().head(40)
ORDER = {
    "texts": "text_id",
    "layers": "text_id, layer",
    "heads": "text_id, layer, head",
    "instances": "layer, head, weight DESC, text_id, query, key",
}


def rows(folder) -> dict:
    run = open_run(folder)
    return {
        name: run.query(f"SELECT * FROM {name} ORDER BY {order}") for name, order in ORDER.items()
    }


def assert_same_rows(a: dict, b: dict) -> None:
    for name in ORDER:
        assert a[name].shape == b[name].shape, name
        assert a[name].to_json() == b[name].to_json(), f"{name} rows differ"


@pytest.fixture(scope="module")
def uninterrupted(minilm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "whole"
    run = run_corpus(CORPUS, minilm, out=folder, options=OPTIONS)
    assert run.complete and run.n_done == 40 and len(run.manifest["chunks"]) == 5
    return folder, rows(folder)


def test_stored_rows_equal_one_text_analyses(minilm, uninterrupted):
    folder, stored = uninterrupted
    heads = stored["heads"]
    for text_id in (0, 7, 39):
        analysis = analyze(minilm, CORPUS.texts[text_id])
        expected = HeadStats.from_analysis(analysis, minilm)
        mine = heads[heads.text_id == text_id]
        assert len(mine) == 72
        np.testing.assert_allclose(
            mine.confidence.to_numpy().reshape(6, 12), expected.confidence, atol=1e-5
        )
        assert mine.pattern.tolist() == [p for row in expected.patterns for p in row]
        text = stored["texts"][stored["texts"].text_id == text_id].iloc[0]
        assert text.text == CORPUS.texts[text_id] and list(text.tokens) == list(analysis.tokens)
        assert text.label_lang == CORPUS.labels["lang"][text_id]
    # Each head keeps its 20 strongest instances, all from queries with a choice.
    instances = stored["instances"]
    assert len(instances) == 72 * 20 and (instances.weight > 0).all()


def test_a_run_stopped_after_two_chunks_resumes_to_the_same_rows(minilm, uninterrupted, tmp_path):
    folder = tmp_path / "stopped"

    def stop_after_two(progress):
        if progress.done >= 16:
            raise StopRun

    with pytest.raises(StopRun):
        run_corpus(CORPUS, minilm, out=folder, options=OPTIONS, progress=stop_after_two)
    partial = open_run(folder)
    assert partial.status == "stopped" and partial.n_done == 16
    seen = []
    run = run_corpus(CORPUS, minilm, out=folder, options=OPTIONS, progress=seen.append)
    assert run.complete and seen[0].resumed == 16 and seen[-1].done == 40
    assert_same_rows(rows(folder), uninterrupted[1])


def test_a_killed_process_resumes_to_the_same_rows(tmp_path):
    """A real kill: the command line in a subprocess, SIGKILL once its first chunk is on disk."""
    command = [
        sys.executable, "-m", "core", "corpus", "run", "sample", "--model", "minilm",
        "--limit", "40", "--batch-size", "4", "--chunk-size", "4",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ATTNSCOPE_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(
        [*command, "--out", str(whole)], cwd=ROOT, env=env, check=True, capture_output=True
    )
    process = subprocess.Popen(
        [*command, "--out", str(killed)], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not (killed / "chunks" / "00000").is_dir() and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["status"] == "running"  # killed: nothing had the chance to say otherwise
    on_disk = list((killed / "chunks").iterdir())  # the manifest may not list the last one yet
    assert 1 <= len(on_disk) < 10 and len(manifest["chunks"]) <= len(on_disk), "kill mid-way"
    subprocess.run(
        [*command, "--out", str(killed)], cwd=ROOT, env=env, check=True, capture_output=True
    )
    assert open_run(killed).complete
    assert_same_rows(rows(killed), rows(whole))


def test_damaged_parquet_is_refused_then_redone(minilm, uninterrupted, tmp_path):
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(uninterrupted[0], folder)
    target = folder / "chunks" / "00002" / "heads.parquet"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(InputError) as caught:
        open_run(folder)
    assert caught.value.key == "error.corpus_damaged"
    assert "00002" in str(caught.value) and "00002" in caught.value.localized("ja")
    run_corpus(CORPUS, minilm, out=folder, options=OPTIONS)  # resuming redoes that chunk
    assert_same_rows(rows(folder), uninterrupted[1])


def test_foreign_and_old_folders_are_refused(minilm, uninterrupted, tmp_path):
    folder = tmp_path / "old"
    import shutil

    shutil.copytree(uninterrupted[0], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 0
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError) as caught:
        open_run(folder)
    assert caught.value.key == "error.corpus_version" and "0" in caught.value.localized("ja")
    with pytest.raises(InputError) as caught:
        open_run(tmp_path)
    assert caught.value.key == "error.corpus_not_a_run"
    with pytest.raises(InputError) as caught:  # another corpus into an existing run
        run_corpus(CORPUS.head(10), minilm, out=uninterrupted[0], options=OPTIONS)
    assert caught.value.key == "error.corpus_other_run"
    assert "corpus_sha256" in str(caught.value)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError) as caught:
        run_corpus(CORPUS, minilm, out=tmp_path / "other", options=OPTIONS)
    assert caught.value.key == "error.corpus_folder_taken"
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]


def test_queries_compare_groups(uninterrupted):
    run = open_run(uninterrupted[0])
    by_lang = run.label_summary("lang")
    assert by_lang.label.tolist() == ["en", "ja"] and by_lang.texts.tolist() == [20, 20]
    summary = run.head_summary()
    assert len(summary) == 72 and (summary.texts == 40).all()
    assert ((summary.pattern_share > 0) & (summary.pattern_share <= 1)).all()
