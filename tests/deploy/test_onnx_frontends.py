"""Every exportable log-mel frontend equals LogMel, in PyTorch and under onnxruntime."""

import numpy as np
import onnx
import pytest
import torch

from tests.helpers.numerics import assert_logmels_agree
from tinyclap.audio.features import LogMel
from tinyclap.deploy.onnx import AudioEmbeddingGraph, _export, session
from tinyclap.deploy.onnx_frontends import (
    DEFAULT_FRONTEND,
    FRONTENDS,
    FactoredLogMel,
    onnx_frontend,
    used_bins,
)

pytest.importorskip("onnxruntime")

CONFIGS = {
    "clap2022": ({}, 0.7),  # 44.1 kHz, 50-14000 Hz: bins 2..325 used (324 of 513)
    "demo": ({"sample_rate": 16000, "f_max": 8000.0}, 1.0),  # the top filter reaches Nyquist
    "odd": (
        {
            "sample_rate": 22050,
            "n_fft": 512,
            "hop_length": 160,
            "win_length": 400,
            "n_mels": 40,
            "f_max": 8000.0,
        },
        0.5,
    ),  # fmt: skip
}

pytestmark = pytest.mark.numerics


def signal(config, seconds, batch=2):
    """Noise plus a loud chirp and a silent stretch: 100+ dB of dynamic range."""
    rate = LogMel(**config).sample_rate
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(int(rate * seconds)) / rate
    wav = 0.05 * torch.randn(batch, len(t), generator=gen) + 0.5 * torch.sin(3000 * t * t)
    wav[:, len(t) // 3 : len(t) // 2] = 0.0
    return wav


@pytest.mark.parametrize("kind", sorted(FRONTENDS))
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_frontend_matches_logmel_in_pytorch(kind, config):
    settings, seconds = CONFIGS[config]
    frontend = LogMel(**settings)
    wav = signal(settings, seconds)
    if kind == "factored":  # n_fft = p * q with q dividing the hop (window shorter, too)
        module = FactoredLogMel(frontend)
        assert module.p * module.q == frontend.n_fft and frontend.hop_length % module.q == 0
    out = onnx_frontend(frontend, kind)(wav)
    assert out.shape == frontend(wav).shape
    assert_logmels_agree(out, frontend(wav), frontend, wav)


@pytest.mark.parametrize("kind", sorted(FRONTENDS))
def test_every_frontend_matches_logmel_under_onnxruntime(kind, tmp_path):
    settings, seconds = CONFIGS["clap2022"]
    frontend = LogMel(**settings)
    wav = signal(settings, seconds, batch=3)
    path = _export(onnx_frontend(frontend, kind).eval(), wav[:2], tmp_path / "f.onnx", "logmel")
    out = session(path).run(None, {"waveform": wav.numpy()})[0]  # a batch size not exported
    assert_logmels_agree(out, frontend(wav), frontend, wav)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    expected = {"stft_op": "STFT", "dft_op": "DFT", "dense": "Conv", "used_conv": "Conv"}
    if kind in expected:
        assert expected[kind] in ops, ops
    else:
        assert not ops & {"Conv", "STFT", "DFT"}, ops


def test_used_bins_and_macs():
    frontend = LogMel()
    assert used_bins(frontend.mel_fb) == (2, 326)
    samples = 5 * 44100
    dense = onnx_frontend(frontend, "dense").macs(samples)
    assert dense == pytest.approx(690 * 513 * (2 * 1024 + 64))
    assert onnx_frontend(frontend, "used_conv").macs(samples) < 0.7 * dense
    assert onnx_frontend(frontend, "factored").macs(samples) < dense / 7


def test_default_frontend_is_in_the_exported_graph(tiny_student, tmp_path):
    encoder = tiny_student.model()
    graph = AudioEmbeddingGraph(encoder.frontend, encoder.student).eval()
    assert isinstance(graph.frontend, FRONTENDS[DEFAULT_FRONTEND])
    window = int(encoder.frontend.sample_rate * encoder.clip_seconds)
    wav = signal(encoder.frontend_config, encoder.clip_seconds, batch=4)[:, :window]
    path = _export(graph, wav[:2], tmp_path / "audio.onnx", "embedding")
    out = session(path).run(None, {"waveform": wav.numpy()})[0]
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(encoder.student(encoder.frontend(wav)), dim=-1)
    assert np.abs(out - ref.numpy()).max() < 1e-4


def test_default_falls_back_where_the_factored_dft_does_not_apply():
    odd_hop = LogMel(hop_length=441)  # no common factor with n_fft 1024
    with pytest.raises(ValueError, match="no factor of n_fft=1024 divides hop=441"):
        FactoredLogMel(odd_hop)
    assert type(onnx_frontend(odd_hop)).__name__ == "UsedBinsConvLogMel"
    assert type(onnx_frontend(LogMel())).__name__ == "FactoredLogMel"
    wav = signal({}, 0.3)
    assert_logmels_agree(onnx_frontend(odd_hop)(wav), odd_hop(wav), odd_hop, wav)


def test_unknown_frontend_is_named():
    with pytest.raises(ValueError, match="unknown ONNX frontend 'fft'"):
        onnx_frontend(LogMel(), "fft")
