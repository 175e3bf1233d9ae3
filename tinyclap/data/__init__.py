"""Data: manifests and SpeechBrain pipelines, folds, audio checks, label sets, the Synth renderer."""
