"""Integration tests: the real bundled models and the command line."""
