"""Load: N browser sessions at once against one ``streamlit run``, each analysing its own text,
plus one session asking for a broken model at the same time.

Reports per-session latency (click to drawn heatmap) percentiles, the server's peak RSS, how many
times the model's weights were loaded (must be once) and whether every session saw its own,
correct result (its tokens and its layer-0 head-0 weights, against ``core``).
Run with ``make bench`` or ``python -m bench load --sessions 10``; the tests run a small version
(``tests/browser/test_load.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.appserver import choose_option, launch_chromium, start_app
from core.policy.i18n import t as translate

WORDS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
)
# Click Analyze at one instant (``at``, ms since the epoch) in every page: clicking the pages one
# after another from here spreads the requests over a second, and a short analysis can end
# before the next request comes in, so that none ever queues.
CLICK_AT = "(button, at) => { setTimeout(() => button.click(), at - Date.now()); }"
READ_PLOT = """() => {
    const gd = document.querySelector('.js-plotly-plot');
    const z = gd._fullData[0].z;  // decoded rows (gd.data keeps the base64 spec)
    return {x: Array.from(gd.data[0].x), z: Array.from(z, row => Array.from(row))};
}"""
LOAD_TIMEOUT_MS = 600_000
DEBUG_DIR = os.environ.get("ATTNSCOPE_LOAD_DEBUG")
MINILM_WEIGHTS = "103/103"  # the progress line transformers prints when MiniLM's weights load


def session_text(i: int) -> str:
    """Session ``i``'s own text, about 190 tokens: long enough that an analysis holds its slot
    for a while, so that requests sent together overlap and the later ones queue."""
    words = " ".join(WORDS[(i + 5 * j) % len(WORDS)] for j in range(60))
    return (
        f"Session {i} reads {WORDS[i % len(WORDS)]} and {WORDS[(3 * i + 1) % len(WORDS)]}: {words}."
    )


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    broken_model_message: str = ""
    weight_loads: int = 0
    peak_rss_mb: float = 0.0
    server_cpu_s: float = 0.0  # CPU the server spent from the clicks to the last drawn result
    phase_s: float = 0.0  # wall time from the first click to the last drawn result
    errors: list[str] = field(default_factory=list)
    waited: list[bool] = field(default_factory=list)  # shown the "waiting for a slot" notice


FIRST_LABEL = "1: Session"  # every session text starts "Session ..." (after [CLS])
# The English notice of a request queued behind the server's analysis slots, up to its numbers.
WAITING_TEXT = translate("run.waiting", "en", ahead=0, running=0).split("(")[0].strip()
# In the page itself, so that every session is timed on its own (waiting for the pages one after
# another from here would give the later ones the earlier ones' time): ``__attnscopeWaited`` once
# the waiting notice appears, ``__attnscopeDrawnAt`` (ms since the epoch) once the heatmap shows
# the session's first token label.
WATCH_PAGE = """([waiting, label]) => {
  window.__attnscopeWaited = false;
  window.__attnscopeDrawnAt = null;
  const look = () => {
    if (document.body.textContent.includes(waiting)) window.__attnscopeWaited = true;
    const plot = document.querySelector('.js-plotly-plot');
    // The plot's own labels: at ~190 tokens Plotly draws only some of them as ticks.
    if (window.__attnscopeDrawnAt === null && plot && plot.data && plot.data[0].x
        && plot.data[0].x[1] === label) window.__attnscopeDrawnAt = Date.now();
  };
  new MutationObserver(look).observe(document.body, {
    subtree: true, childList: true, characterData: true,
  });
}"""


def _cpu_s(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    times = [p.cpu_times() for p in [process, *process.children(recursive=True)]]
    return sum(t.user + t.system for t in times)


def _rss_mb(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def broken_model_folder(root: Path) -> Path:
    from core.engine.models import BUILTIN_MODELS, _package_dir

    source = _package_dir(BUILTIN_MODELS["minilm"]) / "model"
    folder = root / "truncated"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(source / name, folder / name)
    folder.joinpath("model.safetensors").write_bytes(
        (source / "model.safetensors").read_bytes()[:5000]
    )
    return folder


def run_load(sessions: int, *, max_concurrent: int = 2, browser=None) -> LoadResult:
    """Start a fresh server, drive ``sessions`` sessions plus a broken-model one, and measure.
    ``browser``: a Playwright browser to use (the tests pass theirs), else one is launched."""
    import torch
    from playwright.sync_api import sync_playwright

    from core import analyze, load_model

    result = LoadResult()
    server = start_app(
        Path(tempfile.mkdtemp()) / "server.log",
        timeout=120,
        HF_HUB_OFFLINE="1",
        ATTNSCOPE_MAX_CONCURRENT=str(max_concurrent),
    )
    url = server.url
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            with contextlib.suppress(Exception):  # the server may be between processes
                peak[0] = max(peak[0], _rss_mb(server.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        sampler.start()
        loaded = load_model("minilm")
        with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
            broken = broken_model_folder(Path(scratch))
            if browser is None:
                playwright = stack.enter_context(sync_playwright())
                browser = launch_chromium(playwright)
                stack.callback(browser.close)
            pages = []
            for i in range(sessions + 1):
                context = browser.new_context()
                stack.callback(context.close)
                page = context.new_page()
                page.on("pageerror", lambda error: result.errors.append(str(error)))
                page.goto(url)
                page.get_by_role("button", name="Analyze").wait_for(timeout=120_000)
                # The start page analyses the default example: let that run end, or its rerun
                # closes a dropdown opened below and the timed clicks queue behind it.
                page.locator(".js-plotly-plot").first.wait_for(timeout=LOAD_TIMEOUT_MS)
                page.wait_for_function(
                    "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                    timeout=LOAD_TIMEOUT_MS,
                )
                pages.append(page)
            bad = pages[-1]
            choose_option(bad, "Model", "Other: Hugging Face id or folder")
            box = bad.get_by_role("textbox", name="Model id or folder")
            box.fill(str(broken))
            box.press("Enter")
            bad.wait_for_timeout(500)
            for i, page in enumerate(pages[:-1]):
                text = page.get_by_label("Text")
                text.fill(session_text(i))
                text.press("Control+Enter")
            pages[0].wait_for_timeout(1000)  # every text committed before the first click
            for page in pages[:-1]:
                page.evaluate(WATCH_PAGE, [WAITING_TEXT, FIRST_LABEL])
            cpu_before = _cpu_s(server.pid)
            at = time.time() + 1.0 + 0.05 * len(pages)  # after every page has its timer
            for page in pages:  # all requests go in together
                page.get_by_role("button", name="Analyze").evaluate(CLICK_AT, at * 1000)
            started = dict.fromkeys(range(len(pages)), at)  # the pages' Date.now(): same clock
            for i, page in enumerate(pages[:-1]):
                if DEBUG_DIR:
                    page.screenshot(path=f"{DEBUG_DIR}/session-{i}.png")
                page.wait_for_function(
                    "() => window.__attnscopeDrawnAt !== null",
                    timeout=LOAD_TIMEOUT_MS,
                )
                drawn_at = page.evaluate("() => window.__attnscopeDrawnAt") or time.time() * 1000
                result.latencies.append(drawn_at / 1000 - started[i])
                shown = page.evaluate(READ_PLOT)
                expected = analyze(loaded, session_text(i))
                tokens_ok = shown["x"] == [f"{j}: {t}" for j, t in enumerate(expected.tokens)]
                weights = torch.tensor(shown["z"], dtype=torch.float32)
                result.correct.append(
                    tokens_ok and torch.allclose(weights, expected.head(0, 0), atol=1e-5)
                )
                result.waited.append(page.evaluate("() => window.__attnscopeWaited === true"))
            result.server_cpu_s = _cpu_s(server.pid) - cpu_before
            result.phase_s = max(result.latencies) + started[0] - min(started.values())
            # The error alert, not the sidebar's notice that its request is not the result shown.
            alert = bad.locator("[data-testid=stAlert]", has_text="Could not load").first
            alert.wait_for(timeout=300_000)
            result.broken_model_message = alert.inner_text()
    finally:
        done.set()
        server.stop()
    result.peak_rss_mb = peak[0]
    result.weight_loads = server.log.read_text().count(MINILM_WEIGHTS)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench load", description=__doc__)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--max-concurrent", type=int, default=2)
    args = parser.parse_args(argv)
    result = run_load(args.sessions, max_concurrent=args.max_concurrent)
    latencies = sorted(result.latencies)
    quantile = (
        statistics.quantiles(latencies, n=10, method="inclusive")
        if len(latencies) > 1
        else latencies * 9
    )
    print(
        f"\nLoad: {args.sessions} sessions at once (+1 asking for a broken model), "
        f"{args.max_concurrent} analyses at a time"
    )
    print(
        f"  latency, click to drawn heatmap: p50 {statistics.median(latencies):.2f} s, "
        f"p90 {quantile[8]:.2f} s, max {latencies[-1]:.2f} s"
    )
    print(
        f"  sessions with their own correct result: {sum(result.correct)} of {len(result.correct)}"
    )
    print(f"  sessions shown the waiting notice: {sum(result.waited)} of {len(result.waited)}")
    print(f"  model weights loaded: {result.weight_loads} time(s)")
    print(f"  server peak RSS: {result.peak_rss_mb:.0f} MB")
    print(
        f"  server CPU from the clicks to the last result: {result.server_cpu_s:.1f} s "
        f"in {result.phase_s:.1f} s on {os.cpu_count()} cores (the rest: the browsers)"
    )
    print(f"  broken-model session: {result.broken_model_message[:100]!r}")
    print(f"  page errors: {len(result.errors)}")


if __name__ == "__main__":
    main()
