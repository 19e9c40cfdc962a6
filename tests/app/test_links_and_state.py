"""Links and session state through the app: the address bar is always a link to what is shown,
a text too long for a link says so and travels as a session file, an interrupted analysis is
finished, the sidebar says when it no longer matches the result, and a Stop before the first
token keeps the previous generation."""

from __future__ import annotations

import json
import random

import pytest

from core.policy.examples import load_examples
from core.policy.i18n import t
from tests.app.helpers import analyze_in_app, open_app, plotly_specs

DEFAULT = load_examples()[0]


def address(at) -> dict[str, str]:
    """The address bar's query parameters, one value each."""
    return {k: v[-1] if isinstance(v, list) else v for k, v in at.query_params.items()}


def linked_text(params: dict[str, str]) -> str | None:
    """The text a link carries, however it carries it."""
    if "example" in params:
        return next(e.text for e in load_examples() if e.id == params["example"])
    if "z" in params:
        from core.policy.links import unpack_text

        return unpack_text(params["z"])[0]
    return params.get("text")


def english_words(n_chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = [
        "the",
        "attention",
        "of",
        "every",
        "head",
        "follows",
        "a",
        "pattern",
        "that",
        "we",
        "can",
        "read",
    ]
    text = ""
    while len(text) < n_chars:
        text += rng.choice(words) + " "
    return text[:n_chars].strip() + "."


def incompressible(n_chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return " ".join(
        "".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(n_chars // 6)
    )


def messages(at) -> list[str]:
    return [e.value for e in [*at.warning, *at.info, *at.error]]


# --- Links: the address bar is a link to what is on screen ----------------------------------


def test_the_start_page_shows_the_default_example_analysed():
    at = open_app()
    result = at.session_state["result"]
    assert (result.model_name, result.text) == ("minilm", DEFAULT.text)
    [spec] = plotly_specs(at)  # the default example's heatmap is drawn
    assert len(spec["data"][0]["x"]) == result.seq_len == 16
    assert any("animal" in label for label in spec["data"][0]["x"])
    assert address(at)["example"] == DEFAULT.id


def test_the_link_follows_a_long_typed_text_after_an_example():
    at = open_app()
    at.sidebar.button(key="analyze").click().run()
    assert address(at)["example"] == DEFAULT.id
    text = english_words(2100)
    analyze_in_app(at, text)
    params = address(at)
    assert "example" not in params  # it said example=animal: the 16-token example
    assert linked_text(params) == text
    # ... and opening that link shows the same text.
    again = open_app(**params)
    assert again.session_state["result"].text == text
    assert again.sidebar.text_area(key="text").value == text


def test_a_text_too_long_for_a_link_says_so_and_travels_as_a_session_file(monkeypatch):
    import streamlit as st

    offered = {}
    original = st.download_button

    def spy(label, data, *args, **kwargs):
        offered[label] = data
        return original(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", spy)
    at = open_app()
    text = incompressible(30_000)
    analyze_in_app(at, text)
    params = address(at)
    assert linked_text(params) is None and "example" not in params
    assert params["toolong"] == "1"
    said = [m for m in messages(at) if "too long for a link" in m]
    assert said, messages(at)
    # The session file (offered for download) opens the same view in another session.
    blob = offered[t("link.download", "en")]
    session = json.loads(blob)
    assert (session["text"], session["model"]) == (text, "minilm")
    fresh = open_app()
    fresh.sidebar.file_uploader(key="link_upload").set_value(
        ("attnscope-session.json", blob, "application/json")
    ).run()
    assert not fresh.exception, fresh.exception
    assert fresh.session_state["result"].text == text
    assert fresh.sidebar.text_area(key="text").value == text


def test_opening_a_link_that_lost_its_text_says_so_and_analyses_nothing():
    at = open_app(toolong="1", model="minilm")
    assert any("too long for a link" in m for m in messages(at)), messages(at)
    assert "result" not in at.session_state


# --- Link warnings ----------------------------------------------------------------------------


def test_link_numbers_out_of_range_are_named_not_called_non_numbers():
    at = open_app(text="Out of range numbers.", layer="-1", head="999")
    [warning] = [w.value for w in at.warning if "link" in w.value]
    assert "not a number" not in warning
    assert "layer -1 is out of range" in warning
    assert "head 999 is out of range" in warning and "showing head 11" in warning
    assert at.session_state["selected_head"] == 11


def test_link_problems_are_listed_with_the_japanese_separator():
    at = open_app(text="hi", layer="x", head="y", lang="ja")
    [warning] = [w.value for w in at.warning if "リンク" in w.value]
    assert ", " not in warning
    assert t("link.bad_layer", "ja") + "、" + t("link.bad_head", "ja") in warning


# --- Unknown addresses ------------------------------------------------------------------------


def test_an_unknown_address_is_named_on_the_start_page():
    at = open_app(missing="pages/common")
    [notice] = [m for m in messages(at) if "pages/common" in m]
    assert "no page" in notice
    assert at.session_state["result"].text == DEFAULT.text
    assert "missing" not in address(at)


# --- Examples in the interface language -------------------------------------------------------


def test_example_titles_follow_the_language():
    ja = open_app(lang="ja")
    titles = ja.sidebar.selectbox(key="example").options
    assert titles[0] == "英語：「it」は何を指す？"
    assert not any("English" in title or "Code" in title for title in titles), titles
    en = open_app()
    assert en.sidebar.selectbox(key="example").options[1].startswith("Japanese")


# --- Analyses are never dropped without a word -----------------------------------------------


def test_an_interrupted_analysis_is_finished_on_the_next_run(monkeypatch):
    """A click during an analysis stops the script at its next Streamlit call (simulated here by
    st.stop() once, right after the forward pass): the next run finishes the request."""
    import streamlit as st

    from ui import analyze, services

    at = open_app()
    at.sidebar.button(key="analyze").click().run()
    calls = []

    def interrupted(*args, **kwargs):
        result = services.analysis_for(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            st.stop()
        return result

    monkeypatch.setattr(analyze, "analysis_for", interrupted)
    at.sidebar.text_area(key="text").set_value("A text whose analysis is interrupted.")
    at.sidebar.button(key="analyze").click().run()
    assert at.session_state["result"].text == DEFAULT.text  # the run was cut short
    at.switch_page("pages/statistics.py").run()  # the click that interrupted it
    assert not at.exception
    assert at.session_state["result"].text == "A text whose analysis is interrupted."
    assert len(calls) == 2
    [status] = at.get("status")
    assert status.label.startswith(t("run.done_resumed", "en").split("{")[0])


def test_the_sidebar_says_when_it_no_longer_matches_the_result():
    at = open_app()
    at.sidebar.button(key="analyze").click().run()
    assert not at.sidebar.info
    at.sidebar.text_area(key="text").set_value("Typed but not analysed.").run()
    [notice] = [i.value for i in at.sidebar.info]
    assert "text" in notice and "Analyze" in notice
    at.sidebar.selectbox(key="model_choice").set_value("smollm2").run()
    [notice] = [i.value for i in at.sidebar.info]
    assert "model" in notice and "text" in notice
    at.sidebar.button(key="analyze").click().run()
    assert not at.sidebar.info
    assert at.session_state["result"].text == "Typed but not analysed."


# --- Generate: a Stop before the first token --------------------------------------------------


def test_a_stop_before_the_first_token_keeps_the_previous_generation(monkeypatch):
    import streamlit as st

    from core.methods import generate

    at = open_app()
    at.sidebar.selectbox(key="model_choice").set_value("smollm2").run()
    at.switch_page("pages/generate.py").run()
    at.number_input(key="generate_max_new").set_value(3)
    at.toggle(key="generate_greedy").set_value(True)
    at.button(key="generate_run").click().run()
    before = at.session_state["generation"]
    assert len(before.steps) == 3

    real = generate.generate_steps

    def stopped_at_once(*args, **kwargs):
        real(*args, **kwargs)  # the prompt is checked as before
        st.stop()  # the Stop arrives before the first token
        yield from ()

    monkeypatch.setattr(generate, "generate_steps", stopped_at_once)
    at.button(key="generate_run").click().run()
    monkeypatch.setattr(generate, "generate_steps", real)
    at.run()  # the run the Stop started
    assert not at.exception
    assert at.session_state["generation"] is before
    assert any(t("generate.stopped_before_token", "en") in i.value for i in at.info)
    assert before.output_text.strip() in [x.value.strip() for x in at.text]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_new_link_strings_exist_in_both_languages(lang):
    for key in ("link.download", "link.too_long", "link.no_such_page", "link.out_of_range_head"):
        assert not t(key, lang).startswith("⟦")
