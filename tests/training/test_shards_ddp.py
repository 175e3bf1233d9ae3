"""Teacher fields in shards, and distillation from shards on 2 "nodes" (torchrun, c10d, gloo).

The multi-node test runs the documented command twice on 127.0.0.1 (two
``torchrun --nnodes 2 --nproc_per_node 1 --rdzv_backend c10d`` invocations):
the teacher-field pass and the distillation complete, every sample of every
epoch is trained on once across the ranks (the stage's per-rank counts and id
hashes), the checkpoints are written once, and after one node is killed a
relaunch of both resumes from the last checkpoint instead of starting over. A
single-process run killed mid-epoch resumes at the exact batch.
"""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.helpers.tiny import REPO
from tinyclap.data.shard_reader import ShardDataset
from tinyclap.data.shards import ShardError, load_index, write_shards
from tinyclap.teachers import load_teacher
from tinyclap.training import shard_cache
from tinyclap.training.cache import TeacherEmbeddingCache
from tinyclap.training.shard_cache import add_teacher_fields, teacher_record
from tinyclap.training.shard_data import DistillDecoder, ids_hash


@pytest.fixture()
def synth_shards(synth_tree, tmp_path):
    """The tiny Synth train split in shards of 4, and its manifest entries."""
    entries = json.loads(synth_tree["manifests"]["train"].read_text())
    write_shards(entries, tmp_path / "train", shard_size=4, progress=False)
    return {"folder": tmp_path / "train", "entries": entries}


def test_teacher_fields_equal_the_cache_and_other_weights_are_refused(
    mini_teacher, synth_shards, tmp_path
):
    teacher = load_teacher(str(mini_teacher.path))
    record = teacher_record(teacher, teacher.window_samples, crops=2)
    index = add_teacher_fields(synth_shards["folder"], teacher, record, progressbar=False)
    assert index["teacher"] == record
    assert not list(synth_shards["folder"].glob("teacher_pass*"))  # merged into the index
    cache = TeacherEmbeddingCache.build(tmp_path / "cache", teacher,
                                        {k: e["wav"] for k, e in synth_shards["entries"].items()},
                                        teacher.window_samples, crops=2, progressbar=False)  # fmt: skip
    valid = ShardDataset(synth_shards["folder"], DistillDecoder(record, False), shuffle_buffer=0)
    for item in valid:
        windows = [cache.get(item["id"], w) for w in range(cache.num_windows(item["id"]))]
        expected = torch.nn.functional.normalize(torch.stack(windows).mean(0), dim=-1)
        # both store the same float32 teacher outputs rounded to float16: equal up to that
        # rounding of unit vectors (2**-11 relative) after the same mean and normalisation
        assert torch.allclose(item["teacher_emb"], expected, atol=2e-3)

    other = load_teacher(str(mini_teacher.path))
    other.fingerprint = "0" * 64  # other weights
    other_record = teacher_record(other, other.window_samples, crops=2)
    with pytest.raises(ShardError, match="other teacher weights"):
        add_teacher_fields(synth_shards["folder"], other, other_record, progressbar=False)
    stream = ShardDataset(synth_shards["folder"], DistillDecoder(other_record, True),
                          skip_bad=True)  # fmt: skip
    with pytest.raises(ShardError, match=r"shard-0000\d\d.tar key .*refused.*other weights"):
        list(stream)  # refused per sample, even where bad samples may be skipped


def test_killed_teacher_pass_resumes_without_redoing_shards(mini_teacher, synth_shards,
                                                            monkeypatch):  # fmt: skip
    teacher = load_teacher(str(mini_teacher.path))
    record = teacher_record(teacher, teacher.window_samples)
    rewrite, done = shard_cache._rewrite, []

    def dying_rewrite(folder, shard, *args):
        if len(done) == 2:
            raise KeyboardInterrupt  # killed while on the third shard
        done.append(shard["name"])
        return rewrite(folder, shard, *args)

    monkeypatch.setattr(shard_cache, "_rewrite", dying_rewrite)
    with pytest.raises(KeyboardInterrupt):
        add_teacher_fields(synth_shards["folder"], teacher, record, progressbar=False)
    assert load_index(synth_shards["folder"])["teacher"] is None
    first = list(done)
    done.clear()
    monkeypatch.setattr(shard_cache, "_rewrite",
                        lambda folder, shard, *a: done.append(shard["name"]) or
                        rewrite(folder, shard, *a))  # fmt: skip
    index = add_teacher_fields(synth_shards["folder"], teacher, record, progressbar=False)
    names = [s["name"] for s in index["shards"]]
    assert done == names[2:] and first == names[:2]  # each shard rewritten once
    assert index["teacher"] == record


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


