"""AudioCaps: audio captions of AudioSet clips (a distillation corpus)."""
