"""A run killed and resumed from its checkpoints ends with the same weights as an uninterrupted one.

The training below draws from every global generator: torch (random crops,
dropout, the data loader's base seed), Python's ``random`` (a choice of
crop, as ``TeacherEmbeddingCache.random_crop``) and numpy (noise), with a
shuffled loader. The resumed run is a fresh set of objects that consumed
random numbers differently before recovering.
"""

import functools
import random

import numpy as np
import pytest
import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.seed import seed_everything

from tinyclap.audio.windows import random_crop
from tinyclap.training.checkpoints import AtomicCheckpointer
from tinyclap.training.random_state import RandomState, StepCounters

CLIP, WINDOW, ITEMS = 24, 8, 16


class Killed(Exception):
    """Stands for the process being killed."""


@pytest.fixture(autouse=True)
def _keep_global_state(monkeypatch):
    """Leave the global generators (and SB_GLOBAL_SEED) as they were for other tests."""
    monkeypatch.setenv("SB_GLOBAL_SEED", "0")
    saved = RandomState().state_dict()
    yield
    RandomState().load_state_dict(saved)


def _dataset():
    gen = torch.Generator().manual_seed(0)
    data = {
        f"c{i}": {
            "clip": torch.randn(2, CLIP, generator=gen),
            "target": torch.randn(1, generator=gen),
        }
        for i in range(ITEMS)
    }
    ds = sb.dataio.dataset.DynamicItemDataset(data)

    @sb.utils.data_pipeline.takes("clip")
    @sb.utils.data_pipeline.provides("sig")
    def crop(clip):
        row = clip[random.randrange(len(clip))]  # Python's random, as the cache's crops
        noise = torch.from_numpy(np.random.standard_normal(WINDOW).astype(np.float32))
        return random_crop(row, WINDOW) + 0.01 * noise  # torch.randint crop

    ds.add_dynamic_item(crop)
    ds.set_output_keys(["id", "sig", "target"])
    return ds


class TinyBrain(sb.Brain):
    """A linear model with dropout, checkpointed at the end of each validation."""

    kill_at_step = None  # global optimiser step at which the "process is killed"

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        return self.modules.model(batch.sig.data).squeeze(-1)

    def compute_objectives(self, predictions, batch, stage):
        return torch.nn.functional.mse_loss(predictions, batch.target.data.squeeze(-1))

    def on_fit_batch_start(self, batch, should_step):
        if self.kill_at_step is not None and self.optimizer_step >= self.kill_at_step:
            raise Killed

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.VALID:
            self.checkpointer.save_and_keep_only(
                meta={"loss": stage_loss}, min_keys=["loss"], num_to_keep=1
            )


def _train(folder, epochs, with_rng=True, kill_at_step=None, perturb=False, intra_steps=0):
    """Build everything from scratch (as a new process would) and fit; return the weights."""
    seed_everything(1234, verbose=False)
    if perturb:  # another model / seeding before recovery: must not matter
        torch.rand(7)
        np.random.rand(3)
        random.random()
        torch.nn.Linear(5, 5)
    model = torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(WINDOW, 1))
    counter = sb.utils.epoch_loop.EpochCounter(epochs)
    loader_gen = torch.Generator().manual_seed(7)
    recoverables = {"model": model, "counter": counter}
    if with_rng:
        recoverables["rng"] = RandomState(generators={"loader": loader_gen})
    brain = TinyBrain(
        modules={"model": model},
        opt_class=functools.partial(torch.optim.Adam, lr=0.05),
        run_opts={"device": "cpu", "noprogressbar": True, "ckpt_interval_steps": intra_steps},
        checkpointer=AtomicCheckpointer(folder, recoverables=recoverables),
    )
    brain.kill_at_step = kill_at_step
    loader_opts = {"batch_size": 4, "shuffle": True, "generator": loader_gen}
    try:
        brain.fit(counter, _dataset(), _dataset(), train_loader_kwargs=loader_opts,
                  valid_loader_kwargs={"batch_size": 4})  # fmt: skip
    except Killed:
        return None
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


STEPS_PER_EPOCH = ITEMS // 4


def test_resume_after_kill_is_bit_identical(tmp_path):
    reference = _train(tmp_path / "uninterrupted", epochs=4)
    # killed during epoch 3, after the end-of-epoch-2 checkpoint
    assert _train(tmp_path / "run", epochs=4, kill_at_step=2 * STEPS_PER_EPOCH + 1) is None
    resumed = _train(tmp_path / "run", epochs=4, perturb=True)
    assert _same(reference, resumed)


