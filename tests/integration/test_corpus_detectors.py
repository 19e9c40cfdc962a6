"""Detector scores in a corpus run: the manifest holds the model's induction measurement (the
same numbers as detector_scores); the heads table's duplicate_token (and previous_token) of
each text equal core.methods.detector_scores.text_scores on that text analysed alone (MiniLM,
right padding; SmolLM2, left padding); a text with no repeated token stores null. A run of the
previous store format (no duplicate_token column) still opens and reads, and refuses a resume
with its own message."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from core import analyze
from core.corpus import BatchOptions, open_run, run_corpus
from core.corpus.detectors import corpus_detectors
from core.corpus.sources import Corpus
from core.corpus.store import FORMAT_VERSION
from core.methods.detector_scores import detector_scores, text_scores
from core.policy.errors import InputError

pytestmark = pytest.mark.integration
# A batch pads short texts (here 3 tokens to 10): SmolLM2's weights then differ from a one-text
# pass by up to ~2e-5 (float32 sums in another order), on either padding side.
TOLERANCE = 5e-5
TEXTS = (
    "the cat and the dog and the cat",
    "No word here repeats.",
    "A rose is a rose is a rose.",
    "Ein Hund, eine Katze.",
    "the the the",
)
CORPUS = Corpus(texts=TEXTS, source="detectors-test", format="text")


def check_run(model, folder, padding: str) -> None:
    options = BatchOptions(batch_size=3, chunk_size=4, padding_side=padding)
    run = run_corpus(CORPUS, model, out=folder, options=options)
    assert run.complete and run.manifest["format_version"] == FORMAT_VERSION == 2
    heads = run.query(
        "SELECT text_id, layer, head, duplicate_token, previous_token FROM heads "
        "ORDER BY text_id, layer, head"
    )
    shape = (model.n_layers, model.n_heads)
    for text_id, text in enumerate(TEXTS):
        expected = text_scores(model, analyze(model, text))
        rows = heads[heads.text_id == text_id]
        stored = rows.duplicate_token.to_numpy(dtype=np.float64).reshape(shape)
        if expected.has_duplicates:
            assert np.allclose(stored, expected.duplicate_token.numpy(), atol=TOLERANCE), text
        else:
            assert rows.duplicate_token.isna().all(), text  # null, not 0
        prev = rows.previous_token.to_numpy(dtype=np.float64).reshape(shape)
        assert np.allclose(prev, expected.previous_token.numpy(), atol=TOLERANCE), text
    recorded = run.detector_scores()  # the model's induction measurement, once per run
    measured = detector_scores(model, n_tokens=20, n_sequences=4, seed=0)
    assert (recorded["seed"], recorded["n_tokens"], recorded["n_sequences"]) == (0, 20, 4)
    for name in ("induction", "previous_token", "duplicate_token"):
        assert np.allclose(recorded[name], measured.score(name).numpy(), atol=1e-6), name
    # SQL's avg leaves the null text out: the mean over the texts with a repeated token.
    mean = run.query("SELECT avg(duplicate_token) AS m FROM heads WHERE layer = 0 AND head = 0")
    with_repeats = [
        float(text_scores(model, analyze(model, text)).duplicate_token[0, 0])
        for text in TEXTS
        if text_scores(model, analyze(model, text)).has_duplicates
    ]
    assert float(mean.m[0]) == pytest.approx(np.mean(with_repeats), abs=TOLERANCE)
    # The Corpus page's reading of the same run (core.corpus.detectors).
    shown = corpus_detectors(run)
    assert shown.on_texts["duplicate_token"][0, 0] == pytest.approx(
        np.mean(with_repeats), abs=TOLERANCE
    )
    assert (shown.texts_with["duplicate_token"] == len(with_repeats)).all()
    assert (shown.texts_with["previous_token"] == len(TEXTS)).all()
    assert np.allclose(shown.induction, measured.score("induction").numpy(), atol=1e-6)


def test_minilm_run_stores_detector_scores(minilm, tmp_path):
    check_run(minilm, tmp_path / "minilm", "right")


def test_smollm2_run_stores_detector_scores(smollm2, tmp_path):
    check_run(smollm2, tmp_path / "smollm2", "left")


def test_runs_of_the_previous_format_open_but_do_not_resume(minilm, tmp_path):
    folder = tmp_path / "old"
    options = BatchOptions(batch_size=3, chunk_size=4)
    run_corpus(CORPUS, minilm, out=folder, options=options)
    for chunk in (folder / "chunks").iterdir():  # what format 1 wrote: no duplicate_token
        table = pq.read_table(chunk / "heads.parquet").drop(["duplicate_token"])
        pq.write_table(table, chunk / "heads.parquet")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    old = open_run(folder)
    heads = old.query("SELECT * FROM heads")
    assert len(heads) == len(TEXTS) * 6 * 12 and "duplicate_token" not in heads.columns
    assert len(old.head_summary()) == 6 * 12
    del manifest["detectors"]  # format 1 recorded none
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert open_run(folder).detector_scores() is None
    with pytest.raises(InputError) as caught:
        run_corpus(CORPUS, minilm, out=folder, options=options)
    assert caught.value.key == "error.corpus_resume_version"
    assert "1" in caught.value.localized("ja") and "2" in str(caught.value)
