"""The first analysis after the server starts: the status says which stage it is waiting for (the
model's tokenizer, its weights, the first pass), and lists each stage with its seconds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.elements.lib.mutable_status_container import StatusContainer
from streamlit.testing.v1 import AppTest

from ui import services

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TITLE = "all-MiniLM-L6-v2"


@pytest.fixture
def fresh_server(monkeypatch):
    """As just after ``streamlit run``: no model loaded yet; every status label sent is kept."""
    services.get_model.clear()
    shown: list[str] = []
    original = StatusContainer.update

    def update(self, *, label=None, **kwargs):
        if label is not None:
            shown.append(label)
        return original(self, label=label, **kwargs)

    monkeypatch.setattr(StatusContainer, "update", update)
    yield shown
    services.get_model.clear()


def test_the_first_analysis_says_what_it_is_waiting_for(fresh_server):
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()  # a session's first run analyses the default example with MiniLM
    assert not at.exception, at.exception
    # What the status said while it waited, in order (transformers may already be imported by
    # another test in this process; the fresh-process case is in tests/integration).
    shown = [label.replace("\\", "") for label in fresh_server]  # Markdown escapes dropped
    waiting = [label for label in shown if "Importing transformers" not in label]
    assert waiting[:4] == [
        "Loading minilm (cached after the first time)...",
        f"Loading the tokenizer of {TITLE}...",
        f"Loading the weights of {TITLE} onto cpu...",
        f"Analysing with {TITLE}...",
    ]
    [status] = at.get("status")
    assert status.label.startswith("Default example: 16 tokens")
    # Once done, the status lists every stage with how long it took.
    lines = [line for element in status.markdown for line in element.value.splitlines()]
    stages = [
        re.sub(r": \d+\.\d s$", "", line.removeprefix("- ").replace("\\", "")) for line in lines
    ]
    assert [s for s in stages if not s.startswith("Importing transformers")] == [
        f"Loading the tokenizer of {TITLE}",
        f"Loading the weights of {TITLE} onto cpu",
        "Forward pass and statistics (16 tokens)",
    ]
    assert all(re.search(r": \d+\.\d s$", line) for line in lines)


def test_a_cached_model_adds_no_stage_list(fresh_server):
    AppTest.from_file(APP, default_timeout=180).run()  # loads MiniLM
    fresh_server.clear()
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    [status] = at.get("status")
    assert not status.markdown
    assert not [label for label in fresh_server if "tokenizer" in label]
