"""Write a random-weight exported folder for the runtime measurements (no hub, no training).

An edge-size PhiNet student (a0.75 b0.75 t0 4 N5, head 512, 1024-d latent) at
MS-CLAP 2022's window (5 s at 44.1 kHz), labelled by a random mini teacher
(its MiniLM text side embeds the bundled label sets), exported with
``tinyclap export`` (ONNX graphs included), plus a few test clips. Latency and
start-up time do not depend on the weights; predictions are meaningless.

    python -m tinyclap.bench.toy_export /tmp/tinyclap_runtime
"""

import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from tinyclap.audio.features import CLAP2022_FRONTEND
from tinyclap.deploy.export import export_student
from tinyclap.deploy.onnx import export_onnx
from tinyclap.students.encoder import StudentAudioEncoder, save_student
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.teachers.mini import save_mini_teacher
from tinyclap.teachers.mini_clap import MiniCLAP


def build(root):
    """Teacher, student, exported folder ``root/exported`` and clips ``root/clips``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    teacher = MiniCLAP(channels=[8, 16], audio_dim=32, embedding_dim=1024).eval()
    save_mini_teacher(root / "teacher.ckpt", teacher, CLAP2022_FRONTEND, 5.0)
    student = PhiNetStudent(0.75, 0.75, 4, 5, n_frames=690, n_mels=64, head_channels=512,
                            embedding_dim=1024)  # fmt: skip
    save_student(root / "student.ckpt", StudentAudioEncoder(student, CLAP2022_FRONTEND, 5.0),
                 teacher=str(root / "teacher.ckpt"))  # fmt: skip
    # what `tinyclap export STUDENT --out DIR --no_text_encoder --repeats 5` does
    export_student(root / "student.ckpt", root / "exported", text_encoder=False)
    export_onnx(root / "exported", repeats=5, trust_remote_code=True)
    rng = np.random.default_rng(0)
    (root / "clips").mkdir(exist_ok=True)
    for i in range(32):  # 32 clips of 5 s at 44.1 kHz (files/s) and one to classify alone
        sf.write(root / "clips" / f"clip{i:02d}.wav", 0.1 * rng.standard_normal(220500), 44100)
    sf.write(root / "one.wav", 0.1 * rng.standard_normal(220500), 44100)
    return 0


if __name__ == "__main__":
    sys.exit(build(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tinyclap_runtime"))
