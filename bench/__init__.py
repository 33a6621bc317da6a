"""Benchmarks: ``python -m bench.NAME``; each appends its results to ``bench/RESULTS.md``."""
