"""Dataset preparations, one module per benchmark or corpus: SpeechBrain JSON manifests."""
