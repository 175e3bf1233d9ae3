"""Projection-only finetuning: the backbone, its BatchNorm statistics included, stays frozen."""

import functools
from types import SimpleNamespace

import speechbrain as sb
import torch

from tinyclap.audio.features import LogMel
from tinyclap.stages.distill import ProjectionFinetuneBrain
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.training.losses import distillation_loss


def test_only_the_projection_changes():
    gen = torch.Generator().manual_seed(0)
    data = {f"c{i}": {"sig": 0.3 * torch.randn(16000, generator=gen),
                      "teacher_emb": torch.randn(8, generator=gen)} for i in range(8)}  # fmt: skip
    dataset = sb.dataio.dataset.DynamicItemDataset(data)
    dataset.set_output_keys(["id", "sig", "teacher_emb"])
    torch.manual_seed(0)
    student = PhiNetStudent(0.25, 0.75, 4, 2, n_frames=51, n_mels=64, head_channels=16,
                            embedding_dim=8)  # fmt: skip
    before = {k: v.clone() for k, v in student.state_dict().items()}
    brain = ProjectionFinetuneBrain(
        modules={"student": student, "frontend": LogMel(sample_rate=16000, f_max=8000.0)},
        opt_class=functools.partial(torch.optim.Adam, lr=0.01),
        hparams={
            "teacher_model": SimpleNamespace(window_samples=16000, pad_mode="zeros"),
            "loss": distillation_loss,
        },
        run_opts={"device": "cpu", "noprogressbar": True},
    )
    brain.fit(sb.utils.epoch_loop.EpochCounter(1), dataset, None,
              train_loader_kwargs={"batch_size": 4})  # fmt: skip
    after = student.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("projection.") for k in changed), sorted(changed)
    assert any("running_mean" in k for k in before if k.startswith("base."))  # BN stats exist
