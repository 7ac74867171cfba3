"""Benchmarks: scenarios against hand-written baselines (see bench/README.md)."""
