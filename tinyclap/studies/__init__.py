"""Experiment runners and reports: the demo, sweeps and their Pareto report, the studies.

Each writes the tables and plots kept under ``results/``, with the command that made them.
"""
