"""The app against the same calls outside it, measured in one run: is work slower in the app?

Three pieces of work, each timed outside the app (direct calls in this process, with the
library's defaults) and in the app (``streamlit run app.py`` as shipped: its
``.streamlit/config.toml``, its thread setting; Chromium open on the page), interleaved
(outside, app, outside, app, ...) so that both see the same machine:

- SmolLM2's analysis at ``--tokens`` (1022) tokens and MiniLM's at ``--minilm-tokens`` (512):
  the forward time the page reports ("forward X s" in the Analyze status) against
  ``Analysis.forward_seconds`` of ``core.analyze`` on the same text;
- SmolLM2's "Rank every head" on a 15-token text: the time the page reports ("Ranking took X s")
  against ``core.methods.ablation.rank_heads`` on the same analysis (one call, every head).

Outside runs twice: on the library's thread count (every core) and on the app's (one core fewer,
``core.engine.devices.server_threads``), so the table separates the thread count from the rest of
the app. The ratios are medians over ``--repeats`` runs; the target is 1.2x. "wall" is the app's
time from the click to the result on the page (the reruns and drawing included).
``--server-env KEY=VALUE`` and ``--watcher`` change the served app, for comparing candidates.

Run with ``make bench`` or ``python -m bench app``. Never run by the tests.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.appserver import choose_option, launch_chromium, start_app
from core.engine.devices import effective_server_threads

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGET = 1.2
TITLES = {"minilm": "all-MiniLM-L6-v2 (encoder)", "smollm2": "SmolLM2-135M-Instruct (decoder)"}
SENTENCE = "The quick brown fox jumps over the lazy dog while the cat watches quietly. "
# One word changes from repeat to repeat, so that no repeat is served from a cache (the app's
# analyses and rankings are kept by content); every variant has the same number of tokens.
ANIMALS = ("fox", "cat", "dog", "cow", "pig", "owl", "bee")
RANK_TEXT = "The quick brown {animal} jumps over the lazy dog because it was bored."
DONE = re.compile(r"Analysed \d+ tokens? with .* \(forward ([\d.]+) s\)")
RANKED = re.compile(r"Ranking took ([\d.]+) s")
WAIT_MS = 1_800_000


def long_text(repeat: int, n_tokens: int) -> str:
    """Plain English past ``n_tokens`` for either tokenizer (it is cut at max_tokens)."""
    return f"Run {ANIMALS[repeat % len(ANIMALS)]}. " + SENTENCE * (n_tokens // 8 + 4)


@dataclass
class Work:
    label: str
    model: str
    kind: str  # "analysis" or "rank"
    max_tokens: int
    tokens: int = 0
    outside: list[float] = field(default_factory=list)
    same_threads: list[float] = field(default_factory=list)  # outside, the app's thread count
    app: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)

    def text(self, repeat: int) -> str:
        if self.kind == "rank":
            return RANK_TEXT.format(animal=ANIMALS[repeat % len(ANIMALS)])
        return long_text(repeat, self.max_tokens)

    def ratio(self, outside: list[float]) -> float:
        return statistics.median(self.app) / statistics.median(outside)


class AppPage:
    """The served app in one Chromium tab, driven the way a person would."""

    def __init__(self, browser, watcher: str | None, env: dict[str, str]) -> None:
        log = Path(tempfile.mkdtemp()) / "server.log"
        self.server = start_app(log, timeout=180, watcher=watcher, HF_HUB_OFFLINE="1", **env)
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.goto(self.server.url)
        self.page.get_by_role("button", name="Analyze").wait_for(timeout=WAIT_MS)
        self.page.get_by_text("Default example").first.wait_for(timeout=WAIT_MS)  # first run
        self.model = "minilm"  # the sidebar's default

    def _choose(self, model: str, max_tokens: int) -> None:
        page = self.page
        if model != self.model:
            choose_option(page, "Model", TITLES[model], attempts=10)
            page.wait_for_timeout(1000)  # the rerun that the choice started
            self.model = model
        limit = page.get_by_label("Max tokens", exact=True)
        if not limit.is_visible():
            page.get_by_text("Settings", exact=True).click()
        limit.wait_for(state="visible", timeout=60_000)
        limit.fill(str(max_tokens))
        limit.press("Enter")

    def analyze(self, model: str, text: str, max_tokens: int) -> tuple[float, float]:
        """Analyse ``text``; return (forward seconds the page reports, click to that report)."""
        page = self.page
        self._choose(model, max_tokens)
        box = page.get_by_label("Text")
        box.fill(text)
        box.press("Control+Enter")
        done = page.get_by_text(DONE).first
        done.wait_for(state="detached", timeout=WAIT_MS)  # no earlier report left on the page
        page.wait_for_timeout(500)
        started = time.perf_counter()
        page.get_by_role("button", name="Analyze").click()
        done.wait_for(timeout=WAIT_MS)
        wall = time.perf_counter() - started
        return float(DONE.search(done.inner_text()).group(1)), wall

    def rank(self) -> tuple[float, float]:
        """Rank every head of the analysis on screen; return (seconds reported, wall)."""
        page = self.page
        page.get_by_role("link", name="Ablation").click()
        button = page.get_by_role("button", name="Rank every head")
        button.wait_for(timeout=WAIT_MS)
        took = page.get_by_text(RANKED).first
        took.wait_for(state="detached", timeout=WAIT_MS)  # this analysis was never ranked
        started = time.perf_counter()
        button.click()
        took.wait_for(timeout=WAIT_MS)
        wall = time.perf_counter() - started
        seconds = float(RANKED.search(took.inner_text()).group(1))
        page.get_by_role("link", name="Statistics").click()
        page.get_by_role("heading", name="Attention statistics").wait_for(timeout=WAIT_MS)
        return seconds, wall

    def close(self) -> None:
        self.page.close()
        self.server.stop()


def outside(work: Work, repeat: int, threads: int | None = None) -> float:
    """The same call in this process: forward seconds, or the ranking's seconds; on ``threads``
    torch threads (``None``: the library's own count, set when the model loads)."""
    import torch

    from core import analyze, load_model
    from core.methods.ablation import rank_heads

    loaded = load_model(work.model)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        result = analyze(loaded, work.text(repeat), max_tokens=work.max_tokens)
        work.tokens = result.seq_len
        if work.kind == "analysis":
            return result.forward_seconds
        return rank_heads(loaded, result).seconds
    finally:
        torch.set_num_threads(before)


def warm_up(app: AppPage, plan: list[Work]) -> None:
    """Load each model and run each kind of work once, outside and in the app (first passes are
    slower, and the first Analyze loads the model)."""
    from core import analyze, load_model
    from core.methods.ablation import rank_heads

    for work in plan:
        loaded = load_model(work.model)
        result = analyze(loaded, "A warm-up text.", max_tokens=work.max_tokens)
        if work.kind == "rank":
            rank_heads(loaded, result, layers=[0])
        app.analyze(work.model, f"A warm-up text for {work.label}.", work.max_tokens)


def run(
    plan: list[Work], repeats: int, watcher: str | None, env: dict[str, str], app_threads: int
) -> dict:
    import torch
    from playwright.sync_api import sync_playwright

    from core import load_model

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        app = AppPage(browser, watcher, env)
        try:
            warm_up(app, plan)
            for repeat in range(repeats):
                for work in plan:
                    work.outside.append(outside(work, repeat))
                    work.same_threads.append(outside(work, repeat, app_threads))
                    if work.kind == "analysis":
                        seconds, wall = app.analyze(work.model, work.text(repeat), work.max_tokens)
                    else:
                        app.analyze(work.model, work.text(repeat), work.max_tokens)
                        seconds, wall = app.rank()
                    work.app.append(seconds)
                    work.wall.append(wall)
                    print(
                        f"  {work.label}, repeat {repeat + 1}: outside {work.outside[-1]:.2f} s "
                        f"({work.same_threads[-1]:.2f} s on {app_threads} threads), "
                        f"app {seconds:.2f} s (wall {wall:.2f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
            log = app.server.log.read_text(errors="replace")
        finally:
            app.close()
            browser.close()
    load_model("minilm")  # the outside thread count is the library's default, set on load
    return {
        "outside_threads": torch.get_num_threads(),
        "overflows": log.count("Inotify queue overflowed"),
    }


def print_table(plan: list[Work], repeats: int, facts: dict, server: str) -> None:
    threads, app_threads = facts["outside_threads"], facts["app_threads"]
    print(
        f"\nThe app against outside it, same run (median of {repeats}; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    print(f"  app: {server}, {app_threads} torch thread(s); outside: this process")
    header = (
        "work",
        "tokens",
        f"outside ({threads} thr)",
        f"outside ({app_threads} thr)",
        "app (page)",
        "app/outside",
        f"app/outside ({app_threads} thr)",
        "app wall",
        "1.2x target",
    )
    rows = []
    for work in plan:
        ratio = work.ratio(work.outside)
        rows.append(
            (
                work.label,
                str(work.tokens),
                f"{statistics.median(work.outside):.2f} s",
                f"{statistics.median(work.same_threads):.2f} s",
                f"{statistics.median(work.app):.2f} s",
                f"{ratio:.2f}x",
                f"{work.ratio(work.same_threads):.2f}x",
                f"{statistics.median(work.wall):.2f} s",
                "met" if ratio <= TARGET else "not met",
            )
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for line in (header, *rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        print("  ".join(cells))
    print(f"  server log: {facts['overflows']} 'Inotify queue overflowed' lines")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench app", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=1022, help="SmolLM2's analysis")
    parser.add_argument("--minilm-tokens", type=int, default=512)
    parser.add_argument(
        "--only", nargs="*", choices=("smollm2", "minilm", "rank"), help="a part of the plan"
    )
    parser.add_argument(
        "--watcher",
        choices=("config", "auto", "watchdog", "poll", "none"),
        default="config",
        help="the server's fileWatcherType (default: what .streamlit/config.toml says)",
    )
    parser.add_argument("--server-env", nargs="*", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    plan = {
        "smollm2": Work("SmolLM2 analysis", "smollm2", "analysis", args.tokens),
        "minilm": Work("MiniLM analysis", "minilm", "analysis", args.minilm_tokens),
        "rank": Work("SmolLM2 rank every head", "smollm2", "rank", 64),
    }
    chosen = [plan[name] for name in (args.only or plan)]
    env = dict(item.split("=", 1) for item in args.server_env)
    watcher = None if args.watcher == "config" else args.watcher
    app_threads = effective_server_threads({**os.environ, **env})  # what the server runs on
    facts = run(chosen, args.repeats, watcher, env, app_threads)
    facts["app_threads"] = app_threads
    server = f"fileWatcherType {args.watcher}" + "".join(f", {k}={v}" for k, v in env.items())
    print_table(chosen, args.repeats, facts, server)


if __name__ == "__main__":
    main()
