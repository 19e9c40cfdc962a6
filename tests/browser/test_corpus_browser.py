"""The Corpus page in a real browser: the bundled corpus runs with a progress bar and ETA, Stop
keeps the finished chunks, Resume completes the run, and the summary is drawn."""

from __future__ import annotations

import re
from pathlib import Path

from bench.appserver import choose_option
from core.corpus import list_runs, open_run
from tests.browser.conftest import start_server

SCREENSHOTS = Path(__file__).resolve().parents[2] / "assets" / "screenshots"


def settle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000
    )


def test_corpus_page_runs_stops_and_resumes(browser, tmp_path):
    server = start_server("corpus", ATTNSCOPE_RUNS_DIR=str(tmp_path))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(server.url)
        page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
        # SmolLM2: slow enough on two cores for a Stop to land mid-run.
        choose_option(page, "Model", "SmolLM2-135M-Instruct (decoder)")
        settle(page)
        page.get_by_role("link", name="Corpus").click()
        page.get_by_role("heading", name="Corpus mode").wait_for()
        page.get_by_text("240 texts from sample.").wait_for()
        page.get_by_role("button", name="Run", exact=True).click()
        bar = page.locator("[data-testid=stProgress]")
        bar.wait_for(timeout=60_000)
        page.get_by_text(re.compile(r"[1-9]\d* of 240 texts · \d+ s · about \d+ s left")).wait_for(
            timeout=300_000
        )
        page.get_by_role("button", name="Stop", exact=True).click()
        stopped = page.get_by_text(re.compile(r"Stopped: \d+ of 240 texts are stored"))
        stopped.wait_for(timeout=120_000)
        kept = int(re.search(r"Stopped: (\d+)", stopped.inner_text()).group(1))
        assert 32 <= kept < 240 and kept % 32 == 0  # whole chunks of 32 texts
        (folder,) = [row["folder"] for row in list_runs(tmp_path)]
        assert open_run(folder).status == "stopped" and open_run(folder).n_done == kept

        page.get_by_role("button", name="Resume", exact=True).click()
        page.get_by_text(re.compile(r"Done: 240 texts in [\d.]+ s")).wait_for(timeout=900_000)
        settle(page)
        run = open_run(folder)
        assert run.complete and run.n_done == 240 and len(run.manifest["chunks"]) == 8
        page.get_by_role("heading", name="Every head, averaged over the texts").wait_for()
        page.locator("[data-testid=stDataFrame]").nth(1).wait_for()  # heads, then by label
        page.get_by_text(re.compile("Complete · 240 of 240 texts · model smollm2")).wait_for()
        assert run.manifest["model"]["name"] == "smollm2"
        page.screenshot(path=SCREENSHOTS / "corpus.png")
        assert page.locator("[data-testid=stException]").count() == 0
        assert not errors, errors
    finally:
        context.close()
        server.stop()
