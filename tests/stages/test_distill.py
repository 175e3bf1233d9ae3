"""A batch with a non-finite loss is skipped and counted; weights and checkpoints stay finite."""

import functools
from types import SimpleNamespace

import pytest
import speechbrain as sb
import torch

from tinyclap.audio.features import LogMel
from tinyclap.stages.distill import DistillBrain
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.training.checkpoints import AtomicCheckpointer
from tinyclap.training.losses import distillation_loss

FRONTEND = {"sample_rate": 16000, "f_max": 8000.0}
WINDOW = 16000


def _dataset(nan_items):
    gen = torch.Generator().manual_seed(0)
    data = {}
    for i in range(6):
        target = torch.randn(8, generator=gen)
        if i in nan_items:
            target[0] = float("nan")  # e.g. a teacher embedding gone bad
        data[f"c{i}"] = {"sig": 0.1 * torch.randn(WINDOW, generator=gen), "teacher_emb": target}
    ds = sb.dataio.dataset.DynamicItemDataset(data)
    ds.set_output_keys(["id", "sig", "teacher_emb"])
    return ds


def _brain(tmp_path, patience=3):
    torch.manual_seed(0)
    student = PhiNetStudent(0.25, 0.75, 4, 2, n_frames=51, n_mels=64, head_channels=16,
                            embedding_dim=8)  # fmt: skip
    checkpointer = AtomicCheckpointer(tmp_path / "ckpt", recoverables={"student": student})
    brain = DistillBrain(
        modules={"student": student, "frontend": LogMel(**FRONTEND)},
        opt_class=functools.partial(torch.optim.Adam, lr=0.01),
        hparams={
            "teacher_model": SimpleNamespace(window_samples=WINDOW, pad_mode="zeros"),
            "loss": distillation_loss,
        },
        run_opts={"device": "cpu", "noprogressbar": True, "nonfinite_patience": patience},
        checkpointer=checkpointer,
    )
    return brain, student, checkpointer


def test_nonfinite_batch_is_skipped_and_counted(tmp_path):
    brain, student, checkpointer = _brain(tmp_path)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    brain.fit(sb.utils.epoch_loop.EpochCounter(1), _dataset({2}), None,
              train_loader_kwargs={"batch_size": 1})  # fmt: skip
    assert brain.skipped_batches == 1  # one of six steps
    after = student.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the other 5 trained
    assert torch.isfinite(torch.tensor(brain.train_stats["loss"]))
    checkpointer.save_checkpoint()
    saved = torch.load(next((tmp_path / "ckpt").glob("CKPT*")) / "student.ckpt")
    assert all(torch.isfinite(v).all() for v in saved.values() if v.is_floating_point())


def test_patience_exhausted_stops_the_run(tmp_path):
    brain, student, _ = _brain(tmp_path, patience=1)
    with pytest.raises(ValueError, match="patience is exhausted"):
        brain.fit(sb.utils.epoch_loop.EpochCounter(1), _dataset({1, 2, 3}), None,
                  train_loader_kwargs={"batch_size": 1})  # fmt: skip
    params = [v for v in student.state_dict().values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in params)
