"""Command line: ``python -m core analyze "TEXT" --model minilm [--pair B] [--top-k K] [--json]``,
``python -m core corpus run|list|show`` (:mod:`core.corpus.cli`), ``python -m core serve``
(the HTTP API, :mod:`core.serve.cli`) and ``python -m core lab train|tokenizer|list``
(:mod:`core.lab.cli`).

For scripts, notebooks and headless checks. Tables go to stdout, progress to stderr; any failure
prints one line and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from core.corpus import cli as corpus_cli
from core.engine.analysis import Analysis
from core.engine.model_kinds import require_kind
from core.engine.models import BUILTIN_MODELS, DEFAULT_MODEL, load_model
from core.engine.run import analyze
from core.engine.tokenize import check_text
from core.lab import cli as lab_cli
from core.policy.errors import AttnScopeError
from core.serve import cli as serve_cli

__all__ = ["format_report", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("analyze", help="analyse a text and print its attention statistics")
    run.add_argument("text", help="the text to analyse ('-' reads standard input)")
    run.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"built-in name ({', '.join(BUILTIN_MODELS)}), Hugging Face id or model folder",
    )
    run.add_argument("--pair", default=None, help="a second sentence (encoder models only)")
    run.add_argument("--top-k", type=int, default=5, help="rows per layer, most-attended table")
    run.add_argument("--max-tokens", type=int, default=None, help="truncate the input to this many")
    run.add_argument("--device", default=None, help="cuda, mps, cpu or auto (default: best)")
    run.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    commands.add_parser("models", help="list the built-in models")
    corpus_cli.add_parser(commands)  # python -m core corpus run|list|show
    serve_cli.add_parser(commands)  # python -m core serve [--host] [--port] [--model]
    lab_cli.add_parser(commands)  # python -m core lab train|tokenizer|list
    return parser


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in header]] + [
        [f"{c:.4f}" if isinstance(c, float) else str(c) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_report(result: Analysis, top_k: int = 5) -> str:
    """The plain-text report the command line prints."""
    parts = [
        f"model: {result.model_name} ({result.kind}), {result.n_layers} layers x "
        f"{result.n_heads} heads, {result.seq_len} tokens"
        + (f" (truncated from {result.n_input_tokens})" if result.truncated else ""),
        "tokens: " + " | ".join(f"{i}:{t}" for i, t in enumerate(result.tokens)),
        "",
        "head entropy (nats), rows = layers, columns = heads",
        _table(
            ["layer", *[f"h{h}" for h in range(result.n_heads)]],
            [[layer, *row] for layer, row in enumerate(result.head_entropy.tolist())],
        ),
        "",
        "normalised head entropy (0 = one-hot, 1 = uniform over visible keys)",
        _table(
            ["layer", *[f"h{h}" for h in range(result.n_heads)]],
            [[layer, *row] for layer, row in enumerate(result.normalized_head_entropy.tolist())],
        ),
        "",
        "layer entropy (of the head-averaged attention) and the mean of its head entropies",
        _table(
            ["layer", "layer_entropy", "mean_head_entropy"],
            [
                [layer, a, b]
                for layer, (a, b) in enumerate(
                    zip(result.layer_entropy.tolist(), result.mean_head_entropy.tolist())
                )
            ],
        ),
        "",
        f"most attended tokens (top {top_k} per layer, share of the layer's attention)",
        _table(
            ["layer", "rank", "position", "token", "share"],
            [[r.layer, r.rank, r.position, r.token, r.share] for r in result.most_attended(top_k)],
        ),
    ]
    if result.causal:  # where the decoder-aware definitions differ (see the README, Statistics)
        parts += [
            "",
            "normalised head entropy over the queries with a choice (i >= 1: query 0 sees only "
            "itself)",
            _table(
                ["layer", *[f"h{h}" for h in range(result.n_heads)]],
                [
                    [layer, *row]
                    for layer, row in enumerate(result.normalized_head_entropy_choice.tolist())
                ],
            ),
            "",
            f"most attended, per query that can see the key (position 0, the sink, as rank 0; "
            f"top {top_k} others)",
            _table(
                ["layer", "rank", "position", "token", "share", "seen_by"],
                [
                    [r.layer, r.rank, r.position, r.token, r.share, r.seen_by]
                    for r in result.most_attended(top_k, ranking="visible")
                ],
            ),
        ]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Our own progress lines replace transformers' progress bars on stderr.
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    if args.command == "corpus":
        return corpus_cli.main(args)
    if args.command == "serve":
        return serve_cli.main(args)
    if args.command == "lab":
        return lab_cli.main(args)
    if args.command == "models":
        for name, spec in BUILTIN_MODELS.items():
            print(f"{name:10} {spec.title:24} {spec.kind:8} {spec.description}")
        return 0
    if args.top_k < 1:
        print("error: --top-k must be at least 1", file=sys.stderr)
        return 2
    text = sys.stdin.read() if args.text == "-" else args.text
    try:
        check_text(text)  # before the model loads: an empty text should fail in milliseconds
        loaded = load_model(
            args.model, device=args.device, progress=lambda m: print(m, file=sys.stderr)
        )
        require_kind(loaded, "text")  # an image or encoder-decoder model: a message
        result = analyze(loaded, text, args.pair, max_tokens=args.max_tokens)
    except AttnScopeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict(args.top_k), ensure_ascii=False))
    else:
        print(format_report(result, args.top_k))
    return 0
