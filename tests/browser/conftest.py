"""Browser fixtures: `streamlit run app.py` on a loopback port, driven by Playwright in Debian's
Chromium (`playwright install` downloads a browser and cannot work offline)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.appserver import AppServer, ServerFailed, launch_chromium, start_app

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.browser)


def start_server(name: str, **env: str) -> AppServer:
    """The app on a loopback port, its log in ``.cache/streamlit-NAME.log``."""
    try:
        return start_app(ROOT / ".cache" / f"streamlit-{name}.log", **env)
    except ServerFailed as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def server_url():
    server = start_server("test")
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            chromium = launch_chromium(playwright)
        except FileNotFoundError as error:
            pytest.fail(str(error))
        yield chromium
        chromium.close()


@dataclass
class Watch:
    """What a page did that it must not: dialogs, failed or off-machine requests, JS errors."""

    dialogs: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    watch = Watch()

    def on_dialog(dialog):
        watch.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_request(request):
        if not request.url.startswith((server_url, "data:", "about:", "blob:")):
            watch.external.append(request.url)

    tab.on("dialog", on_dialog)
    tab.on("request", on_request)
    tab.on("requestfailed", lambda request: watch.failed.append(request.url))
    tab.on("pageerror", lambda error: watch.errors.append(str(error)))
    tab.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    tab.watch = watch
    tab.goto(server_url)
    tab.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
    # The start page analyses the default example: let that run end before a test types.
    tab.locator(".js-plotly-plot").first.wait_for(timeout=180_000)
    tab.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=180_000
    )
    yield tab
    context.close()
