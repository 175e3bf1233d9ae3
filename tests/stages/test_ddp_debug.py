"""``torchrun`` (2 processes, gloo) of ``distill.yaml --debug``: the sharded cache, end to end.

Every process embeds a shard of each split's (bounded) teacher cache; in debug mode
every process uses the main process's temporary checkpoint folder (else they wait on
different collectives for ever).
"""

import json
import os
import subprocess
import sys

from tests.helpers.tiny import REPO
from tinyclap.training.cache import TeacherEmbeddingCache


def test_torchrun_debug_distill_builds_the_cache_in_shards(debug_teacher, tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "train.py", "hparams/distill.yaml", "--debug", "--distributed_backend", "gloo",
        *debug_teacher["data"],
        "--teacher_checkpoint", debug_teacher["result"]["teacher_checkpoint"],
        "--output_folder", str(tmp_path / "run"), "--cache_folder", str(tmp_path / "cache"),
        "--alpha", "0.5", "--num_layers", "3", "--head_channels", "64",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "run" / "results.json").read_text())
    assert result["optimizer_steps"]["distill"] > 0
    assert "teacher cache (rank 1)" in done.stderr  # the second process embedded its shard
    folders = sorted(p for p in (tmp_path / "cache").iterdir() if p.is_dir())
    assert len(folders) == 2  # train and valid
    for folder in folders:
        assert not list(folder.glob("partial*"))  # merged, partial files gone
        cache = TeacherEmbeddingCache(folder)
        assert len(cache) > 0 and cache.embeddings.shape[0] >= len(cache)
