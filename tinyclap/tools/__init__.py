"""Tools around the stages: the ``tinyclap`` command line, benchmarks, sweeps, reports, the demo."""
