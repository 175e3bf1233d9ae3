"""Sizes shared by the session fixtures and the tests that run the stages on them."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FRONTEND = {"sample_rate": 16000, "f_max": 8000.0}
# command-line options of the --debug smoke runs: a tiny Synth set and a small teacher
TINY_DATA = ["--n_train", "2", "--n_valid", "1", "--n_test", "1"]
SMALL_TEACHER = ["--channels", "[8, 16, 32]", "--audio_dim", "32", "--embedding_dim", "32"]
