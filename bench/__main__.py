"""``python -m bench [COMMAND] [options]``: every benchmark (default) or one of timings, views,
rank, app, load, corpus, corpus_views, report, attribution, long_context, lab."""

import sys

from bench import (
    app,
    attribution,
    corpus,
    corpus_views,
    lab,
    load,
    long_context,
    rank_heads,
    report,
    timings,
    views,
)

if __name__ == "__main__":
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("all", [])
    if command in ("timings", "all"):
        timings.main()
    if command in ("views", "all"):
        views.main(rest if command == "views" else [])
    if command in ("rank", "all"):
        rank_heads.main()
    if command in ("app", "all"):
        app.main(rest if command == "app" else [])
    if command in ("load", "all"):
        load.main(rest if command == "load" else [])
    if command in ("corpus", "all"):
        corpus.main(rest if command == "corpus" else [])
    if command in ("corpus_views", "all"):
        corpus_views.main(rest if command == "corpus_views" else [])
    if command in ("report", "all"):
        report.main(rest if command == "report" else [])
    if command in ("attribution", "all"):
        attribution.main(rest if command == "attribution" else [])
    if command in ("long_context", "all"):
        long_context.main(rest if command == "long_context" else [])
    if command in ("lab", "all"):
        lab.main(rest if command == "lab" else [])
