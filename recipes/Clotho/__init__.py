"""Clotho v2: audio captioning dataset from Freesound (a distillation corpus)."""
