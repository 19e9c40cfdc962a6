"""``python -m bench [timings|views|rank|load|corpus] [options]``: every benchmark (default) or
one."""

import sys

from bench import corpus, load, rank_heads, timings, views

if __name__ == "__main__":
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("all", [])
    if command in ("timings", "all"):
        timings.main()
    if command in ("views", "all"):
        views.main(rest if command == "views" else [])
    if command in ("rank", "all"):
        rank_heads.main()
    if command in ("load", "all"):
        load.main(rest if command == "load" else [])
    if command in ("corpus", "all"):
        corpus.main(rest if command == "corpus" else [])
