"""Benchmarks: one module per measurement, each writing ``results/<name>/``."""
