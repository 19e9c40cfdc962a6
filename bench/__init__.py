"""AttnScope benchmarks: run with ``make bench`` (never by the tests); each prints a table."""
