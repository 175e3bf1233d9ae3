"""What the stages share: data loaders, losses, caches, checkpoints, random state, checks.

One module a concern, used by the ``Brain`` of each stage in :mod:`tinyclap.stages`.
"""
