"""ESC-50: environmental sound classification, 2000 clips, 50 classes, 5 folds."""
