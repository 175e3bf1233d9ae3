"""FSD50K: Freesound sound events, 200 classes (a distillation corpus)."""
