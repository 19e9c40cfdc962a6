"""Every page in English and in Japanese: no string missing, the choice survives page switches."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.policy.i18n import catalogue

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = [
    "pages/heatmaps.py",
    "pages/views.py",
    "pages/statistics.py",
    "pages/heads.py",
    "pages/ablation.py",
    "pages/predictions.py",
    "pages/compare.py",
    "pages/attribution.py",
]
MISSING = "⟦".encode()


def serialized(at) -> bytes:
    """Every element's protobuf: labels, help, options, markdown, figure specs, table bytes."""
    chunks = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            chunks.append(proto.SerializeToString())
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return b"".join(chunks)


def open_app(lang: str, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["lang"] = lang
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    return at


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_page_in_both_languages_has_no_missing_string(lang):
    # A link whose example does not exist: nothing is analysed (the start page would analyse the
    # default example), so every page first shows its hint.
    at = open_app(lang, example="no-such-example")
    assert at.sidebar.selectbox(key="lang").value == lang
    words = catalogue(lang)
    for page in PAGES:  # before any analysis: the hint
        at.switch_page(page).run()
        assert not at.exception
        assert words["page.no_result"] in at.info[0].value
    at.sidebar.button(key="analyze").click().run()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert MISSING not in serialized(at), page
    at.switch_page("pages/generate.py").run()  # an encoder: the page explains, in this language
    assert not at.exception and MISSING not in serialized(at)
    assert words["generate.decoders_only"] in at.info[0].value
    at.switch_page("pages/lab.py").run()  # every tab of the Lab (only the open one runs)
    assert at.header[0].value == words["lab.header"]
    for tab in ("tokenizer", "train", "watch", "byo", "profile"):
        at.session_state["lab_tab"] = words[f"lab.tab_{tab}"]
        at.run()
        assert not at.exception, (tab, at.exception)
        assert MISSING not in serialized(at), tab
        if tab == "train":  # the tab that is open is the one that ran
            assert at.button(key="lab_train").label == words["lab.train"]
    at.switch_page("pages/views.py").run()
    at.button_group(key="view_kind").set_value("model").run()
    assert MISSING not in serialized(at)
    assert at.header[0].value == words["views.header"]


def test_japanese_is_really_shown_and_follows_every_page():
    at = open_app("ja")
    assert at.sidebar.button(key="analyze").label == "解析する"
    at.sidebar.button(key="analyze").click().run()
    assert at.header[0].value == "アテンションのヒートマップ"
    at.switch_page("pages/statistics.py").run()
    assert at.header[0].value == "アテンションの統計"
    columns = list(at.dataframe[1].value.columns)
    assert columns[:2] == ["レイヤー", "レイヤーエントロピー"]
    assert at.sidebar.selectbox(key="lang").value == "ja"  # survived the switch


def test_switching_language_in_the_sidebar_updates_the_link():
    at = open_app("en")
    at.sidebar.selectbox(key="lang").set_value("ja").run()
    assert at.query_params["lang"] == ["ja"] or at.query_params["lang"] == "ja"
    assert at.sidebar.button(key="analyze").label == "解析する"


def test_errors_in_japanese():
    at = open_app("ja")
    at.sidebar.text_area(key="text").set_value("   ")
    at.sidebar.button(key="analyze").click().run()
    assert at.error[0].value == catalogue("ja")["error.empty_text"]
    at.sidebar.selectbox(key="model_choice").set_value("other").run()
    at.sidebar.text_input(key="custom_model").set_value("../nope/../x")
    at.sidebar.text_area(key="text").set_value("テスト")
    at.sidebar.button(key="analyze").click().run()
    # the name is user input, so it reaches Markdown escaped: 「\.\./nope/\.\./x」
    assert at.error[0].value.startswith("「\\.\\./nope/\\.\\./x」は組み込みモデルでも")
