"""Embedding-as-target transfer: dCor, regression losses, compression, folds, stage runs."""

import json
from pathlib import Path

import pytest
import torch

from tinyclap.data.folds import assign_folds, labeled_subset, single_label_pool
from tinyclap.data.synth_sounds import SYNTH_CLASSES
from tinyclap.prepare.synth import prepare_synth
from tinyclap.stages.run import main
from tinyclap.stages.transfer import read_pool
from tinyclap.studies.training_curves import parse_train_log
from tinyclap.training.compression import LearnedCompression, PCACompression, build_compression
from tinyclap.training.losses import (
    cosine_loss,
    dcor_loss,
    distance_correlation,
    fitnet_loss,
    regression_loss,
)

REPO = Path(__file__).resolve().parents[2]


def _orthonormal_rows(rows, cols, seed=0):
    q, _ = torch.linalg.qr(torch.randn(cols, cols, generator=torch.Generator().manual_seed(seed)))
    return q[:rows]  # [rows, cols], orthonormal rows: an isometric embedding


# --- distance correlation ---------------------------------------------------------


def test_dcor_is_near_zero_for_independent_batches():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(1000, 4, generator=g), torch.randn(1000, 6, generator=g)
    value = distance_correlation(x, y).item()
    assert 0.0 <= value < 0.03  # the V-statistic's small-sample bias is ~0.017 here
    # and it shrinks with the batch (a bias, not a dependence)
    assert distance_correlation(x[:100], y[:100]).item() > value


@pytest.mark.parametrize("scale, shift", [(1.0, 0.0), (2.5, 1.0), (0.01, -3.0)])
def test_dcor_is_one_for_linearly_related_batches(scale, shift):
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    y = scale * x @ _orthonormal_rows(8, 20) + shift  # 8-d -> 20-d isometry
    assert distance_correlation(x, y).item() == pytest.approx(1.0, abs=1e-5)
    assert dcor_loss(x, y).item() == pytest.approx(0.0, abs=1e-5)
    t = torch.randn(64, 1)  # in 1-D, any affine relation
    assert distance_correlation(t, -3 * t + 7).item() == pytest.approx(1.0, abs=1e-5)


def test_dcor_is_invariant_to_the_dimension_of_either_side():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(48, 5, generator=g)
    y = torch.tanh(x[:, :3]) + 0.5 * torch.randn(48, 3, generator=g)  # dependent, not linear
    reference = distance_correlation(x, y).item()
    assert 0.1 < reference < 0.95
    x_wide = x @ _orthonormal_rows(5, 40, seed=3)  # same distances in 40-d
    y_wide = torch.cat([y, torch.zeros(48, 61)], 1)  # zero-padded to 64-d
    for a, b in ((x_wide, y), (x, y_wide), (x_wide, y_wide), (y, x)):
        assert distance_correlation(a, b).item() == pytest.approx(reference, abs=1e-5)


