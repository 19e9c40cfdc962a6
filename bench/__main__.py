"""``python -m bench [timings|views] [options]``: every benchmark (default) or one of them."""

import sys

from bench import timings, views

if __name__ == "__main__":
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("all", [])
    if command in ("timings", "all"):
        timings.main()
    if command in ("views", "all"):
        views.main(rest)
