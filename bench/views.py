"""Long inputs: AttnScope's views and statistics against BertViz, measured in the same run.

For MiniLM at T = 16..512 and SmolLM2 at T = 128..2048 tokens, one table per model:

- forward: the bare forward pass (eager attention, weights not returned), and "fwd+attn" with
  ``output_attentions=True`` (what BertViz and naive code run), medians of 5 interleaved runs;
- analysis: ``core.analyze`` with every statistic (layer by layer), and its overhead on each;
  "stats" is the time spent inside the statistics alone (``Analysis.stats_seconds``), as a share
  of the bare forward pass (the rest of the overhead is tokenizing, labels and holding weights);
- bytes: what our head view and model view send, and BertViz's head view HTML (its JSON of
  every weight, measured exactly layer by layer; "≈" marks an extrapolation from two layers);
- drawn: from the click on the page link to the view drawn (``data-state=drawn``) in headless
  Chromium against ``streamlit run`` with a warm model; hover: a token hovered to its weights
  shown. BertViz: its own head/model view (offline build, same JS) until every line is in the
  SVG, capped at ``--limit`` seconds and reported as "> limit";
- peak RSS: a fresh process that loads the model and analyses (ours: statistics and both view
  payloads; BertViz: ``output_attentions=True`` and ``bertviz.head_view(html_action="return")``).

Run with ``make bench`` (or ``python -m bench views --limit 60``). Never run by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.appserver import ROOT, choose_option, launch_chromium, start_app

PLAN = {"minilm": (16, 64, 128, 256, 512), "smollm2": (128, 512, 1024, 2048)}
TITLES = {"minilm": "all-MiniLM-L6-v2 (encoder)", "smollm2": "SmolLM2-135M-Instruct (decoder)"}
CAPTIONS = {"minilm": "BERT encoder, 6 layers", "smollm2": "Llama-family decoder, 30 layers"}
# BertViz pages beyond this are not even attempted in the browser or for RSS: they would take
# many minutes and gigabytes (its HTML is ~7 bytes per weight plus Python floats while building).
BERTVIZ_MAX_BYTES = 1_200_000_000
REPEATS = 5
SENTENCE = "The quick brown fox jumps over the lazy dog while the cat watches quietly. "


def text_of(n_tokens: int) -> str:
    return SENTENCE * (n_tokens // 8 + 4)  # truncated to n_tokens by max_tokens


@dataclass
class Row:
    tokens: int
    forward: float = 0.0
    forward_attn: float = 0.0
    analysis: float = 0.0
    stats: float = 0.0
    ours_head_bytes: int = 0
    ours_model_bytes: int = 0
    bertviz_bytes: int = 0
    bertviz_exact: bool = True
    drawn_head: float | None = None
    drawn_model: float | None = None
    hover_ms: float | None = None
    bertviz_head: str = "-"
    bertviz_model: str = "-"
    rss_ours_mb: float = 0.0
    rss_bertviz: str = "-"


# --- in-process measurements ------------------------------------------------------------------


def measure_compute(name: str, n_tokens: int, row: Row) -> None:
    import torch

    from core import analyze, load_model
    from core.engine.streaming import run_inputs
    from core.engine.tokenize import tokenize
    from viz.attention_view import encode_head_view, encode_model_view

    loaded = load_model(name)
    tokenized = tokenize(loaded, text_of(n_tokens), max_tokens=n_tokens)
    inputs = run_inputs(loaded, tokenized.inputs)
    base = loaded.model.base_model

    def bare() -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            base(**inputs)
        return time.perf_counter() - started

    def with_attentions() -> float:  # what BertViz and naive code run
        started = time.perf_counter()
        with torch.inference_mode():
            base(**inputs, output_attentions=True)
        return time.perf_counter() - started

    def full() -> float:
        started = time.perf_counter()
        result = analyze(loaded, text_of(n_tokens), max_tokens=n_tokens)
        elapsed = time.perf_counter() - started
        runs["stats"].append(result.stats_seconds)
        return elapsed

    runs: dict[str, list[float]] = {"bare": [], "attn": [], "full": [], "stats": []}
    for _ in range(REPEATS + 1):  # interleaved, so all see the same machine; first is warm-up
        runs["bare"].append(bare())
        runs["attn"].append(with_attentions())
        runs["full"].append(full())
    row.forward = statistics.median(runs["bare"][1:])
    row.forward_attn = statistics.median(runs["attn"][1:])
    row.analysis = statistics.median(runs["full"][1:])
    row.stats = statistics.median(runs["stats"][1:])
    result = analyze(loaded, text_of(n_tokens), max_tokens=n_tokens, keep_layers=[0])
    row.ours_head_bytes = encode_head_view(result, 0).size
    row.ours_model_bytes = encode_model_view(result, (0, 0)).size
    row.bertviz_bytes, row.bertviz_exact = bertviz_bytes(loaded, result)


def bertviz_bytes(loaded, result) -> tuple[int, bool]:
    """Length of BertViz's head view HTML. Up to 256 tokens: BertViz itself builds it. Beyond:
    its parts, layer by layer. Its JS carries the template marker twice (once in a comment), so
    ``str.replace`` puts the JSON of every weight into the page twice."""
    import torch
    from bertviz import head_view

    from core.engine.run import with_layers

    if result.seq_len <= 256:
        with torch.inference_mode():
            out = loaded.model.base_model(**result.model_inputs(), output_attentions=True)
        html = head_view(out.attentions, list(result.tokens), html_action="return")
        return len(html.data), True
    sizes = []
    for layer in (0, result.n_layers - 1):  # every layer is the same shape: extrapolate
        weights = with_layers(loaded, result, [layer]).layer(layer).unsqueeze(0)
        sizes.append(len(json.dumps(weights.tolist())))
    data = statistics.mean(sizes) * result.n_layers
    return int(2 * data + 2 * len(json.dumps(list(result.tokens))) + 16_000), False


# --- peak RSS in fresh processes --------------------------------------------------------------

# VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child forked from this (large) process
# would report the parent's size.
_PEAK = """
def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

