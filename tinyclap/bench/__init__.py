"""Benchmarks, one module per question (``tinyclap bench <name>``)."""