KILL_HOOK = REPO / "tests" / "helpers" / "node_kill"  # its sitecustomize kills rank 1


def launch(args, port, log, marker):
    """One "node": ``torchrun --nnodes 2 --nproc_per_node 1`` in its own process group.

    Rank 1 dies as epoch 2 starts unless ``marker`` exists (the first launch creates it).
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
               "--nproc_per_node", "1", "--rdzv_backend", "c10d", "--rdzv_id", "shards",
               "--rdzv_endpoint", f"127.0.0.1:{port}", "train.py", "hparams/distill.yaml",
               "--distributed_backend", "gloo", *args]  # fmt: skip
    path = os.pathsep.join(p for p in (str(KILL_HOOK), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, "TINYCLAP_KILL_RANK": "1",
           "TINYCLAP_KILL_EPOCH": "2", "TINYCLAP_KILL_MARKER": str(marker)}  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def wait_all(nodes, timeout):
    """Exit codes of the nodes; a node still running after ``timeout`` s is killed (-9)."""
    codes = []
    for node in nodes:
        try:
            codes.append(node.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            codes.append(node.wait())
    return codes


def epoch_records(folder):
    records = {}
    for path in sorted(folder.glob("*.rank*.jsonl")):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            records.setdefault((r["stage"], r["epoch"]), []).append(r)
    return records


def test_two_nodes_distil_from_shards_and_resume_after_a_node_is_killed(debug_teacher, tmp_path):
    from tinyclap.cli.main import main as cli_main

    data = debug_teacher["data"]
    data_folder = data[data.index("--data_folder") + 1]
    shards = tmp_path / "shards"
    sizes = [f"{k}={data[data.index(f'--{k}') + 1]}" for k in ("n_train", "n_valid", "n_test")]
    assert cli_main(["shard", "--dataset", "synth", "--data_folder", data_folder, "--splits",
                     "train", "valid", "--option", *sizes, "--out", str(shards),
                     "--shard_size", "6", "--no_progress"]) == 0  # the fixture's tiny Synth  # fmt: skip
    out = tmp_path / "run"
    args = [*data, "--teacher_checkpoint", debug_teacher["result"]["teacher_checkpoint"],
            "--output_folder", str(out), "--data_source", "shards", "--shards_folder", str(shards),
            "--alpha", "0.5", "--num_layers", "3", "--head_channels", "64", "--batch_size", "8",
            "--number_of_epochs", "3", "--finetune_epochs", "1", "--shuffle_buffer", "8"]  # fmt: skip
    logs = [open(tmp_path / f"node{n}.log", "w+") for n in range(2)]
    marker = tmp_path / "killed"
    port = free_port()
    nodes = [launch(args, port, logs[n], marker) for n in range(2)]
    # rank 1 dies (os._exit) as distillation epoch 2 starts; rank 0's collectives then fail
    assert [code != 0 for code in wait_all(nodes, 120)] == [True, True]
    assert marker.exists()
    assert not (out / "results.json").exists()
    first = epoch_records(out / "shard_epochs")

    port = free_port()
    nodes = [launch(args, port, logs[n], marker) for n in range(2)]  # the relaunch
    codes = wait_all(nodes, 180)
    assert codes == [0, 0], [open(tmp_path / f"node{n}.log").read()[-3000:] for n in range(2)]
    text = "".join(open(tmp_path / f"node{n}.log").read() for n in range(2))
    result = json.loads((out / "results.json").read_text())
    assert result["shards"]["world_size"] == 2 and result["shards"]["bad_samples"] == 0

    # the teacher pass ran on both ranks, once: its fields are in the index
    assert load_index(shards / "train")["teacher"]["fingerprint"]
    assert "teacher fields (rank 1)" in text
    # every epoch: both ranks, each sample once over the two (48 clips, 24 per rank)
    stream = ShardDataset(shards / "train", lambda raw: json.loads(raw["json"])["id"],
                          shuffle_buffer=0)  # fmt: skip
    ids = list(stream)
    records = epoch_records(out / "shard_epochs")
    for stage, epochs in (("distill", 3), ("finetune", 1)):
        for epoch in range(1, epochs + 1):
            last = {r["rank"]: r for r in records[(stage, epoch)]}  # a redone epoch: its last run
            assert sorted(last) == [0, 1]
            assert sum(r["samples"] for r in last.values()) == len(ids)
            assert sum(r["ids_hash"] for r in last.values()) % 2**64 == ids_hash(ids)
    # resumed, not restarted: epoch 1 was trained once, before the kill
    assert len(first[("distill", 1)]) == 2 and len(records[("distill", 1)]) == 2
    # checkpoints written once (by rank 0), the one kept per stage
    assert len(list((out / "save").glob("CKPT*"))) == 1
    assert len(list((out / "save_finetune").glob("CKPT*"))) == 1
    assert np.isfinite(result["zs_accuracy"])


def test_stage_positions_the_stream_from_the_checkpointed_step_and_layout(synth_shards, tmp_path):
    from tinyclap.training.shard_data import ShardEpochs

    def ids(raw):
        return json.loads(raw["json"])["id"]

    dataset = ShardDataset(synth_shards["folder"], ids, shuffle_buffer=4, rank=0, world=1)
    epochs = ShardEpochs(dataset, {"batch_size": 2, "num_workers": 0}, tmp_path, "distill")
    epochs.start(2, 0)
    full = list(dataset)
    saved = epochs.layout.current  # what a checkpoint of this epoch stores
    epochs.layout.recovered = saved  # ... and a relaunch recovers (with SpeechBrain's step)
    epochs.start(2, 3)
    assert list(dataset) == full[6:]  # 3 batches of 2 consumed before the kill
    epochs.layout.recovered = {**saved, "batch_size": 4}  # another layout: the epoch restarts
    epochs.start(2, 3)
    assert list(dataset) == full
    epochs.count(full)
    epochs.end(2)
    (line,) = (tmp_path / "distill.rank0.jsonl").read_text().splitlines()
    assert json.loads(line)["samples"] == len(full) and json.loads(line)["first_batch"] == 3


def test_stage_resumes_an_interrupted_epoch_at_the_exact_batch(debug_teacher, tmp_path,
                                                               monkeypatch):  # fmt: skip
    from tinyclap.cli.main import main as cli_main
    from tinyclap.stages.run import main
    from tinyclap.training import shard_data

    data = debug_teacher["data"]
    sizes = [f"{k}={data[data.index(f'--{k}') + 1]}" for k in ("n_train", "n_valid", "n_test")]
    shards = tmp_path / "shards"
    assert cli_main(["shard", "--dataset", "synth", "--data_folder",
                     data[data.index("--data_folder") + 1], "--splits", "train", "valid",
                     "--option", *sizes, "--out", str(shards), "--shard_size", "6",
                     "--no_progress"]) == 0  # fmt: skip
    count, trained = shard_data.ShardEpochs.count, []

    def recording_count(self, ids):
        if self.name == "distill":
            if len(trained) == kill_at[0]:
                raise KeyboardInterrupt  # killed before batch kill_at + 1
            trained.append(list(ids))
        return count(self, ids)

    monkeypatch.setattr(shard_data.ShardEpochs, "count", recording_count)
    kill_at = [None]

    def run(name):
        return main(["hparams/distill.yaml", *data, "--teacher_checkpoint",
                     debug_teacher["result"]["teacher_checkpoint"], "--output_folder",
                     str(tmp_path / name), "--data_source", "shards", "--shards_folder",
                     str(shards), "--alpha", "0.5", "--num_layers", "3", "--head_channels",
                     "64", "--batch_size", "8", "--number_of_epochs", "1", "--finetune_epochs",
                     "1", "--shuffle_buffer", "8", "--ckpt_interval_steps", "1"])  # fmt: skip

    monkeypatch.chdir(REPO)
    # the uninterrupted epoch's batches: the stream alone decides them (seed 1234 of distill.yaml)
    stream = ShardDataset(shards / "train", lambda raw: json.loads(raw["json"])["id"],
                          shuffle_buffer=8, seed=1234, rank=0, world=1)  # fmt: skip
    stream.set_position(1)
    ids = list(stream)
    whole = [ids[i : i + 8] for i in range(0, len(ids), 8)]
    kill_at[0] = 3
    with pytest.raises(KeyboardInterrupt):
        run("killed")  # an intra-epoch checkpoint after each batch: the last after batch 3
    assert trained == whole[:3]
    trained[:] = []
    kill_at[0] = None
    run("killed")  # the relaunch
    assert trained == whole[3:]  # exactly the batches the uninterrupted epoch trained next
