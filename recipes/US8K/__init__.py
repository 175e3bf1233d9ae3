"""UrbanSound8K: 8732 urban sound clips, 10 classes, 10 folds."""
