"""Long context: AttnScope's own attention function against the bare forward pass.

For each case, in one process and interleaved (so a busy machine slows every column alike): the
bare forward pass under transformers' SDPA (no weights), under eager (every weight written out),
and AttnScope's full analysis (``analyze_ids``: statistics, thumbnails, the layers the budget
keeps) through ``"attnscope"`` attention. Targets are ratios to the bare SDPA pass at the same
length. Peak RSS at a length is taken in a fresh process (``--peak MODEL TOKENS``), so that
nothing measured before counts.

Then CPU threads: SmolLM2 at 512 tokens with 1 and with 2 torch threads, quiet and with one
competing process busy on a core, which is how a laptop or a shared server runs.

Run with ``make bench`` or ``python -m bench long_context [--quick]``; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "long_context.json"
TEXT = (
    "Long documents are where attention sinks, local windows and far-reaching heads show "
    "themselves. A model reading a long report keeps returning to its first tokens, looks "
    "closely at the last few words, and now and then reaches far back for a name. "
)
# (model, tokens, target ratio of the full analysis to the bare SDPA pass)
CASES = (("minilm", 512, 1.10), ("smollm2", 2048, 1.2), ("smollm2", 8192, 1.3))
PEAK_LIMIT_MB = 2048  # SmolLM2 at 8192 tokens


@dataclass(frozen=True)
class CaseResult:
    model: str
    tokens: int
    sdpa_s: float
    eager_s: float
    ours_s: float
    ours_stats_s: float  # of ours_s, spent in the statistics
    target: float

    @property
    def ratio(self) -> float:
        return self.ours_s / self.sdpa_s


def token_ids(loaded, n: int) -> list[int]:
    """Exactly ``n`` token ids of :data:`TEXT` repeated, with the model's special tokens."""
    from core.engine.tokenize import tokenize

    repeats = n // 20 + 2
    ids = tokenize(loaded, TEXT * repeats, max_tokens=n).input_ids[0].tolist()
    assert len(ids) == n, (len(ids), n)
    return ids


def bare_forward(loaded, ids: list[int], implementation: str) -> float:
    """Seconds of one forward pass of the base model under ``implementation``, nothing kept."""
    import torch

    from core.engine.attention_fn import NAME

    loaded.model.set_attn_implementation(implementation)
    try:
        inputs = {"input_ids": torch.tensor([ids], device=loaded.device)}
        if loaded.kind == "decoder":
            inputs["use_cache"] = False
        started = time.perf_counter()
        with torch.inference_mode():
            loaded.model.base_model(**inputs)
        return time.perf_counter() - started
    finally:
        loaded.model.set_attn_implementation(NAME)


def our_analysis(loaded, ids: list[int]) -> tuple[float, float]:
    """Seconds of AttnScope's full analysis of ``ids``, and of its statistics."""
    from core.engine.run import analyze_ids

    started = time.perf_counter()
    result = analyze_ids(loaded, ids)
    return time.perf_counter() - started, result.stats_seconds


def run_case(name: str, tokens: int, target: float, repeats: int, eager: bool) -> CaseResult:
    from core import load_model

    loaded = load_model(name)
    ids = token_ids(loaded, tokens)
    our_analysis(loaded, ids[:64])  # warm up
    sdpa, eager_s, ours, stats_s = [], [], [], []
    for _ in range(repeats):
        sdpa.append(bare_forward(loaded, ids, "sdpa"))
        if eager:
            eager_s.append(bare_forward(loaded, ids, "eager"))
        seconds, in_stats = our_analysis(loaded, ids)
        ours.append(seconds)
        stats_s.append(in_stats)
    best = ours.index(min(ours))
    return CaseResult(
        name,
        tokens,
        min(sdpa),
        min(eager_s) if eager_s else float("nan"),
        ours[best],
        stats_s[best],
        target,
    )


