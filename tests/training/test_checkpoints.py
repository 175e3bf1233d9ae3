"""Finished units (pruning points, transfer folds) are reused only with the same settings."""

import torch

from tinyclap.training.checkpoints import config_hash, read_finished, write_finished


def test_config_hash_covers_settings_not_outputs_or_grids():
    hparams = {"lr": 0.1, "ks": [8, 16], "output_folder": "a", "model": torch.nn.Linear(1, 1),
               "__set_seed": None, "opts": {"batch_size": 8}}  # fmt: skip
    base = config_hash(hparams, exclude=("ks",), k=8)
    assert config_hash({**hparams, "output_folder": "b", "ks": [8]}, exclude=("ks",), k=8) == base
    assert config_hash({**hparams, "lr": 0.2}, exclude=("ks",), k=8) != base
    assert config_hash({**hparams, "opts": {"batch_size": 16}}, exclude=("ks",), k=8) != base
    assert config_hash(hparams, exclude=("ks",), k=16) != base  # the unit itself


def test_records_are_reused_only_for_the_same_config(tmp_path):
    path = tmp_path / "row.json"
    assert read_finished(path, "abc") is None
    written = write_finished(path, {"acc": 0.9}, "abc")
    assert written == {"acc": 0.9, "config_hash": "abc"}
    assert read_finished(path, "abc") == written
    assert read_finished(path, "other") is None  # stale: run again
    assert not (tmp_path / "row.json.tmp").exists()
