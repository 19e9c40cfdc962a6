"""How long "rank every head" takes: one ablation per head on a ~20-token text, both bundled
models (MiniLM: 72 heads, SmolLM2: 270). Run with ``python -m bench.rank_heads``."""

from __future__ import annotations

import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core import analyze, load_model  # noqa: E402  (after HF_HUB_OFFLINE is set)
from core.methods.ablation import rank_heads  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog because it was bored and wanted to play."


def main() -> None:
    header = f"{'model':<10} {'tokens':>6} {'heads':>6} {'seconds':>8} {'per head':>9}"
    print(f"{header}  most important")
    for name in ("minilm", "smollm2"):
        loaded = load_model(name)
        result = analyze(loaded, TEXT)
        n_tokens = result.seq_len
        rank_heads(loaded, result, layers=[0])  # warm-up: first passes are slower
        started = time.perf_counter()
        ranking = rank_heads(loaded, result)
        seconds = time.perf_counter() - started
        layer, head, value = ranking.ranked()[0]
        print(
            f"{name:<10} {n_tokens:>6} {ranking.n_total:>6} {seconds:>8.1f} "
            f"{seconds / ranking.n_total:>8.3f}s  L{layer} H{head} ({ranking.metric} {value:.4f})"
        )


if __name__ == "__main__":
    main()
