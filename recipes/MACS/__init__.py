"""MACS: multi-annotator captions of TAU Urban Acoustic Scenes 2019 (a distillation corpus)."""
