"""AppTest fixtures: the real app.py, the real models, one fresh session per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.app)


@pytest.fixture(autouse=True)
def _navigation_not_pages_folder(monkeypatch):
    """AppTest (Streamlit 1.67) resets ``PagesManager.uses_pages_directory`` before every run, and
    a reset flag is recomputed as "a pages/ folder exists". From the second run on, AppTest would
    then run the page file alone (multipage v1) instead of app.py with its st.navigation. The real
    server keeps the False that st.navigation sets; this fixture gives AppTest the same."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception
    return at
