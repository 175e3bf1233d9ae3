"""Latent-space pruning: rank the D shared dimensions, keep K, shrink the projection.

:mod:`~tinyclap.pruning.ranking` orders the dimensions,
:mod:`~tinyclap.pruning.surgery` masks or shrinks a student,
:mod:`~tinyclap.pruning.report` writes the table and the curve.
"""
