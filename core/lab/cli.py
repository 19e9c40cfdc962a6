"""``python -m core lab train|tokenizer|list``: the lab from the command line.

``train`` trains a tokenizer (text task) or takes the synthetic one (repeat task), then a small
GPT-2, printing progress with an ETA and each checkpoint's best heads to stderr and the run
folder to stdout; Ctrl-C stops it with a checkpoint of the last step kept. ``tokenizer`` trains
a tokenizer alone and saves it in a folder. Failures print one line, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time

from core.policy.errors import AttnScopeError

__all__ = ["add_parser", "main"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``lab`` and its subcommands to the ``python -m core`` parser."""
    from core.lab.train import INDUCTION_RECIPE

    lab = commands.add_parser("lab", help="train a tokenizer and a small GPT-2; list runs")
    sub = lab.add_subparsers(dest="lab_command", required=True)
    train = sub.add_parser("train", help="train a model and save checkpoints in a run folder")
    train.add_argument("--task", choices=("repeat", "text"), default="repeat")
    _texts_arguments(train)
    # defaults: the induction recipe of the tests and the bench
    shape, task, config = INDUCTION_RECIPE
    train.add_argument("--layers", type=int, default=shape.n_layers)
    train.add_argument("--heads", type=int, default=shape.n_heads)
    train.add_argument("--d-model", type=int, default=shape.d_model)
    train.add_argument("--context", type=int, default=shape.context, help="the longest input")
    train.add_argument("--mlp", action="store_true", help="keep the MLPs (default: attention only)")
    train.add_argument("--family", choices=("llama", "gpt2"), default=shape.family)
    train.add_argument("--init", type=float, default=shape.init, help="initial weights' std")
    train.add_argument("--half", type=int, default=task.half, help="repeat task: (longest) half")
    train.add_argument(
        "--min-half", type=int, default=task.min_half, help="repeat task: shortest half"
    )
    train.add_argument(
        "--max-offset", type=int, default=task.max_offset, help="repeat task: tokens before"
    )
    train.add_argument("--no-bos", action="store_true", help="repeat task: no <s> first")
    train.add_argument("--steps", type=int, default=config.steps)
    train.add_argument("--batch-size", type=int, default=config.batch_size)
    train.add_argument("--lr", type=float, default=config.lr)
    train.add_argument("--warmup", type=int, default=config.warmup)
    train.add_argument("--checkpoint-every", type=int, default=config.checkpoint_every)
    train.add_argument("--seed", type=int, default=config.seed)
    train.add_argument("--root", default=None, help="default: $ATTNSCOPE_LAB_DIR or cache")
    train.add_argument("--name", default=None, help="the run folder's name (default: the time)")
    train.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    alone = sub.add_parser("tokenizer", help="train a tokenizer and save it in a folder")
    _texts_arguments(alone)
    alone.add_argument("out", help="the folder to write (tokenizer.json and its config)")
    listing = sub.add_parser("list", help="list the runs in a folder")
    listing.add_argument("--root", default=None, help="default: $ATTNSCOPE_LAB_DIR or cache")


def _texts_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--texts", default="sample", help="'sample' (bundled) or a text file")
    parser.add_argument("--tokenizer", choices=("unigram", "bpe"), default="unigram")
    parser.add_argument("--vocab", type=int, default=None, help="vocabulary size")


def _texts(name: str) -> tuple[str, ...]:
    from core.corpus.sources import read_corpus, sample_corpus

    return (sample_corpus() if name == "sample" else read_corpus(name)).texts


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def main(args: argparse.Namespace) -> int:
    try:
        if args.lab_command == "list":
            return _list(args)
        if args.lab_command == "tokenizer":
            return _vocabulary(args)
        return _train(args)
    except AttnScopeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _list(args: argparse.Namespace) -> int:
    from core.lab.runs import lab_root, list_runs

    runs = list_runs(args.root)
    if not runs:
        print(f"no runs in {args.root or lab_root()}", file=sys.stderr)
    for run in runs:
        best = run.checkpoints[-1].best() if run.checkpoints else (float("nan"), 0, 0)
        steps = run.history[-1].step if run.history else 0
        print(f"{run.folder}  {run.status:8} {steps:6d} steps  best induction {best[0]:.3f}")
    return 0


def _vocabulary(args: argparse.Namespace) -> int:
    from core.lab.tokenizer import train_vocabulary

    started = time.perf_counter()
    texts = _texts(args.texts)
    trained = train_vocabulary(texts, kind=args.tokenizer, vocab_size=args.vocab or 1000)
    trained.save(args.out)
    seconds = time.perf_counter() - started
    print(f"{trained.kind}, {trained.vocab_size} pieces, {seconds:.1f} s", file=sys.stderr)
    print(args.out)
    return 0


def _train(args: argparse.Namespace) -> int:
    import contextlib

    import torch

    from core.lab.model import LabShape
    from core.lab.runs import CheckpointRecord, check_limits, new_run_folder
    from core.lab.tasks import RepeatTask, text_task
    from core.lab.tokenizer import synthetic_vocabulary, train_vocabulary
    from core.lab.train import INDUCTION_RECIPE, TrainConfig, train
    from core.policy.settings import load_settings

    if args.task == "repeat":
        vocab = args.vocab or INDUCTION_RECIPE[0].vocab_size
        vocabulary = synthetic_vocabulary(vocab, context=args.context, bos=not args.no_bos)
        task = RepeatTask(
            half=args.half,
            bos=not args.no_bos,
            min_half=args.min_half,
            max_offset=max(0, args.max_offset),
        )
    else:
        texts = _texts(args.texts)
        vocabulary = train_vocabulary(
            texts, kind=args.tokenizer, vocab_size=args.vocab or 1000, context=args.context
        )
        task = text_task(vocabulary, texts, window=args.context, source=args.texts)
    shape = LabShape(
        n_layers=args.layers,
        n_heads=args.heads,
        d_model=args.d_model,
        context=args.context,
        attention_only=not args.mlp,
        vocab_size=vocabulary.vocab_size,
        family=args.family,
        init=args.init,
    )
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup=args.warmup,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    check_limits(load_settings(), shape, config.steps)
    every = max(1, config.steps // 20)
    folder = new_run_folder(args.root, args.name)
    if args.threads:
        torch.set_num_threads(max(1, args.threads))
    with contextlib.closing(train(shape, vocabulary, task, config, folder)) as records:
        try:
            for record in records:
                if isinstance(record, CheckpointRecord):
                    _print_checkpoint(record)
                    continue
                if record.step % every == 0 or record.step == config.steps:
                    eta = record.seconds / record.step * (config.steps - record.step)
                    repeated = (
                        f", repeated half {record.repeated_loss:.3f}"
                        if record.repeated_loss is not None
                        else ""
                    )
                    print(
                        f"step {record.step}/{config.steps}  loss {record.loss:.3f}{repeated}  "
                        f"{_duration(record.seconds)}, ETA {_duration(eta)}",
                        file=sys.stderr,
                        flush=True,
                    )
        except KeyboardInterrupt:
            print("\nstopped: the last step is kept as a checkpoint", file=sys.stderr)
            records.close()
            print(folder)
            return 130
    print(folder)
    return 0


def _print_checkpoint(record) -> None:
    parts = []
    for detector in ("induction", "previous_token", "duplicate_token"):
        score, layer, head = record.best(detector)
        parts.append(f"{detector} {score:.3f} (L{layer}H{head})")
    print(f"checkpoint step {record.step}: best " + ", ".join(parts), file=sys.stderr, flush=True)
