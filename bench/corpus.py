"""Corpus mode benchmark: ``python -m bench corpus [--texts N] [--large N] [--no-ray]``.

Texts are three of the bundled sample's English sentences (about 32 MiniLM tokens, distinct).
Each measurement runs in a fresh Python process (model loaded before the clock starts), so peak
RSS is that run's own:

- throughput of ``run_corpus`` (everything collected and written) against a bare batched forward
  pass over the same texts, same batch size and length sorting (tokenizer call + forward);
- peak RSS of a run over ``--texts`` (1 000) and ``--large`` (10 000) texts, and the time of the
  large run;
- the Ray engine (local cluster) with 1 and 2 workers against the local engine, and a projection
  for more workers from the measured split between the driver's serial work and the chunks'
  compute (Amdahl: ``t(n) = serial + compute / n``).

Results are printed as a table and written to ``bench/results/corpus.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from core.engine.devices import THREADS_ENV, effective_server_threads

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

_SNIPPET = r"""
import json, resource, sys, time
mode, n, workers, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
from core import load_model
from core.corpus import BatchOptions, run_corpus, sample_corpus
from core.corpus.sources import Corpus
sample = sample_corpus().texts
english = [t for t in sample if t.isascii()]
k = len(english)  # three sentences per text, about 32 tokens; (first, second) never repeats
def text(i):
    return f"{english[i % k]} {english[(i // k) % k]} {english[(i * 37 + i // k) % k]}"
texts = [text(i) for i in range(n)]
corpus = Corpus(texts=tuple(texts), source="bench", format="text")
loaded = load_model("minilm")
options = BatchOptions(batch_size=32, chunk_size=256)
started, cpu = time.perf_counter(), time.process_time()
if mode == "bare":
    import torch
    from core.corpus.batch import plan_batches
    from core.engine.tokenize import count_tokens
    lengths = count_tokens(loaded, texts)
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    with torch.inference_mode():
        for batch in plan_batches([lengths[i] for i in order], loaded.n_heads, 32):
            part = [texts[order[i]] for i in batch]
            inputs = loaded.tokenizer(part, padding=True, return_tensors="pt")  # noqa
            loaded.model.base_model(**inputs)
    rows = 0
else:
    engine = "ray" if mode == "ray" else "local"
    run = run_corpus(corpus, loaded, out=out, options=options, engine=engine, ray_workers=workers)
    rows = run.query("SELECT count(*) AS n FROM heads").n[0]
    chunks = sum(c["seconds"] for c in run.manifest["chunks"].values())
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
tokens = sum(len(ids) for ids in loaded.tokenizer(texts)["input_ids"])  # noqa
print(json.dumps({
    "mode": mode, "texts": n, "workers": workers, "seconds": seconds, "cpu_seconds": cpu,
    "rows": int(rows),
    "mean_tokens": tokens / n,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "chunk_seconds": None if mode == "bare" else chunks,
}))
"""


def measure(mode: str, n: int, workers: int = 1) -> dict:
    """One measurement in a fresh process."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        # The CLI's count, the same for the bare pass and the runs.
        env.setdefault(THREADS_ENV, str(effective_server_threads()))
        env.setdefault("ATTNSCOPE_CACHE_DIR", str(ROOT / ".cache" / "attnscope"))
        done = subprocess.run(
            [sys.executable, "-c", _SNIPPET, mode, str(n), str(workers), f"{folder}/run"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{mode} {n}: {done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench corpus")
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args(argv)
    small, large = args.texts, args.large
    threads = effective_server_threads()
    print(
        f"AttnScope corpus mode on MiniLM ({os.cpu_count()} CPUs, {threads} torch "
        f"thread(s) in each measured process, as the CLI), fresh process per line, load "
        f"average {os.getloadavg()[0]:.1f} at the start\n"
    )
    bare = measure("bare", small)
    local = measure("local", small)
    big = measure("local", large)
    results: dict = {"bare": bare, "local": local, "large": big}
    print(f"{'what':46} {'texts':>6} {'seconds':>8} {'CPU s':>7} {'texts/s':>8} {'RSS MB':>7}")
    lines = [("bare batched forward pass", bare), ("run_corpus, local engine", local)]
    lines.append(("run_corpus, local engine (large)", big))
    if not args.no_ray:
        for workers in (1, 2):
            results[f"ray{workers}"] = measure("ray", small, workers)
            lines.append(
                (f"run_corpus, Ray engine, {workers} local worker(s)", results[f"ray{workers}"])
            )
    for name, row in lines:
        rate, rss = row["texts"] / row["seconds"], row["peak_rss_mb"]
        cpu = row["cpu_seconds"]
        print(
            f"{name:46} {row['texts']:6d} {row['seconds']:8.1f} {cpu:7.1f} {rate:8.1f} {rss:7.0f}"
        )
    ratio = bare["seconds"] / local["seconds"]
    cpu_ratio = bare["cpu_seconds"] / local["cpu_seconds"]
    growth = big["peak_rss_mb"] / local["peak_rss_mb"] - 1
    results["targets"] = {
        "throughput_ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "rss_growth": growth,
        "large_seconds": big["seconds"],
        "mean_tokens": local["mean_tokens"],
    }
    print(f"\nmean tokens per text: {local['mean_tokens']:.1f}")
    print(f"throughput vs bare forward: {ratio:.2f} (target >= 0.80: {_met(ratio >= 0.8)})")
    print(f"  the same from CPU seconds (less sensitive to a busy machine): {cpu_ratio:.2f}")
    print(f"peak RSS growth {small} -> {large} texts: {growth:+.1%} (< 10%: {_met(growth < 0.1)})")
    print(f"{large} texts: {big['seconds']:.0f} s (target < 180 s: {_met(big['seconds'] < 180)})")
    if not args.no_ray:
        ray2 = results["ray2"]
        print(f"Ray 2 workers / local time: {ray2['seconds'] / local['seconds']:.2f}")
        # Amdahl projection: the chunks' compute divides among workers; the rest is serial.
        serial = max(0.0, ray2["seconds"] - ray2["chunk_seconds"] / 2)
        compute = ray2["chunk_seconds"]
        projection = {n: small / (serial + compute / n) for n in (1, 2, 4, 8, 16)}
        results["ray_projection"] = projection
        print(
            "projected Ray throughput (texts/s) with one core per worker, from this run's "
            f"serial {serial:.1f} s and chunk compute {compute:.1f} s: "
            + ", ".join(f"{n}: {rate:.0f}" for n, rate in projection.items())
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "corpus.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
