"""How long integrated gradients take against one forward-and-backward pass: SmolLM2 at 128
tokens, 32 steps, batched. Run with ``python -m bench.attribution [--steps N] [--batch B]``."""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core import analyze, load_model  # noqa: E402  (after HF_HUB_OFFLINE is set)
from core.methods.attribution import attribute  # noqa: E402
from core.methods.attribution_target import resolve_target  # noqa: E402

TEXT = (
    "Attention weights show where each token looks, but a researcher who reads a head view wants "
    "to know whether the tokens it highlights are the ones that actually drive the output. "
) * 8


def _timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    out = run()
    return time.perf_counter() - started, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.attribution")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    loaded = load_model("smollm2")
    analysis = analyze(loaded, TEXT, max_tokens=args.tokens)
    target = resolve_target(loaded, analysis)

    def one_pass():  # saliency: one forward and one backward pass
        return attribute(loaded, analysis, target, methods=("saliency",))

    def integrated():
        return attribute(
            loaded,
            analysis,
            target,
            methods=("integrated_gradients",),
            steps=args.steps,
            batch_size=args.batch,
        )

    one_pass()  # warm-up
    single, _ = min((_timed(one_pass) for _ in range(3)), key=lambda pair: pair[0])
    seconds, result = _timed(integrated)
    delta = result.captum.ig_delta
    gap = result.f_input - result.f_baseline
    head = f"{'model':<9} {'tokens':>6} {'steps':>5} {'batch':>5} {'fwd+bwd s':>9} {'IG s':>7}"
    print(f"{head} {'ratio':>6}  delta")
    print(
        f"{'smollm2':<9} {analysis.seq_len:>6} {args.steps:>5} {args.batch:>5} {single:>9.3f} "
        f"{seconds:>7.2f} {seconds / single:>6.1f}  {delta:.2e} (f(x) - f(x') = {gap:.3f})"
    )


if __name__ == "__main__":
    main()
