"""The Lab page in a real browser, on a server whose lab runs go to a folder of the test's own:
train a small attention-only GPT on repeated random sequences, stop it part-way (the run folder
keeps a checkpoint at the step where it stopped), move the checkpoint slider and read the head
heatmap it drives (the weights are core's own analysis of that checkpoint), in English and then
in Japanese."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from core import analyze, load_model
from core.lab.runs import list_runs
from tests.browser.conftest import start_server
from ui.lab_watch import example_text

SCREENSHOTS = Path(__file__).resolve().parents[2] / "assets" / "screenshots"
SETTLED = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
CALC_Z = "el => Array.from(el.calcdata[0][0].z, r => Array.from(r))"


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-runs")
    server = start_server("lab", ATTNSCOPE_LAB_DIR=str(root))
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    seen = {"dialogs": [], "errors": []}
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.seen, page.root, page.url_base = seen, root, server.url
    yield page
    context.close()
    server.stop()


def settle(page) -> None:
    page.wait_for_function(SETTLED, timeout=180_000)


def fill(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(page)


def check_heatmap(page, expected: np.ndarray) -> str:
    """Wait until the Watch tab's head heatmap (show_figure's key ``lab_heatmap``) is drawn once
    more after a rerun and shows ``expected``; returns its title."""
    charts = page.locator(".st-key-lab_heatmap .js-plotly-plot")
    z = None
    for _ in range(240):
        if charts.count() == 1:
            z = np.array(charts.evaluate(CALC_Z))
            if z.shape == expected.shape and np.allclose(z, expected, atol=1e-4):
                break
        page.wait_for_timeout(500)
    assert z is not None, "no heatmap drawn"
    np.testing.assert_allclose(z, expected, atol=1e-4)
    return charts.evaluate("el => el.layout.title.text")


def expected_head(run, step: int, layer: int, head: int) -> np.ndarray:
    loaded = load_model(str(run.checkpoint_path(step)))
    return analyze(loaded, example_text(run)).head(layer, head).numpy()


def test_train_stop_and_watch_in_both_languages(lab):
    page = lab
    page.goto(f"{page.url_base}/lab")  # this server's first session opens the Lab's address
    # ... and gets the whole app: the navigation and the sidebar, not the page script alone
    page.get_by_role("combobox", name="Language / 言語").wait_for(timeout=60_000)
    page.get_by_role("link", name="Heatmaps").wait_for()
    page.get_by_role("tab", name="Train", exact=True).click()  # a rerun: only the open tab runs
    settle(page)
    fill(page, "Steps", 5000)
    fill(page, "Checkpoint every", 50)
    page.get_by_role("button", name="Train", exact=True).click()
    progress = page.get_by_text(re.compile(r"Step \d+ of 5000"))
    page.wait_for_function(  # a few checkpoints in
        "el => Number(el.textContent.match(/Step (\\d+)/)[1]) >= 120",
        arg=progress.element_handle(timeout=120_000),
        timeout=180_000,
    )
    page.get_by_role("button", name="Stop").click()
    stopped = page.get_by_text(re.compile(r"Stopped: the checkpoint at step \d+ is kept"))
    stopped.wait_for(timeout=120_000)
    step = int(re.search(r"step (\d+)", stopped.inner_text()).group(1))
    assert 120 <= step < 5000
    (run,) = list_runs(page.root)  # the folder keeps a checkpoint where it stopped
    assert run.status == "stopped" and run.checkpoints[-1].step == step
    assert run.history[-1].step == step and run.checkpoints[0].step == 0

    train = page.get_by_role("tab", name="Train", exact=True)
    assert train.get_attribute("aria-selected") == "true"  # Stop's rerun stayed on the tab
    page.get_by_role("tab", name="Watch", exact=True).click()
    settle(page)
    title = check_heatmap(page, expected_head(run, step, 0, 0))
    assert "layer 0" in title.lower() and "head 0" in title.lower()
    page.get_by_text(f"At step {step} the best induction head is").wait_for()
    slider = page.get_by_role("slider", name="Checkpoint (training step)")
    slider.focus()
    slider.press("Home")  # back to the untrained model
    settle(page)
    page.get_by_text("At step 0 the best induction head is").wait_for(timeout=60_000)
    check_heatmap(page, expected_head(run, 0, 0, 0))
    page.screenshot(path=SCREENSHOTS / "lab.png", full_page=False)

    page.goto(f"{page.url_base}/lab?lang=ja")
    page.get_by_role("tab", name="観察", exact=True).click()
    settle(page)
    slider = page.get_by_role("slider", name="チェックポイント（学習ステップ）")
    slider.focus()
    slider.press("Home")
    settle(page)
    slider.press("ArrowRight")  # the second checkpoint, step 50
    settle(page)
    page.get_by_text("ステップ 50 で最もよい誘導ヘッドは").wait_for(timeout=60_000)
    check_heatmap(page, expected_head(run, 50, 0, 0))
    assert page.locator("[data-testid=stException]").count() == 0
    assert not page.seen["dialogs"] and not page.seen["errors"], page.seen
