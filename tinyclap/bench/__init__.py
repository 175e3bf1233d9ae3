"""Benchmarks: one module per measurement (``python -m tinyclap.bench.<name>``)."""
