"""``python -m core corpus run|list|show``: corpus mode from the command line.

``run`` prints progress to stderr and the run folder to stdout; Ctrl-C stops it with every
finished chunk kept (the same command resumes it). Failures print one line, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from core.policy.errors import AttnScopeError

__all__ = ["add_parser", "main"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``corpus`` and its three subcommands to the ``python -m core`` parser."""
    from core.engine.models import DEFAULT_MODEL

    corpus = commands.add_parser("corpus", help="run a model over a corpus; list and show runs")
    sub = corpus.add_subparsers(dest="corpus_command", required=True)
    run = sub.add_parser("run", help="run a model over a corpus and store every statistic")
    run.add_argument("file", help="CSV, TSV, JSONL or text file; 'sample' (bundled); hf:NAME")
    run.add_argument("--model", default=DEFAULT_MODEL, help="built-in name, Hub id or folder")
    run.add_argument("--text-column", default=None, help="the column or field with the text")
    run.add_argument(
        "--label-column", action="append", default=[], help="a column kept with each text"
    )
    run.add_argument("--split", default="train", help="the split of a Hugging Face dataset")
    run.add_argument("--engine", choices=("local", "ray"), default="local")
    run.add_argument("--ray-address", default=None, help="join this Ray cluster (else local)")
    run.add_argument("--workers", type=int, default=2, help="Ray actors (one model each)")
    run.add_argument("--out", default=None, help="the run folder (default: under corpus list)")
    run.add_argument("--batch-size", type=int, default=32)
    run.add_argument("--chunk-size", type=int, default=256, help="texts per stored chunk")
    run.add_argument("--max-tokens", type=int, default=None, help="truncate longer texts")
    run.add_argument("--padding", choices=("right", "left"), default="right")
    run.add_argument("--top-k", type=int, default=3, help="most-attended positions per head")
    run.add_argument("--top-n", type=int, default=20, help="strongest instances kept per head")
    run.add_argument("--limit", type=int, default=None, help="only the first N texts")
    run.add_argument("--device", default=None, help="cuda, mps, cpu or auto")
    run.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads on the CPU (default: one core fewer than usable, as the app; "
        "$ATTNSCOPE_THREADS overrides)",
    )
    listing = sub.add_parser("list", help="list the runs in a folder")
    listing.add_argument("--root", default=None, help="default: $ATTNSCOPE_RUNS_DIR or cache")
    show = sub.add_parser("show", help="summarise a run folder (or run SQL on it)")
    show.add_argument("folder")
    show.add_argument("--sql", default=None, help="a DuckDB query over texts, layers, heads, ...")


def _table(frame) -> str:
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def _bar(done: int, total: int, elapsed: float, eta: float | None) -> str:
    filled = int(30 * done / total) if total else 30
    left = f", ETA {eta:.0f} s" if eta is not None else ""
    return f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} texts, {elapsed:.1f} s{left}"


def _run(args: argparse.Namespace) -> int:
    import torch

    from core.corpus.batch import BatchOptions
    from core.corpus.run import default_out, run_corpus
    from core.corpus.sources import load_source
    from core.engine.devices import preferred_threads, server_threads, usable_cores
    from core.policy.settings import load_settings

    settings = load_settings()
    corpus = load_source(
        args.file,
        text_column=args.text_column,
        label_columns=args.label_column,
        split=args.split,
        max_text_chars=settings.max_text_chars,
    )
    if args.limit is not None:
        corpus = corpus.head(max(1, args.limit))
    for notice in corpus.notices():
        print(f"note: {notice}", file=sys.stderr)
    options = BatchOptions(
        batch_size=max(1, args.batch_size),
        chunk_size=max(1, args.chunk_size),
        padding_side=args.padding,
        max_tokens=args.max_tokens,
        top_k=max(1, args.top_k),
        top_n=max(1, args.top_n),
    )
    out = args.out or str(default_out(corpus, args.model.strip().lower()))
    tty = sys.stderr.isatty()

    def progress(p) -> None:
        line = _bar(p.done, p.total, p.elapsed, p.eta)
        print(("\r" if tty else "") + line, end="" if tty else "\n", file=sys.stderr, flush=True)

    # One core fewer than usable, as the app's server: an OpenMP region waits for its slowest
    # thread, so with a thread on every core a run crawls whenever anything else wants a core
    # (python -m bench corpus, 1 000 texts on MiniLM, 2 cores, another job on one of them: the
    # bare forward pass had not ended after 6 minutes on 2 threads; it takes 9.1 s on 1).
    threads = args.threads if args.threads is not None else server_threads(usable_cores())
    started = time.perf_counter()
    try:
        with preferred_threads(max(1, threads)):
            run = run_corpus(
                corpus,
                args.model,
                out=out,
                options=options,
                engine=args.engine,
                ray_address=args.ray_address,
                ray_workers=max(1, args.workers),
                device=args.device,
                settings=settings,
                progress=progress,
            )
    except KeyboardInterrupt:
        print(
            f"\nstopped: finished chunks are kept in {out}; run the same command to resume",
            file=sys.stderr,
        )
        return 130
    if tty:
        print(file=sys.stderr)
    seconds = time.perf_counter() - started
    print(
        f"{run.n_done} texts in {seconds:.1f} s ({run.n_done / seconds:.1f} texts/s, "
        f"{torch.get_num_threads()} torch thread(s))",
        file=sys.stderr,
    )
    print(run.folder)
    return 0


def _show(args: argparse.Namespace) -> int:
    from core.corpus.store import open_run

    run = open_run(args.folder)
    if args.sql:
        print(_table(run.query(args.sql)))
        return 0
    manifest = run.manifest
    corpus, model = manifest["corpus"], manifest["model"]
    print(f"run:     {run.folder} ({run.status}, {run.n_done} of {run.n_texts} texts)")
    print(f"corpus:  {corpus['source']} ({corpus['format']}, sha256 {corpus['sha256'][:12]})")
    print(
        f"model:   {model['name']} ({model['kind']}, {model['n_layers']} layers x "
        f"{model['n_heads']} heads, {model.get('revision') or 'no revision'})"
    )
    print(f"engine:  {manifest.get('engine')}, options {manifest['options']}")
    print()
    print(_table(run.head_summary()))
    return 0


def _list(args: argparse.Namespace) -> int:
    from core.corpus.run import runs_root
    from core.corpus.store import list_runs

    root = args.root or runs_root()
    rows = list_runs(root)
    if not rows:
        print(f"no runs in {root}", file=sys.stderr)
        return 0
    import pandas as pd

    print(_table(pd.DataFrame(rows)))
    return 0


def main(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Run the ``corpus`` subcommand in ``args``."""
    handlers = {"run": _run, "show": _show, "list": _list}
    try:
        return handlers[args.corpus_command](args)
    except AttnScopeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
