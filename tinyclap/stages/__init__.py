"""The training and evaluation stages: one SpeechBrain ``Brain`` per stage over one base class."""