def peak_rss_mb(name: str, tokens: int, implementation: str = "attnscope") -> float:
    """Peak RSS (MB) of a fresh process that loads ``name`` and analyses ``tokens`` tokens
    (``implementation="sdpa"``: only the bare SDPA pass, for reference)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.long_context", "--peak", name, str(tokens), implementation],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _peak_child(name: str, tokens: int, implementation: str) -> None:
    from core import load_model

    loaded = load_model(name)
    ids = token_ids(loaded, tokens)
    if implementation == "sdpa":
        bare_forward(loaded, ids, "sdpa")
    else:
        our_analysis(loaded, ids)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB


def _busy(stop) -> None:  # a competing process: one core's worth of float work
    import torch

    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    while not stop.is_set():
        a = torch.tanh(a @ a)


def thread_seconds(loaded, threads: int, compete: bool, tokens: int = 512) -> float:
    """Median seconds of ``loaded``'s analysis of ``tokens`` tokens with ``threads`` torch
    threads, with or without a competing busy process."""
    import torch

    ids = token_ids(loaded, tokens)
    torch.set_num_threads(threads)  # after loading: load_model sets its own count
    stop = multiprocessing.Event()
    rival = multiprocessing.Process(target=_busy, args=(stop,), daemon=True) if compete else None
    if rival:
        rival.start()
        time.sleep(1.0)
    try:
        runs = [our_analysis(loaded, ids)[0] for _ in range(3)]
    finally:
        if rival:
            stop.set()
            rival.join(10)
    return statistics.median(runs)


def app_at(tokens: int = 8192) -> dict[str, float]:
    """SmolLM2 at ``tokens`` tokens analysed from the app in Chromium: seconds from the click to
    the result, then to each view drawn (the head view's strongest keys and the overview are
    computed on the first visit; the times are of a second visit, as ``bench.views`` times
    them), and the Long context page's first figure."""
    from playwright.sync_api import sync_playwright

    from bench.appserver import launch_chromium
    from bench.views import App, Row

    seconds: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        app = App(browser)
        try:
            started = time.perf_counter()
            app.analyze("smollm2", tokens)
            seconds["analysis in the app"] = time.perf_counter() - started
            row = Row(tokens)
            app.time_views(row)
            seconds["head view drawn"] = row.drawn_head or float("nan")
            seconds["model view drawn"] = row.drawn_model or float("nan")
            seconds["hover (ms)"] = row.hover_ms or float("nan")
            page = app.page
            for visit in ("first", "second"):
                page.get_by_role("link", name="Heatmaps").click()
                page.get_by_role("heading", name="Attention heatmaps").wait_for()
                started = time.perf_counter()
                page.locator(".js-plotly-plot").nth(1).locator("g.hm image").first.wait_for(
                    timeout=900_000
                )
                seconds[f"overview + window drawn ({visit} visit)"] = time.perf_counter() - started
            started = time.perf_counter()
            page.get_by_role("link", name="Long context").click()
            page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=300_000)
            seconds["Long context page drawn"] = time.perf_counter() - started
        finally:
            app.close()
            browser.close()
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench long_context", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip 8192 tokens")
    parser.add_argument("--peak", nargs=3, metavar=("MODEL", "TOKENS", "IMPL"))
    parser.add_argument("--app-only", action="store_true", help="only the app at 8192 tokens")
    args = parser.parse_args(argv)
    if args.app_only:
        for what, value in app_at(8192).items():
            print(f"  SmolLM2 8192 tokens, {what}: {value:.2f}")
        return
    if args.peak:
        _peak_child(args.peak[0], int(args.peak[1]), args.peak[2])
        return
    import torch

    threads_before = torch.get_num_threads()
    os.environ.setdefault("ATTNSCOPE_THREADS", "1")  # every column on one thread, same footing
    print("\nLong context: bare SDPA and eager forward passes against AttnScope's full analysis")
    print(
        f"{'model':<8} {'tokens':>6} {'SDPA s':>8} {'eager s':>8} {'ours s':>8} "
        f"{'stats s':>8} {'ours/SDPA':>9} {'target':>7}  met"
    )
    cases = []
    for name, tokens, target in CASES:
        if args.quick and tokens > 2048:
            continue
        repeats = 5 if tokens <= 512 else 2 if tokens <= 2048 else 1
        # eager at 8192 writes 2.4 GB of weights a layer: minutes on a CPU, for no target
        case = run_case(name, tokens, target, repeats, eager=tokens <= 2048)
        cases.append(case)
        print(
            f"{case.model:<8} {case.tokens:>6} {case.sdpa_s:>8.2f} {case.eager_s:>8.2f} "
            f"{case.ours_s:>8.2f} {case.ours_stats_s:>8.2f} {case.ratio:>9.2f} "
            f"{case.target:>7.2f}  {'met' if case.ratio <= case.target else 'NOT met'}"
        )
    peaks = {}
    if not args.quick:
        for implementation in ("sdpa", "attnscope"):
            peaks[implementation] = peak_rss_mb("smollm2", 8192, implementation)
        print(
            f"peak RSS, SmolLM2 at 8192 tokens: ours {peaks['attnscope']:.0f} MB "
            f"(bare SDPA pass {peaks['sdpa']:.0f} MB); target < {PEAK_LIMIT_MB} MB: "
            f"{'met' if peaks['attnscope'] < PEAK_LIMIT_MB else 'NOT met'}"
        )
    print("\nCPU threads: SmolLM2, 512 tokens, median of 3 analyses")
    threads = {}
    from core import load_model

    smollm2 = load_model("smollm2")
    for n in (1, 2):
        for compete in (False, True):
            seconds = thread_seconds(smollm2, n, compete)
            threads[f"{n} thread(s), {'one core busy' if compete else 'quiet'}"] = seconds
            print(
                f"  {n} thread(s), {'one core busy elsewhere' if compete else 'quiet':<24} "
                f"{seconds:6.2f} s"
            )
    torch.set_num_threads(threads_before)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "cases": [asdict(c) | {"ratio": c.ratio} for c in cases],
                "peak_rss_mb": peaks,
                "threads": threads,
                "cores": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
