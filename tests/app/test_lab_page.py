"""The Lab page through AppTest, lab runs in a folder of the test's own: a tokenizer trained on
the bundled corpus writes the Japanese sentence back exactly and its split (and the bundled
models') is core's own; a short next-token run on the corpus with that tokenizer leaves a run
folder with its checkpoints, which the Watch tab makes the session's result (the heatmap drawn
is that checkpoint's analysis); demo mode refuses a shape over its limits, in Japanese too."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import analyze, load_model
from core.corpus.sources import sample_corpus
from core.lab.runs import list_runs
from core.lab.tokenizer import compare_splits, train_vocabulary
from core.policy.i18n import t
from tests.app.helpers import decode, open_app
from ui.lab import JAPANESE


@pytest.fixture
def lab_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNSCOPE_LAB_DIR", str(tmp_path))
    from ui import services

    services.app_settings.clear()
    yield tmp_path
    services.app_settings.clear()


def lab_page(**params):
    at = open_app(**params)
    at.switch_page("pages/lab.py").run()
    assert not at.exception, at.exception
    return at


def open_tab(at, label: str):
    """Open a Lab tab (only the open tab runs): its label becomes the tabs' state."""
    at.session_state["lab_tab"] = label
    at.run()
    assert not at.exception, at.exception
    return at


def test_tokenizer_then_text_training_then_watch(lab_dir):
    at = lab_page()
    assert at.number_input(key="lab_vocab").value == 1000
    at.button(key="lab_train_vocabulary").click().run()
    assert not at.exception, at.exception
    assert any("gives back the sentence exactly" in c.value for c in at.caption)
    table = at.dataframe[0].value  # one row per tokenizer
    assert table.iloc[:, 0].tolist()[0] == "your tokenizer"
    ours = train_vocabulary(sample_corpus().texts, kind="unigram", vocab_size=1000)
    expected = compare_splits(
        JAPANESE, {"a": ours, "b": load_model("minilm"), "c": load_model("smollm2")}
    )
    assert table.iloc[:, 1].tolist() == [s.n_tokens for s in expected]
    assert table.iloc[:, 2].tolist() == [" | ".join(s.labels) for s in expected]

    open_tab(at, "Train")
    assert not at.get("dataframe")  # the Tokenizer tab no longer runs
    at.radio(key="lab_task").set_value("text")
    at.number_input(key="lab_steps").set_value(4)
    at.number_input(key="lab_every").set_value(2)
    at.number_input(key="lab_context").set_value(32)
    at.button(key="lab_train").click().run(timeout=300)
    assert not at.exception, at.exception
    (run,) = list_runs(lab_dir)
    assert run.status == "finished" and run.task["kind"] == "text"
    assert [c.step for c in run.checkpoints] == [0, 2, 4]
    assert [r.step for r in run.history] == [1, 2, 3, 4]
    assert any("Training finished at step 4" in s.value for s in at.success)

    # Watch: the last checkpoint reads the Japanese text; its analysis is the session's result
    open_tab(at, "Watch")
    text = at.text_input(key="lab_watch_text").value
    result = at.session_state["result"]
    loaded = load_model(str(run.checkpoint_path(4)))
    expected = analyze(loaded, text)
    assert result.content_key == expected.content_key
    spec = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if '"Layer 0, head 0' in c.proto.spec
    )
    np.testing.assert_allclose(decode(spec["data"][0]["z"]), expected.head(0, 0).numpy(), atol=1e-5)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_demo_mode_refuses_a_shape_over_its_limits(lab_dir, monkeypatch, language):
    monkeypatch.setenv("ATTNSCOPE_DEMO", "1")
    at = lab_page(lang=language)
    open_tab(at, t("lab.tab_train", language))
    at.number_input(key="lab_layers").set_value(6)  # the demo allows 4
    at.button(key="lab_train").click().run()
    assert not at.exception, at.exception
    shown = " ".join(e.value for e in at.error).replace("\\_", "_")  # markdown's escape
    assert t("lab.error_demo_limit", language, field="n_layers", value=6, limit=4) in shown
    assert list_runs(lab_dir) == []