def test_dcor_gradient_is_finite_with_duplicate_rows():
    x = torch.randn(8, 3)
    x = torch.cat([x, x[:2]]).requires_grad_(True)
    dcor_loss(x, torch.randn(10, 7)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_regression_losses_detach_the_target():
    pred = torch.randn(6, 4, requires_grad=True)
    target = torch.randn(6, 4, requires_grad=True)
    for loss in (fitnet_loss, cosine_loss, dcor_loss):
        loss(pred, target).backward()
        assert target.grad is None
    assert fitnet_loss(target, target).item() == 0.0
    with pytest.raises(ValueError, match="unknown reg_loss 'l2'.*cosine, dcor, fitnet"):
        regression_loss("l2")


# --- compression ------------------------------------------------------------------


def test_pca_keeps_the_top_components():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(200, 3, generator=g) * torch.tensor([5.0, 3.0, 2.0])
    basis = _orthonormal_rows(3, 16, seed=4)
    emb = scores @ basis + 0.01 * torch.randn(200, 16, generator=g) + 1.0
    pca = PCACompression(emb, 3)
    z = pca(emb)
    assert z.shape == (200, 3)
    assert pca.explained_variance_ratio > 0.999
    assert torch.allclose(z.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(z.var(0), scores.var(0), rtol=0.05)  # ordered by variance


def test_compression_config_errors():
    with pytest.raises(ValueError, match="between 1 and the teacher dim 8"):
        build_compression("learned", 8, 9, 3)
    with pytest.raises(ValueError, match="between 1 and the teacher dim 8"):
        build_compression("pca", 8, 9, 3, fit_embeddings=torch.randn(20, 8))
    with pytest.raises(ValueError, match="needs at least 6 embeddings"):
        build_compression("pca", 8, 6, 3, fit_embeddings=torch.randn(5, 8))
    with pytest.raises(ValueError, match="needs the training set"):
        build_compression("pca", 8, 4, 3)
    assert build_compression("none", 8, 4, 3).teacher_loss(torch.randn(2, 8), None) is None


def _brain_and_batch(compression, lam=0.5, reg="dcor"):
    import speechbrain as sb
    from speechbrain.dataio.batch import PaddedData

    from tinyclap.stages.transfer import TransferBrain

    regressor = torch.nn.Linear(6, compression.out_dim)
    student = torch.nn.Linear(10, 6)  # stands for the PhiNet backbone
    classifier = torch.nn.Linear(6, 3)
    brain = TransferBrain(
        modules={"student": student, "classifier": classifier, "regressor": regressor,
                 "compression": compression},
        hparams={"transfer_lambda": lam, "reg_loss_fn": regression_loss(reg)[0]},
        run_opts={"device": "cpu"},
    )  # fmt: skip
    brain.on_stage_start(sb.Stage.TRAIN)
    teacher = torch.randn(8, 16)

    class Batch:
        label_index = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
        teacher_emb = PaddedData(teacher, torch.ones(8))

    features = student(torch.randn(8, 10))
    return brain, Batch, (classifier(features), features)


@pytest.mark.parametrize("reg", ["fitnet", "dcor", "cosine"])
def test_teacher_loss_reaches_only_the_compression_and_its_probe(reg):
    """In TransferBrain's loss, C and its probe get exactly L_teacher's gradients."""
    import speechbrain as sb

    torch.manual_seed(0)
    compression = LearnedCompression(16, 4, num_classes=3)
    brain, batch, predictions = _brain_and_batch(compression, reg=reg)
    loss = brain.compute_objectives(predictions, batch, sb.Stage.TRAIN)
    loss.backward()
    total = {n: p.grad.clone() for n, p in compression.named_parameters()}
    others = [brain.modules[m] for m in ("student", "classifier", "regressor")]
    assert all(p.grad is not None for m in others for p in m.parameters())
    assert set(brain.terms) == {"ce", "reg", "teacher_loss"}

    # L_teacher alone: gradients on C and its probe only, the same as in the total
    for m in (compression, *others):
        m.zero_grad(set_to_none=True)
    compression.teacher_loss(batch.teacher_emb.data, batch.label_index).backward()
    assert all(p.grad is None for m in others for p in m.parameters())
    for name, param in compression.named_parameters():
        assert param.grad.abs().sum() > 0
        assert torch.allclose(param.grad, total[name]), name


def test_student_loss_does_not_reach_the_compression():
    import speechbrain as sb

    compression = LearnedCompression(16, 4, num_classes=3)
    compression.teacher_loss = lambda emb, labels: None  # keep only the student's loss
    brain, batch, predictions = _brain_and_batch(compression, lam=1.0, reg="fitnet")
    brain.compute_objectives(predictions, batch, sb.Stage.TRAIN).backward()
    assert all(p.grad is None for p in compression.parameters())
    assert all(p.grad is not None for p in brain.modules.regressor.parameters())


# --- folds ------------------------------------------------------------------------


def test_assigned_folds_are_stratified_and_deterministic():
    entries = {f"clip{i:03d}": {"label": f"class{i % 4}"} for i in range(60)}
    folds = assign_folds(entries, num_folds=5, fold_seed=0)
    assert folds == assign_folds(dict(reversed(list(entries.items()))), 5, 0)
    assert folds != assign_folds(entries, 5, fold_seed=1)
    for fold in range(1, 6):
        labels = [entries[k]["label"] for k, f in folds.items() if f == fold]
        assert sorted(labels) == sorted(f"class{c}" for c in range(4) for _ in range(3))


def test_manifest_folds_are_kept_and_must_be_complete():
    entries = {"a": {"label": "x", "fold": 2}, "b": {"label": "y", "fold": "4"}}
    assert assign_folds(entries) == {"a": 2, "b": 4}
    with pytest.raises(ValueError, match="some entries have a 'fold'"):
        assign_folds({**entries, "c": {"label": "x"}})


def test_labeled_subset_draws_a_few_clips_per_class():
    entries = {f"c{i:02d}": {"label": "abc"[i % 3]} for i in range(30)}
    subset = labeled_subset(entries, entries, per_class=4, seed=7)
    assert len(subset) == 12
    assert sorted(entries[k]["label"] for k in subset) == sorted("abc" * 4)
    assert subset == labeled_subset(list(entries)[::-1], entries, per_class=4, seed=7)
    assert subset != labeled_subset(entries, entries, per_class=4, seed=8)
    assert labeled_subset(entries, entries, per_class=None) == sorted(entries)
    assert len(labeled_subset(entries, entries, per_class=50)) == 30


def test_single_label_pool_drops_mixtures_and_counts_them():
    entries = {
        "a": {"label": "dog"},
        "b": {"label": "dog", "labels": ["dog", "rain"]},
        "c": {"label": "rain", "labels": ["rain"]},
        "d": {"label": "rain", "labels": ["rain", "rain"]},  # one class, listed twice
        "e": {"label": "siren", "labels": ["siren", "dog", "rain"]},
    }
    kept, dropped = single_label_pool(entries)
    assert list(kept) == ["a", "c", "d"] and dropped == 2
    assert kept["a"] is entries["a"]
    assert single_label_pool({}) == ({}, 0)


def test_single_label_pool_matches_the_transfer_pool_on_synth(tmp_path):
    manifests = prepare_synth(tmp_path / "data", tmp_path / "m", n_train=6, n_valid=2, n_test=1,
                              duration=0.1, mixture_prob=0.5, num_workers=0)  # fmt: skip
    entries = json.loads(Path(manifests["train"]).read_text())
    kept, dropped = single_label_pool(entries)
    mixtures = sum(len(e["labels"]) > 1 for e in entries.values())
    assert dropped == mixtures > 0 and len(kept) == len(entries) - mixtures
    pool, pool_dropped = read_pool(manifests, ["train"])
    assert set(kept) == set(pool) and pool_dropped == dropped


# --- the stage --------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, debug_teacher):
    """A tiny teacher trained on a tiny Synth set (shared with the other smoke runs)."""
    root = tmp_path_factory.mktemp("transfer")
    teacher = debug_teacher["result"]["teacher_checkpoint"]
    return {"root": root, "data": debug_teacher["data"], "teacher": teacher}


def _transfer(workspace, name, *overrides):
    return main(
        [
            str(REPO / "hparams/transfer.yaml"),
            "--debug",
            *workspace["data"],
            "--teacher_checkpoint",
            workspace["teacher"],
            "--cache_folder",
            str(workspace["root"] / "cache"),
            "--output_folder",
            str(workspace["root"] / name),
            "--alpha",
            "0.5",
            "--num_layers",
            "3",
            "--head_channels",
            "32",
            "--labeled_per_class",
            "2",
            "--batch_size",
            "16",
            *overrides,
        ]
    )


VARIANTS = {
    "ce": ["--transfer_lambda", "0"],
    "fitnet": ["--reg_loss", "fitnet"],
    "dcor": ["--reg_loss", "dcor"],
    "cosine": ["--reg_loss", "cosine"],
    "pca_fitnet": ["--reg_loss", "fitnet", "--compression", "pca", "--compression_dim", "8"],
    "learned_dcor": ["--reg_loss", "dcor", "--compression", "learned", "--compression_dim", "8"],
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_transfer_debug_run(workspace, variant):
    result = _transfer(workspace, variant, *VARIANTS[variant])
    folder = workspace["root"] / variant
    (fold,) = result["folds"]
    assert fold["fold"] == 1
    # 4 single-class clips per class in the pool (2 train + 1 valid + 1 test, the
    # mixtures dropped): no fold is missing a class, fold 1 holds one clip per class.
    assert fold["num_test_clips"] == len(SYNTH_CLASSES)
    assert fold["num_train_clips"] <= 2 * len(SYNTH_CLASSES)
    data = Path(workspace["data"][workspace["data"].index("--data_folder") + 1])
    entries = [e for s in ("train", "valid", "test")
               for e in json.loads((data / f"{s}.json").read_text()).values()]  # fmt: skip
    mixtures = sum(len(set(e.get("labels", [e["label"]]))) > 1 for e in entries)
    assert result["dropped_multi_label_clips"] == mixtures > 0  # counted, not silently dropped
    assert result["pool_clips"] == len(entries) - mixtures  # at most num_folds (5) per class
    assert result["accuracy"] == {"mean": round(fold["accuracy"], 4), "std": 0.0}
    assert result["params"] == fold["params"] > 0
    train = json.loads((folder / "fold_1" / "train.json").read_text())
    test = json.loads((folder / "fold_1" / "test.json").read_text())
    assert not set(train) & set(test)
    metrics = json.loads((folder / "fold_1" / "test" / "metrics.json").read_text())
    assert metrics["num_clips"] == len(test) and metrics["labels"] == sorted(SYNTH_CLASSES)
    correct = sum(row[i] for i, row in enumerate(metrics["confusion_matrix"]))
    assert fold["accuracy"] == pytest.approx(correct / len(test))
    rows = parse_train_log(folder / "fold_1" / "train_log.txt")
    assert [r["epoch"] for r in rows] == [1, 2]
    stats = fold["final_train_stats"]
    assert stats["ce"] > 0.0
    if variant == "learned_dcor":
        assert stats["teacher_loss"] > 0.0
    else:
        assert "teacher_loss" not in stats
    if variant == "pca_fitnet":
        assert 0.0 < fold["pca_explained_variance"] <= 1.0
    # a second run resumes: the finished fold is read back, not retrained
    assert _transfer(workspace, variant, *VARIANTS[variant])["folds"] == [fold]


def test_transfer_bad_configs_fail_clearly(workspace):
    with pytest.raises(ValueError, match="reg_loss: unknown 'mse'"):
        _transfer(workspace, "bad1", "--reg_loss", "mse")
    with pytest.raises(ValueError, match="compression: unknown 'svd'"):
        _transfer(workspace, "bad2", "--compression", "svd")
    with pytest.raises(ValueError, match="compression_dim: 33 is above the teacher's latent size"):
        _transfer(workspace, "bad3", "--compression", "pca", "--compression_dim", "33")


def test_comparison_table(tmp_path):
    from tinyclap.studies.transfer_compare import aggregate, write_tables

    def record(acc, **variant):
        return {"accuracy": {"mean": acc}, "params": 1000, "variant": variant}

    base = dict(transfer_lambda=0.5, reg_loss="dcor", compression_dim=16)
    records = {
        "ce": {1: record(0.5, **{**base, "transfer_lambda": 0.0, "compression": "none"}),
               2: record(0.6, **{**base, "transfer_lambda": 0.0, "compression": "none"})},
        "pca_dcor": {1: record(0.55, **base, compression="pca"),
                     2: record(0.58, **base, compression="pca")},
    }  # fmt: skip
    rows = aggregate(records)
    assert rows[1]["delta_vs_ce"] == pytest.approx(0.015) and rows[1]["wins_vs_ce"] == 1
    write_tables(rows, tmp_path, "python -m tinyclap.studies.transfer_compare", 60.0)
    table = (tmp_path / "table.md").read_text().splitlines()
    assert table[2] == "| CE only | 0.0 | - | - | - | 50.0 | 60.0 | 55.0 ± 7.1 | - |"
    assert (
        table[3] == "| EAsT dCor, PCA k | 0.5 | dcor | pca | 16 | 55.0 | 58.0 | 56.5 ± 2.1 | +1.5 |"
    )
    assert json.loads((tmp_path / "results.json").read_text())["wall_minutes"] == 1.0
    assert (tmp_path / "table.csv").read_text().count("\n") == 3


def test_comparison_reruns_a_variant_made_with_other_settings(tmp_path, monkeypatch):
    """A finished run is reused only if made with the same options, seed and extra args."""
    from tinyclap.studies import transfer_compare as tc

    calls = []

    def fake_run(command, **kwargs):  # stands in for train.py: records its command line
        calls.append(command[1:])
        out = Path(command[command.index("--output_folder") + 1])
        record = {"command": " ".join(command[1:]), "accuracy": {"mean": len(calls) / 10}}
        (out / "results.json").write_text(json.dumps(record))

    monkeypatch.setattr(tc.subprocess, "run", fake_run)
    root = tmp_path / "cmp"
    assert tc.run_variant("ce", 1, root, ["--epochs", "1"])["accuracy"]["mean"] == 0.1
    assert tc.run_variant("ce", 1, root, ["--epochs", "1"])["accuracy"]["mean"] == 0.1
    assert len(calls) == 1  # same settings: reused
    assert tc.run_variant("ce", 1, root, ["--epochs", "2"])["accuracy"]["mean"] == 0.2
    assert calls[-1][-2:] == ["--epochs", "2"]  # other extra args: run again
    monkeypatch.setitem(tc.VARIANTS, "ce", ("CE only", ["--transfer_lambda", "0.0"]))
    assert tc.run_variant("ce", 1, root, ["--epochs", "2"])["accuracy"]["mean"] == 0.3
    settings = json.loads((root / "ce" / "seed1" / "compare_settings.json").read_text())
    assert settings == {"variant": "ce", "options": ["--transfer_lambda", "0.0"], "seed": 1,
                        "extra": ["--epochs", "2"]}  # fmt: skip
    # a run made before the settings were recorded: judged by results.json's command
    (root / "ce" / "seed1" / "compare_settings.json").unlink()
    tc.run_variant("ce", 1, root, ["--epochs", "2"])
    assert len(calls) == 3  # same command line: reused
    tc.run_variant("ce", 1, root, ["--epochs", "3"])
    assert len(calls) == 4


def test_transfer_from_shards_uses_the_same_pool_and_folds(workspace, tmp_path):
    from tinyclap.cli.main import main as cli_main

    data = workspace["data"]
    sizes = [f"{k}={data[data.index(f'--{k}') + 1]}" for k in ("n_train", "n_valid", "n_test")]
    shards = tmp_path / "shards"
    assert cli_main(["shard", "--dataset", "synth", "--data_folder",
                     data[data.index("--data_folder") + 1], "--option", *sizes, "--out",
                     str(shards), "--shard_size", "8", "--no_progress"]) == 0  # fmt: skip
    variant = VARIANTS["pca_fitnet"]  # the PCA is fitted on the teacher rows of the shards
    manifest_run = _transfer(workspace, "pca_fitnet", *variant)
    shard_run = _transfer(workspace, "shards_pca_fitnet", *variant, "--data_source", "shards",
                          "--shards_folder", str(shards))  # fmt: skip
    for key in ("pool_clips", "dropped_multi_label_clips"):
        assert shard_run[key] == manifest_run[key]
    (fold,), (reference,) = shard_run["folds"], manifest_run["folds"]
    assert fold["num_train_clips"] == reference["num_train_clips"]
    assert 0.0 < fold["pca_explained_variance"] <= 1.0 and 0.0 <= fold["accuracy"] <= 1.0
    for name in ("train", "test"):  # the same clips in each part of the fold
        keys = [json.loads((workspace["root"] / run / "fold_1" / f"{name}.json").read_text())
                for run in ("pca_fitnet", "shards_pca_fitnet")]  # fmt: skip
        assert sorted(keys[0]) == sorted(keys[1])
