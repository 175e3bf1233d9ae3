"""Procedural sound dataset with captions (the offline embedded default)."""