_RSS_OURS = (
    _PEAK
    + """
import json, sys
from core import analyze, load_model
from viz.attention_view import encode_head_view, encode_model_view
name, n = sys.argv[1], int(sys.argv[2])
text = {text!r} * (n // 8 + 4)
loaded = load_model(name)
result = analyze(loaded, text, max_tokens=n, keep_layers=[0])
encode_head_view(result, 0); encode_model_view(result, (0, 0))
print(json.dumps({{"rss_mb": peak_mb()}}))
"""
)

_RSS_BERTVIZ = (
    _PEAK
    + """
import json, sys, torch
from bertviz import head_view
from core import load_model
from core.engine.tokenize import tokenize
name, n = sys.argv[1], int(sys.argv[2])
text = {text!r} * (n // 8 + 4)
loaded = load_model(name)
tok = tokenize(loaded, text, max_tokens=n)
with torch.inference_mode():
    out = loaded.model.base_model(input_ids=tok.input_ids, output_attentions=True)
html = head_view(out.attentions, list(tok.tokens), html_action="return")
print(json.dumps({{"rss_mb": peak_mb(), "bytes": len(html.data)}}))
"""
)


def peak_rss(snippet: str, name: str, n_tokens: int, timeout: float) -> dict | None:
    code = snippet.format(text=SENTENCE)
    try:
        out = subprocess.run(
            [sys.executable, "-c", code, name, str(n_tokens)],
            cwd=ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the browser ------------------------------------------------------------------------------


class App:
    """``streamlit run app.py`` on loopback, driven by Playwright in Debian's Chromium."""

    def __init__(self, browser) -> None:
        self.server = start_app(
            Path(tempfile.mkdtemp()) / "server.log", HF_HUB_OFFLINE="1", timeout=120
        )
        url = self.server.url
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.goto(url)
        self.page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)

    def analyze(self, name: str, n_tokens: int) -> None:
        page = self.page
        page.get_by_role("link", name="Statistics").click()
        choose_option(page, "Model", TITLES[name])
        page.get_by_text(CAPTIONS[name], exact=False).first.wait_for(timeout=60_000)
        page.wait_for_timeout(500)  # let the rerun that the choice started settle
        limit = page.get_by_label("Max tokens", exact=True)
        if not limit.is_visible():
            page.get_by_text("Settings", exact=True).click()
        limit.wait_for(state="visible", timeout=30_000)
        limit.fill(str(n_tokens))
        limit.press("Enter")
        box = page.get_by_label("Text")
        box.fill(text_of(n_tokens))
        box.press("Control+Enter")
        page.get_by_role("button", name="Analyze").click()
        page.get_by_text(f"Analysed {n_tokens} tokens", exact=False).first.wait_for(timeout=600_000)

    def time_views(self, row: Row) -> None:
        page = self.page
        # One visit first: the component's module and the page's code are then warm, as they
        # are for anyone who has opened the page once.
        page.get_by_role("link", name="Head & model view").click()
        page.locator(".atv-root[data-state=drawn]").wait_for(timeout=120_000)
        page.get_by_role("link", name="Statistics").click()
        page.get_by_role("heading", name="Attention statistics").wait_for()
        started = time.perf_counter()
        page.get_by_role("link", name="Head & model view").click()
        page.get_by_text("Head view", exact=True).wait_for()
        page.locator(".atv-root[data-state=drawn] .atv-view .atv-canvas").wait_for(timeout=120_000)
        row.drawn_head = time.perf_counter() - started
        token = page.locator(".atv-left .atv-token").nth(min(5, row.tokens - 1))
        token.scroll_into_view_if_needed()
        started = time.perf_counter()
        token.hover()
        page.locator(".atv-right .atv-token[data-weight]").first.wait_for(timeout=60_000)
        row.hover_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        page.get_by_text("Model view", exact=True).click()
        page.locator(".atv-root[data-state=drawn] .atv-thumbs").wait_for(timeout=120_000)
        row.drawn_model = time.perf_counter() - started
        page.get_by_text("Head view", exact=True).click()  # the next length starts there again
        page.locator(".atv-root[data-state=drawn] .atv-view").wait_for(timeout=120_000)

    def close(self) -> None:
        self.page.close()
        self.server.stop()


