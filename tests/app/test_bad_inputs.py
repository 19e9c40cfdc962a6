"""The bad-input suite through AppTest: a message, never a traceback, and the session goes on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.engine.models import BUILTIN_MODELS, _package_dir
from tests.bad_inputs import CASES, GOOD_TEXT, make_folders, resolved

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    minilm_folder = _package_dir(BUILTIN_MODELS["minilm"]) / "model"
    return make_folders(tmp_path_factory.mktemp("bad-models-app"), minilm_folder)


def messages(at) -> list[str]:
    return [e.value for e in at.error] + [w.value for w in at.warning]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case, folders):
    at = AppTest.from_file(APP, default_timeout=180)
    if case.kind == "link":
        for key, value in case.link.items():
            at.query_params[key] = value
        at.run()
    else:
        at.run()
        if case.kind == "model":
            at.sidebar.selectbox(key="model_choice").set_value("other").run()
            at.sidebar.text_input(key="custom_model").set_value(resolved(case, folders))
        at.sidebar.text_area(key="text").set_value(case.text)
        at.sidebar.button(key="analyze").click().run()
    assert not at.exception, at.exception
    shown = messages(at)
    assert all("Traceback" not in m for m in shown)
    if case.error:
        assert any(re.search(case.error, m) for m in shown), shown
    else:
        assert not at.error, shown
        assert at.session_state["result"].text == (case.link.get("text") or case.text)
    if "<" in case.model or "<" in case.link.get("model", ""):
        # every "<" from the input reaches Markdown escaped, as "\<"
        assert all(re.search(r"(?<!\\)<", m) is None for m in shown), shown
    # The session still analyses the next good input.
    at.sidebar.selectbox(key="model_choice").set_value("minilm").run()
    at.sidebar.text_area(key="text").set_value(GOOD_TEXT)
    at.sidebar.button(key="analyze").click().run()
    assert not at.exception and not at.error
    assert at.session_state["result"].text == GOOD_TEXT
