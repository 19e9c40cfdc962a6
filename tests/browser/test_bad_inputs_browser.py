"""The bad-input suite in Chromium: a clear message, nothing executed (a dialog, a console error
or a request leaving the machine fails the test), and the session analyses the next good input."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from bench.appserver import choose_option
from core.engine.models import BUILTIN_MODELS, _package_dir
from tests.bad_inputs import CASES, GOOD_TEXT, make_folders, resolved

SETTLED = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    minilm_folder = _package_dir(BUILTIN_MODELS["minilm"]) / "model"
    return make_folders(tmp_path_factory.mktemp("bad-models-browser"), minilm_folder)


def settle(page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function(SETTLED, timeout=180_000)


def choose_model(page, option: str) -> None:
    choose_option(page, "Model", option)
    settle(page)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_in_the_browser(page, server_url, case, folders):
    if case.kind == "link":
        page.goto(f"{server_url}/?{urlencode(case.link)}")
        page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
        settle(page)
    else:
        if case.kind == "model":
            choose_model(page, "Other: Hugging Face id or folder")
            box = page.get_by_role("textbox", name="Model id or folder")
            box.fill(resolved(case, folders)[:200])  # the field takes 200 characters at most
            box.press("Enter")
            settle(page)
        text = page.get_by_label("Text")
        text.fill(case.text)
        text.press("Control+Enter")
        settle(page)
        page.get_by_role("button", name="Analyze").click()
        settle(page)
    if case.error:  # wait for the message itself: the rerun may not have started yet
        message = page.locator("[data-testid=stAlert]").filter(has_text=re.compile(case.error))
        message.first.wait_for(timeout=120_000)
    else:
        page.get_by_text("Analysed", exact=False).first.wait_for(timeout=120_000)
        page.locator(".js-plotly-plot g.xtick text").first.wait_for(timeout=60_000)
    settle(page)
    assert "Traceback" not in page.content()
    page.wait_for_timeout(300)  # an injected handler would have fired by now
    assert page.watch.dialogs == [], page.watch.dialogs
    assert page.watch.errors == [], page.watch.errors
    assert page.watch.external == [], page.watch.external
    # The same session analyses the next good input.
    if case.kind == "model" or "model" in case.link:
        choose_model(page, "all-MiniLM-L6-v2 (encoder)")
    text = page.get_by_label("Text")
    text.fill(GOOD_TEXT)
    text.press("Control+Enter")
    settle(page)
    page.get_by_role("button", name="Analyze").click()
    page.get_by_text("Analysed", exact=False).first.wait_for(timeout=120_000)
    settle(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot g.xtick text')]"
        ".some(t => t.textContent === '2: good')",
        timeout=60_000,
    )