def time_bertviz(browser, name: str, n_tokens: int, limit: float, row: Row) -> None:
    """BertViz's own head and model view (offline build) until every line is drawn."""
    from core import analyze, load_model
    from viz.bertviz_views import bertviz_html

    result = analyze(load_model(name), text_of(n_tokens), max_tokens=n_tokens, keep_layers="all")
    expected = {
        "head": result.n_heads * n_tokens * n_tokens,
        "model": result.n_layers * result.n_heads * n_tokens * n_tokens,
    }
    for view in ("head", "model"):
        with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False) as handle:
            handle.write(bertviz_html(result, view))
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.perf_counter()
        try:
            page.goto(Path(handle.name).as_uri(), timeout=limit * 1000)
            page.wait_for_function(
                f"() => document.querySelectorAll('line').length >= {expected[view]}",
                timeout=limit * 1000,
                polling=200,
            )
            elapsed = f"{time.perf_counter() - started:.1f} s"
        except Exception:
            elapsed = f"> {limit:.0f} s"
        finally:
            page.close()
            os.unlink(handle.name)
        if view == "head":
            row.bertviz_head = elapsed
        else:
            row.bertviz_model = elapsed


# --- the report -------------------------------------------------------------------------------


def mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def print_table(name: str, rows: list[Row], limit: float) -> None:
    print(f"\n{TITLES[name]}  (BertViz capped at {limit:.0f} s)")
    header = (
        "tokens",
        "forward",
        "fwd+attn",
        "analysis (+% on each)",
        "stats",
        "ours head+model",
        "BertViz",
        "ours/BertViz",
        "drawn head/model",
        "hover",
        "BertViz head",
        "BertViz model",
        "RSS ours",
        "RSS BertViz",
    )
    lines = []
    for r in rows:
        ours = r.ours_head_bytes + r.ours_model_bytes
        over_bare = (r.analysis / r.forward - 1) * 100
        over_attn = (r.analysis / r.forward_attn - 1) * 100
        lines.append(
            (
                str(r.tokens),
                f"{r.forward:.3f} s",
                f"{r.forward_attn:.3f} s",
                f"{r.analysis:.3f} s ({over_bare:+.0f}% / {over_attn:+.0f}%)",
                f"{r.stats:.3f} s ({100 * r.stats / r.forward:.0f}%)",
                f"{mb(r.ours_head_bytes)}+{mb(r.ours_model_bytes)}",
                ("" if r.bertviz_exact else "≈") + mb(r.bertviz_bytes),
                f"{100 * ours / r.bertviz_bytes:.2f}%",
                f"{r.drawn_head:.2f}/{r.drawn_model:.2f} s" if r.drawn_head else "-",
                f"{r.hover_ms:.0f} ms" if r.hover_ms is not None else "-",
                r.bertviz_head,
                r.bertviz_model,
                f"{r.rss_ours_mb:.0f} MB",
                r.rss_bertviz,
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for line in lines:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench views", description=__doc__)
    parser.add_argument("--limit", type=float, default=60, help="BertViz cap, seconds")
    parser.add_argument("--models", nargs="*", default=list(PLAN), choices=list(PLAN))
    parser.add_argument(
        "--tokens", nargs="*", type=int, help="only these lengths (for a quick run)"
    )
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        app = App(browser)
        try:
            for name in args.models:
                rows = []
                for n_tokens in args.tokens or PLAN[name]:
                    row = Row(n_tokens)
                    measure_compute(name, n_tokens, row)
                    app.analyze(name, n_tokens)
                    app.time_views(row)
                    ours = peak_rss(_RSS_OURS, name, n_tokens, timeout=900)
                    row.rss_ours_mb = ours["rss_mb"] if ours else float("nan")
                    if row.bertviz_bytes <= BERTVIZ_MAX_BYTES:
                        time_bertviz(browser, name, n_tokens, args.limit, row)
                        theirs = peak_rss(_RSS_BERTVIZ, name, n_tokens, timeout=900)
                        row.rss_bertviz = f"{theirs['rss_mb']:.0f} MB" if theirs else "failed"
                    else:
                        row.bertviz_head = row.bertviz_model = "not attempted"
                        row.rss_bertviz = "not attempted"
                    rows.append(row)
                    print(f"  measured {name} at {n_tokens} tokens", file=sys.stderr, flush=True)
                print_table(name, rows, args.limit)
        finally:
            app.close()
            browser.close()


if __name__ == "__main__":
    main()
