"""The Corpus page under AppTest: the bundled corpus runs to a stored, summarised run; an
existing run folder opens; demo mode offers only the sample and uploads and says its limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.corpus import list_runs, open_run
from ui import services

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def runs(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNSCOPE_RUNS_DIR", str(tmp_path))
    return tmp_path


def corpus_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("pages/corpus.py").run()
    assert not at.exception, at.exception
    return at


def test_the_bundled_corpus_runs_and_is_summarised(runs):
    at = corpus_page()
    assert at.radio(key="corpus_source").options == [
        "Bundled sample (240 English and Japanese sentences)",
        "Upload a file",
        "A file or dataset on this machine",
    ]
    assert "240 texts from sample." in [c.value for c in at.caption]
    at.button(key="corpus_run").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("Done: 240 texts in ")
    (row,) = list_runs(runs)
    run = open_run(row["folder"])
    assert run.complete and run.manifest["options"]["chunk_size"] == 32
    heads = at.dataframe[0].value
    assert len(heads) == 72 and (heads.texts == 240).all()
    by_label = at.dataframe[1].value
    assert by_label.label.tolist() == ["en", "ja"] and by_label.texts.tolist() == [120, 120]
    at.selectbox(key="corpus_group").set_value("kind").run()
    assert at.dataframe[1].value.label.tolist() == ["question", "statement"]

    again = corpus_page()  # a new session opens the run by its folder
    again.text_input(key="corpus_open_path").set_value(row["folder"])
    again.button(key="corpus_open").click().run()
    assert len(again.dataframe[0].value) == 72
    again.text_input(key="corpus_open_path").set_value(str(runs))
    again.button(key="corpus_open").click().run()
    assert "not a corpus run folder" in again.error[0].value


def test_demo_mode_limits_the_corpus_page(runs, monkeypatch):
    monkeypatch.setenv("ATTNSCOPE_DEMO", "1")
    services.app_settings.clear()
    try:
        at = corpus_page()
        assert at.radio(key="corpus_source").options == [
            "Bundled sample (240 English and Japanese sentences)",
            "Upload a file",
        ]
        assert "at most 200 texts, each cut to 512 tokens" in at.info[0].value
        assert not [w for w in at.text_input if w.key == "corpus_open_path"]
        assert not [e for e in at.expander if "SQL" in e.label]
    finally:
        services.app_settings.clear()
