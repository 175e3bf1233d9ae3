"""Test hook (on ``PYTHONPATH`` only in tests/stages/test_shards_ddp.py): a node dies mid-run.

In the process of rank ``TINYCLAP_KILL_RANK``, when distillation epoch
``TINYCLAP_KILL_EPOCH`` starts (so the checkpoint of the epoch before is on
disk), the process exits at once (``os._exit``: no clean-up, as a killed node),
unless the file ``TINYCLAP_KILL_MARKER`` exists; it is created first, so the
relaunch runs through. Python imports ``sitecustomize`` at start-up.
"""

import os

if os.environ.get("TINYCLAP_KILL_MARKER") and os.environ.get("RANK") == os.environ.get(
    "TINYCLAP_KILL_RANK"
):
    from tinyclap.training import shard_data

    _start = shard_data.ShardEpochs.start

    def _dying_start(self, epoch, batches_done):
        marker = os.environ["TINYCLAP_KILL_MARKER"]
        if self.name == "distill" and epoch == int(os.environ["TINYCLAP_KILL_EPOCH"]):
            if not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(17)
        return _start(self, epoch, batches_done)

    shard_data.ShardEpochs.start = _dying_start
