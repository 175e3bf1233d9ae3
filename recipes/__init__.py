"""SpeechBrain-style recipes of tinyclap, one folder per dataset."""
