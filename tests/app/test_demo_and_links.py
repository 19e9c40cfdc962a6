"""Demo mode through the app (each limit tried and refused) and shareable links restored."""

from __future__ import annotations

import threading
import time

import pytest

from core.policy.i18n import t
from tests.app.helpers import open_app, plotly_specs
from ui import services


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setenv("ATTNSCOPE_DEMO", "1")
    monkeypatch.setenv("ATTNSCOPE_RATE_LIMIT", "3")
    services.app_settings.clear()
    yield
    services.app_settings.clear()


def test_demo_offers_only_the_bundled_models_and_caps_tokens(demo):
    at = open_app()
    assert at.sidebar.selectbox(key="model_choice").options == [
        "all-MiniLM-L6-v2 (encoder)",
        "SmolLM2-135M-Instruct (decoder)",
    ]
    assert at.sidebar.number_input(key="max_tokens").max == 512
    assert not [w for w in at.sidebar.toggle if w.key == "trust_remote_code"]
    assert "Public demo" in at.sidebar.caption[0].value


def test_demo_caps_the_text_length(demo):
    at = open_app()
    at.sidebar.text_area(key="text").set_value("x " * 10_001)  # 20 002 characters
    at.sidebar.button(key="analyze").click().run()
    assert len(at.session_state["text"]) == 20_000  # the widget itself stops at the limit
    assert len(at.session_state["result"].text) == 20_000
    assert at.session_state["result"].seq_len <= 512


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("bert-base-uncased", "not offered on this server"),
        ("/tmp", "folders on its disk"),
        ("../../etc", "folders on its disk"),
    ],
)
def test_demo_refuses_other_models_even_by_link(demo, model, message):
    at = open_app(model=model, text="hello")
    assert message in at.error[0].value
    assert "result" not in at.session_state


def test_demo_caps_the_tokens_of_a_generation(demo):
    """The demo's token limit holds for Generate too: prompt plus new tokens past 512 is
    refused before any work, and a prompt within it still generates."""
    at = open_app()
    at.sidebar.selectbox(key="model_choice").set_value("smollm2").run()
    at.switch_page("pages/generate.py").run()
    at.text_area(key="generate_prompt").set_value("word " * 600)
    at.number_input(key="generate_max_new").set_value(2)
    at.button(key="generate_run").click().run()
    assert not at.exception
    refused = [e.value for e in at.error]
    assert any("this server's limit of 512 tokens" in message for message in refused), refused
    assert "generation" not in at.session_state

    at.text_area(key="generate_prompt").set_value("word " * 100)
    at.button(key="generate_run").click().run()
    assert not at.exception and not at.error
    assert len(at.session_state["generation"].steps) == 2


def test_demo_rate_limit(demo):
    at = open_app()
    for _ in range(3):
        at.sidebar.button(key="analyze").click().run()
        assert not at.error
    at.sidebar.button(key="analyze").click().run()
    assert "Too many requests: at most 3 every 60 s" in at.error[0].value


def test_queue_gives_up_with_a_busy_message(monkeypatch):
    monkeypatch.setenv("ATTNSCOPE_MAX_CONCURRENT", "1")
    monkeypatch.setenv("ATTNSCOPE_QUEUE_TIMEOUT", "1")
    services.app_settings.clear()
    try:
        gate = services.concurrency_gate(1)
        held, release = threading.Event(), threading.Event()

        def occupy():
            with gate.slot(timeout=5):
                held.set()
                release.wait(10)

        worker = threading.Thread(target=occupy)
        worker.start()
        held.wait(5)
        at = open_app()
        at.sidebar.button(key="analyze").click().run()
        assert "The server is busy" in at.error[0].value
        release.set()
        worker.join()
        time.sleep(0.1)
        at.sidebar.button(key="analyze").click().run()  # the slot is free again
        assert not at.error and at.session_state["result"].n_layers == 6
    finally:
        services.app_settings.clear()


def test_remote_code_is_off_unless_turned_on(tmp_path):
    at = open_app()
    assert at.sidebar.toggle(key="trust_remote_code").value is False


def test_a_link_restores_model_text_layer_head_and_language():
    at = open_app(model="smollm2", text="The capital of France is", layer="3", head="2", lang="ja")
    result = at.session_state["result"]
    assert (result.model_name, result.text) == ("smollm2", "The capital of France is")
    [spec] = plotly_specs(at)
    assert spec["layout"]["title"]["text"] == t("heatmap.title_head", "ja", layer=3, head=2)
    assert at.sidebar.selectbox(key="lang").value == "ja"


def test_a_link_by_example_and_head_average_and_the_address_bar_follows():
    at = open_app(example="neko", head="avg")
    assert at.session_state["result"].text.startswith("吾輩は猫である")
    [spec] = plotly_specs(at)
    assert "average" in spec["layout"]["title"]["text"]
    at.selectbox(key="heatmaps_layer").set_value(4).run()
    params = dict(at.query_params.items())
    flat = {key: value[0] if isinstance(value, list) else value for key, value in params.items()}
    assert flat["example"] == "neko" and flat["layer"] == "4" and flat["head"] == "avg"
    at.switch_page("pages/statistics.py").run()
    flat = {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()}
    assert flat["example"] == "neko"  # still a link to this view after a page switch
