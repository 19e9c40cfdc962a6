"""The two Lab sections B provides, driven with AppTest as the lead's page will call them: bring
your own model (refused in demo mode and with the remote-code switch off, in both languages; the
example file run into a heatmap and head statistics equal to core's) and the profiler (per-layer
rows, the trace download, the curve against sequence length)."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.engine.byo import load_user_model, user_analysis
from core.policy.i18n import t
from core.policy.settings import LOCAL
from tests.app.helpers import decode, plotly_specs
from ui import services
from ui.byo import DEFAULT_TEXT, EXAMPLE_FILE


def byo_section():
    from ui.byo import render_byo
    from ui.text import lang

    render_byo(lang())


def profile_section():
    from core import analyze
    from tests.unit.tiny_models import tiny_gpt2
    from ui.profile import render_profile

    loaded = tiny_gpt2()
    render_profile(loaded, analyze(loaded, "the cat sat on the mat"), "en")


@pytest.fixture
def settings_env(monkeypatch):
    def apply(**variables):
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        services.app_settings.clear()

    yield apply
    services.app_settings.clear()


def section(function, **state) -> AppTest:
    at = AppTest.from_function(function, default_timeout=120)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("language", ["en", "ja"])
def test_byo_is_refused_in_demo_mode_in_both_languages(settings_env, language):
    settings_env(ATTNSCOPE_DEMO="1")
    at = section(byo_section, lang=language, trust_remote_code=True)
    assert [e.value for e in at.error] == [t("error.byo_demo", language)]
    assert not at.text_area and not at.button  # nothing to paste, nothing to run


def test_byo_waits_for_the_remote_code_switch(settings_env):
    settings_env()
    at = section(byo_section, lang="ja", trust_remote_code=False)
    assert [e.value for e in at.error] == [t("error.byo_switch_off", "ja")]


def test_byo_runs_the_example_into_the_views(settings_env):
    settings_env()
    at = section(byo_section, lang="en", trust_remote_code=True)
    at.button(key="byo_example").click().run()
    assert at.text_area(key="byo_code").value == EXAMPLE_FILE.read_text(encoding="utf-8")
    at.button(key="byo_run").click().run()
    assert not at.exception and not at.error, at.error
    expected = user_analysis(
        load_user_model(EXAMPLE_FILE.read_text(encoding="utf-8"), settings=LOCAL, trusted=True),
        DEFAULT_TEXT,
        max_tokens=LOCAL.max_tokens,
    )
    heatmap, metric = plotly_specs(at)[:2]
    z = decode(heatmap["data"][0]["z"])  # layer 0, the average over heads
    assert np.allclose(z, expected.layer_average(0).numpy(), atol=1e-6)
    (table,) = at.dataframe
    assert len(table.value) == expected.n_layers * expected.n_heads  # one row per head
    assert any("2 attention calls captured (one per layer), 4 heads" in c.value for c in at.caption)


def test_profile_section_tables_trace_and_lengths():
    at = section(profile_section)
    at.button(key="profile_run").click().run()
    assert not at.exception and not at.error
    layers, operators = at.dataframe
    assert layers.value.iloc[:, 0].tolist() == [0, 1]  # tiny GPT-2's two blocks
    assert (layers.value["Calls"] == 1).all() and len(operators.value) > 5
    assert [b.label for b in at.get("download_button")][-1] == t("profile.trace", "en")
    at.select_slider(key="profile_max_len").set_value(32).run()
    at.button(key="profile_lengths_run").click().run()
    assert not at.exception
    (curve,) = plotly_specs(at)
    assert list(decode(curve["data"][0]["x"])) == [8, 16, 32]
