"""The lab's induction run, measured: a two-layer attention-only Llama (rotary positions) trained
on repeated random sequences with the recipe the integration test uses
(:data:`core.lab.train.INDUCTION_RECIPE`), printing the loss curve (overall and on the repeated
half) and the best head's induction score at every checkpoint with the seconds so far, and
writing the Lab page's figure (loss beside each detector's best head) as HTML and PNG (when a
Chromium renders it) with the numbers as JSON to ``bench/results/``.

Run with ``python -m bench lab [--steps N] [--threads T] [--every K]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from core.lab.runs import CheckpointRecord, StepRecord, new_run_folder  # noqa: E402
from core.lab.tokenizer import synthetic_vocabulary  # noqa: E402
from core.lab.train import INDUCTION_RECIPE, train  # noqa: E402
from viz.lab import training_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench lab")
    parser.add_argument("--steps", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--every", type=int, default=None, help="checkpoint every K steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    shape, task, config = INDUCTION_RECIPE
    config = replace(
        config,
        steps=args.steps or config.steps,
        checkpoint_every=args.every or config.checkpoint_every,
    )
    torch.set_num_threads(max(1, args.threads))
    steps: list[StepRecord] = []
    checkpoints: list[CheckpointRecord] = []
    started = time.perf_counter()
    print(f"shape {shape}\ntask {task}\nconfig {config}\n{torch.get_num_threads()} thread(s)")
    print(f"{'step':>6} {'loss':>7} {'first':>7} {'repeated':>8} {'best induction':>15} {'s':>7}")
    with tempfile.TemporaryDirectory() as root:
        folder = new_run_folder(root, "bench")
        vocabulary = synthetic_vocabulary(shape.vocab_size, context=shape.context, bos=task.bos)
        with contextlib.closing(train(shape, vocabulary, task, config, folder)) as records:
            for record in records:
                if isinstance(record, StepRecord):
                    steps.append(record)
                    continue
                checkpoints.append(record)
                last = steps[-1] if steps else None
                score, layer, head = record.best("induction")
                print(
                    f"{record.step:>6} "
                    + (
                        f"{last.loss:>7.3f} {last.first_loss:>7.3f} {last.repeated_loss:>8.3f} "
                        if last
                        else f"{'':>7} {'':>7} {'':>8} "
                    )
                    + f"{score:>8.3f} L{layer}H{head} {time.perf_counter() - started:>7.1f}",
                    flush=True,
                )
    seconds = time.perf_counter() - started
    training = steps[-1].seconds if steps else 0.0
    print(f"{len(steps)} steps in {seconds:.1f} s ({training:.1f} s of training steps)")
    results = {
        "shape": shape.to_dict(),
        "task": task.to_dict(),
        "config": config.to_dict(),
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "training_seconds": training,
        "curve": [
            {"step": r.step, "loss": r.loss, "first": r.first_loss, "repeated": r.repeated_loss}
            for r in steps
        ],
        "checkpoints": [
            {"step": c.step, "best_induction": c.best("induction"), "loss": c.loss}
            for c in checkpoints
        ],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lab.json").write_text(json.dumps(results, indent=1))
    fig = training_figure(steps, checkpoints, lang="en")  # the Lab page's own figure
    fig.write_html(RESULTS / "lab.html", include_plotlyjs=True)
    written = [RESULTS / "lab.json", RESULTS / "lab.html"]
    try:
        from viz.export import figure_bytes

        (RESULTS / "lab.png").write_bytes(figure_bytes(fig, "png"))
        written.append(RESULTS / "lab.png")
    except Exception as error:  # no Chromium to render with: the HTML is still there
        print(f"no PNG: {error}")
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written))
    return results


if __name__ == "__main__":
    main()
