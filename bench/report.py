"""Offline report sizes: AttnScope's HTML report (viz/report.py) beside BertViz's head view HTML
for the same MiniLM text at 128 and 512 tokens, measured in one run.

Ours: the whole file (every layer's head view, the model view, every layer's heatmap, the entropy
heatmap, the tables, plotly.js and the views' JS inlined). BertViz: ``bertviz.head_view(...,
html_action="return")`` built by BertViz itself up to 256 tokens; beyond that its size from its
parts, layer by layer (``bench.views.bertviz_bytes``, marked "≈"), since building it needs
gigabytes. BertViz's page also loads require.js, d3 and jQuery from a CDN, not counted here.

``python -m bench.report [--tokens 128 512]`` (or ``python -m bench report``).
"""

from __future__ import annotations

import argparse
import os
import time

from bench.views import bertviz_bytes, mb, text_of

MODEL = "minilm"
LENGTHS = (128, 512)


def measure(n_tokens: int) -> dict:
    from core import analyze, load_model
    from viz.report import REPORT_DENSE_LIMIT, report_html

    loaded = load_model(MODEL)
    result = analyze(loaded, text_of(n_tokens), max_tokens=n_tokens)
    started = time.perf_counter()
    html = report_html(result)
    seconds = time.perf_counter() - started
    ours = len(html.encode("utf-8"))
    theirs, exact = bertviz_bytes(loaded, result)
    dense = result.n_heads * result.seq_len**2 <= REPORT_DENSE_LIMIT
    return {
        "tokens": result.seq_len,
        "ours": ours,
        "seconds": seconds,
        "head_view": "every weight" if dense else "top keys per row",
        "bertviz": theirs,
        "exact": exact,
    }


def print_table(rows: list[dict]) -> None:
    header = (
        "tokens",
        "AttnScope report",
        "head view sent",
        "built in",
        "BertViz head view",
        "ratio",
    )
    lines = [
        (
            str(r["tokens"]),
            mb(r["ours"]),
            r["head_view"],
            f"{r['seconds']:.1f} s",
            ("" if r["exact"] else "≈") + mb(r["bertviz"]),
            f"{r['bertviz'] / r['ours']:.1f}x smaller",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    print("\nOffline HTML, all-MiniLM-L6-v2 (6 layers x 12 heads), one file each")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for line in lines:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench report", description=__doc__)
    parser.add_argument("--tokens", nargs="*", type=int, default=list(LENGTHS))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print_table([measure(n) for n in args.tokens])


if __name__ == "__main__":
    main()
