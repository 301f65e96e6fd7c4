"""Benchmarks (``python -m bench``, ``make bench``) and the chaos run (``python -m bench.chaos``, ``make chaos``)."""