def test_resume_from_an_intra_epoch_checkpoint_is_bit_identical(tmp_path):
    # a checkpoint after every step; killed in the middle of epoch 3
    reference = _train(tmp_path / "uninterrupted", epochs=4, intra_steps=1)
    kill = 2 * STEPS_PER_EPOCH + 2
    assert _train(tmp_path / "run", epochs=4, intra_steps=1, kill_at_step=kill) is None
    resumed = _train(tmp_path / "run", epochs=4, intra_steps=1, perturb=True)
    assert _same(reference, resumed)


def test_without_the_random_state_the_resumed_run_diverges(tmp_path):
    """The control: the test above detects a missing RandomState."""
    reference = _train(tmp_path / "uninterrupted", epochs=4, with_rng=False)
    kill = 2 * STEPS_PER_EPOCH + 1
    assert _train(tmp_path / "run", epochs=4, with_rng=False, kill_at_step=kill) is None
    resumed = _train(tmp_path / "run", epochs=4, with_rng=False, perturb=True)
    assert not _same(reference, resumed)


@pytest.mark.parametrize("which", ["torch", "numpy", "python", "generator"])
def test_each_generator_is_restored(tmp_path, which):
    gen = torch.Generator().manual_seed(3)
    draw = {
        "torch": lambda: torch.rand(3).tolist(),
        "numpy": lambda: np.random.rand(3).tolist(),
        "python": lambda: [random.random() for _ in range(3)],
        "generator": lambda: torch.rand(3, generator=gen).tolist(),
    }[which]
    ckpt = Checkpointer(tmp_path, {"rng": RandomState(generators={"g": gen})})
    ckpt.save_checkpoint()
    expected = draw()
    seed_everything(99, verbose=False)
    gen.manual_seed(99)
    ckpt.recover_if_possible()
    assert draw() == expected


def test_rejects_unknown_generators():
    with pytest.raises(TypeError, match="torch.Generator"):
        RandomState(generators={"np": np.random.default_rng(0)})


def test_each_process_keeps_its_own_state(tmp_path, monkeypatch):
    """Under DDP the non-main processes write and read ``rng.rank<r>.ckpt``."""
    state = RandomState()
    path = tmp_path / "rng.ckpt"
    torch.manual_seed(0)
    state.save(path)  # main process
    monkeypatch.setenv("RANK", "1")
    torch.manual_seed(1)
    state.save(path)
    expected = torch.rand(1)
    assert (tmp_path / "rng.rank1.ckpt").is_file()
    torch.manual_seed(5)
    state.load(path)
    assert torch.equal(torch.rand(1), expected)
    monkeypatch.setenv("RANK", "2")  # no file of its own: the main process's state
    state.load(path)
    got = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(got, torch.rand(1))


def test_step_counters_round_trip_through_a_checkpointer(tmp_path):
    counters = StepCounters(["skipped_nonfinite_batches"])
    ckpt = AtomicCheckpointer(tmp_path, {"counters": counters})
    for _ in range(3):
        counters.increment("skipped_nonfinite_batches")
    counters.increment("other", 2)
    ckpt.save_and_keep_only(meta={"loss": 1.0}, min_keys=["loss"])
    assert (next(tmp_path.glob("CKPT*")) / "counters.ckpt").is_file()

    fresh = StepCounters(["skipped_nonfinite_batches"])  # a resumed process
    AtomicCheckpointer(tmp_path, {"counters": fresh}).recover_if_possible()
    assert fresh.as_dict() == {"skipped_nonfinite_batches": 3, "other": 2}
    assert fresh.increment("skipped_nonfinite_batches") == 4


def test_loading_an_older_checkpoint_does_not_lower_a_count(tmp_path):
    """The best checkpoint, reloaded after training, keeps what was counted since."""
    counters = StepCounters()
    ckpt = AtomicCheckpointer(tmp_path, {"counters": counters})
    counters.increment("skipped", 1)
    ckpt.save_and_keep_only(meta={"loss": 0.5}, min_keys=["loss"], num_to_keep=1)  # best
    counters.increment("skipped", 4)
    ckpt.save_and_keep_only(meta={"loss": 0.9}, min_keys=["loss"], num_to_keep=1)  # latest
    ckpt.recover_if_possible(min_key="loss")
    assert counters["skipped"] == 5
    fresh = StepCounters()
    AtomicCheckpointer(tmp_path, {"counters": fresh}).recover_if_possible()
    assert fresh["skipped"] == 5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_state_is_restored(tmp_path):
    torch.rand(1, device="cuda")  # CUDA in use
    ckpt = Checkpointer(tmp_path, {"rng": RandomState()})
    ckpt.save_checkpoint()
    expected = torch.rand(3, device="cuda")
    torch.cuda.manual_seed_all(99)
    ckpt.recover_if_possible()
    assert torch.equal(torch.rand(3, device="cuda"), expected)
