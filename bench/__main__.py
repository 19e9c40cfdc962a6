"""``python -m bench``: every benchmark, one table each."""

from bench import timings

if __name__ == "__main__":
    timings.main()
