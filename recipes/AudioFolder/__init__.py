"""AudioFolder: any folder tree of audio files (your own distillation audio)."""
