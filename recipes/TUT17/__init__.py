"""TUT Acoustic Scenes 2017 (DCASE 2017 task 1): 15 scenes, development and evaluation releases."""
