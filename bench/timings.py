"""Load and analyse timings for the bundled models: cold and cached loads, analyze at 32/128/512.

Each load runs in a fresh Python process (imports done before the clock starts), so "cold" really
is cold; SmolLM2's cold load uses an empty cache folder and so includes the GGUF conversion.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LENGTHS = (32, 128, 512)
REPEATS = 3

_LOAD_SNIPPET = """
import json, sys, time
import transformers, torch  # imports are not part of the load time
from core import load_model
started = time.perf_counter()
load_model(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def time_load(name: str, cache_dir: str) -> float:
    env = {**os.environ, "ATTNSCOPE_CACHE_DIR": cache_dir, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_SNIPPET, name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def text_of(n_tokens: int) -> str:
    """Plain English long enough to fill ``n_tokens`` for either tokenizer (it is truncated)."""
    sentence = "The quick brown fox jumps over the lazy dog while the cat watches quietly. "
    return sentence * (n_tokens // 8 + 4)


def time_analyze(name: str, n_tokens: int) -> tuple[float, float, int]:
    from core import analyze, load_model

    loaded = load_model(name)
    analyze(loaded, text_of(n_tokens), max_tokens=n_tokens)  # warm-up
    totals, forwards = [], []
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = analyze(loaded, text_of(n_tokens), max_tokens=n_tokens)
        totals.append(time.perf_counter() - started)
        forwards.append(result.forward_seconds)
    return statistics.median(totals), statistics.median(forwards), result.seq_len


def main() -> None:
    from core.engine.models import cache_root

    print("AttnScope load and analyze timings (median of 3; CPU threads:", end=" ")
    import torch

    print(f"{torch.get_num_threads()})\n")
    rows = []
    with tempfile.TemporaryDirectory() as empty_cache:
        rows.append(("minilm", "load (fresh process)", time_load("minilm", empty_cache)))
        rows.append(("smollm2", "load, cold (converts GGUF)", time_load("smollm2", empty_cache)))
        rows.append(("smollm2", "load, cached safetensors", time_load("smollm2", empty_cache)))
    print(f"{'model':8}  {'step':34}  {'seconds':>8}")
    for model, step, seconds in rows:
        print(f"{model:8}  {step:34}  {seconds:8.2f}")
    print()
    os.environ.setdefault("ATTNSCOPE_CACHE_DIR", str(cache_root()))
    print(f"{'model':8}  {'tokens':>6}  {'analyze s':>9}  {'forward s':>9}")
    for name in ("minilm", "smollm2"):
        for n in LENGTHS:
            total, forward, seq_len = time_analyze(name, n)
            print(f"{name:8}  {seq_len:6d}  {total:9.3f}  {forward:9.3f}")


if __name__ == "__main__":
    main()
