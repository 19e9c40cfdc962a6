"""A lab run's checkpoint is a normal model folder: the command line (``python -m core analyze
--model FOLDER --json``) and corpus mode (``run_corpus`` with the folder as its model) open it and
read the same attention as ``core.analyze`` of that folder (corpus mode's induction measurement
shortened to the model's small context)."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from core import analyze, load_model
from core.cli import main as cli_main
from core.corpus import BatchOptions, Corpus, run_corpus
from core.lab.model import LabShape
from core.lab.runs import load_run, new_run_folder
from core.lab.tasks import RepeatTask
from core.lab.tokenizer import synthetic_vocabulary
from core.lab.train import TrainConfig, train

TEXTS = ("w4 w9 w7 w4 w9 w7", "w12 w5 w12 w5 w30")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    shape = LabShape(n_layers=2, n_heads=2, d_model=16, context=16, vocab_size=40)
    task = RepeatTask(half=4)
    folder = new_run_folder(tmp_path_factory.mktemp("lab"))
    config = TrainConfig(steps=3, batch_size=4, checkpoint_every=0)
    for _ in train(shape, synthetic_vocabulary(40, context=16), task, config, folder):
        pass
    return str(load_run(folder).checkpoint_path(3))


def test_the_command_line_opens_a_checkpoint(checkpoint):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["analyze", TEXTS[0], "--model", checkpoint, "--json"]) == 0
    printed = json.loads(out.getvalue())
    expected = analyze(load_model(checkpoint), TEXTS[0])
    assert printed["tokens"] == list(expected.tokens)
    np.testing.assert_allclose(printed["head_entropy"], expected.head_entropy.numpy(), atol=1e-5)


def test_corpus_mode_opens_a_checkpoint(checkpoint, tmp_path):
    corpus = Corpus(texts=TEXTS, source="lab-test", format="text")
    run = run_corpus(corpus, checkpoint, out=tmp_path / "run", options=BatchOptions(batch_size=2))
    assert run.complete and run.manifest["model"]["n_layers"] == 2
    # the induction measurement fits the 16-token context: <s> and two halves of (16 - 1) // 2
    assert run.detector_scores()["n_tokens"] == 7
    heads = run.query("SELECT text_id, layer, head, entropy FROM heads ORDER BY 1, 2, 3")
    loaded = load_model(checkpoint)
    for text_id, text in enumerate(TEXTS):
        expected = analyze(loaded, text).head_entropy.numpy().reshape(-1)  # (L*H,)
        stored = heads[heads.text_id == text_id].entropy.to_numpy()
        np.testing.assert_allclose(stored, expected, atol=1e-4)
