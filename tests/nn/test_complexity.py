"""Tests of tinyclap.nn.complexity: parameter and MAC counts, latency, tables."""

import math
import time

import pytest
import torch
from torch import nn

from tinyclap.audio.features import LogMel
from tinyclap.nn.complexity import (
    count_macs,
    count_params,
    format_markdown_table,
    format_table,
    measure_latency,
    measure_peak_memory,
    module_bytes,
    profile_audio_encoder,
    profile_model,
    split_params,
)
from tinyclap.students.encoder import StudentAudioEncoder
from tinyclap.students.phinet import PhiNetStudent


def test_count_params_linear():
    layer = nn.Linear(10, 5)
    assert count_params(layer) == 55  # 10 * 5 weights + 5 biases
    layer.bias.requires_grad_(False)
    assert count_params(layer) == 55
    assert count_params(layer, trainable_only=True) == 50


def test_count_params_shared_weights_counted_once():
    layer = nn.Linear(4, 4, bias=False)
    assert count_params(nn.Sequential(layer, layer)) == 16


class ConvLinear(nn.Module):
    """Conv2d(3 -> 8, 3x3, pad 1) on 10x12, flatten, Linear(960 -> 5)."""

    def __init__(self, bias=True):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=bias)
        self.fc = nn.Linear(8 * 10 * 12, 5, bias=bias)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def test_macs_conv_linear_by_hand():
    out_elems = 8 * 10 * 12  # 960 conv outputs
    conv = out_elems * 3 * 3 * 3  # 27 MACs each = 25,920
    fc = 960 * 5  # 4,800
    assert count_macs(ConvLinear(bias=False), (1, 3, 10, 12)) == conv + fc == 30720
    # torchinfo counts a bias as one MAC per output element.
    with_bias = conv + out_elems + fc + 5
    assert count_macs(ConvLinear(bias=True), (1, 3, 10, 12)) == with_bias == 31685


def test_macs_scale_with_batch_and_stride():
    conv = nn.Conv2d(3, 8, 3, stride=2, bias=False)  # 11x11 -> 5x5
    assert count_macs(conv, (1, 3, 11, 11)) == 8 * 5 * 5 * 27
    assert count_macs(conv, (2, 3, 11, 11)) == 2 * 8 * 5 * 5 * 27


def test_macs_depthwise_and_grouped_conv():
    # Depthwise: each of the 8 outputs sees 1 input channel x 3 x 3.
    depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    assert count_macs(depthwise, (1, 8, 10, 12)) == 8 * 120 * 9 == 8640
    dense = nn.Conv2d(8, 8, 3, padding=1, bias=False)
    assert count_macs(dense, (1, 8, 10, 12)) == 8 * 120 * 8 * 9  # 8x more
    # Grouped: 16 outputs, each sees 8 / 4 = 2 input channels x 3 x 3.
    grouped = nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False)
    assert count_macs(grouped, (1, 8, 10, 12)) == 16 * 120 * 2 * 9


def test_macs_linear_on_sequences():
    # torchinfo 1.8 alone reports 55 here (batch-only scaling); count_macs
    # multiplies by every leading dimension.
    assert count_macs(nn.Linear(10, 5), (1, 7, 10)) == 7 * 55
    assert count_macs(nn.Linear(10, 5), (2, 3, 7, 10)) == 2 * 3 * 7 * 55


def test_count_macs_keeps_mixed_modes():
    model = ConvLinear()
    model.train()
    model.conv.eval()
    count_macs(model, (1, 3, 10, 12))
    assert model.training and model.fc.training and not model.conv.training


def test_measure_latency_fields_and_calls():
    calls = []

    def fn(x):
        calls.append(torch.is_inference_mode_enabled())
        return x * 2

    stats = measure_latency(fn, torch.ones(3), warmup=2, repeats=5)
    assert calls == [True] * 7
    assert set(stats) == {"median_ms", "p90_ms", "mean_ms", "repeats"}
    assert stats["repeats"] == 5
    assert stats["median_ms"] > 0 and stats["p90_ms"] > 0 and stats["mean_ms"] > 0
    assert stats["median_ms"] <= stats["p90_ms"]
    assert not torch.is_inference_mode_enabled()


def test_measure_latency_p90_and_median():
    # Sleeps of 0..9 ms in order: median 4.5, p90 8.1, mean 4.5 ms at least.
    delays = iter(range(10))
    stats = measure_latency(lambda: time.sleep(next(delays) / 1000), warmup=0, repeats=10)
    # Sleeps never undershoot; no upper bounds, a loaded machine may overshoot.
    assert stats["median_ms"] >= 4.5
    assert stats["p90_ms"] >= 8.1
    assert stats["mean_ms"] >= 4.5
    assert stats["p90_ms"] >= stats["median_ms"]


def test_measure_latency_restores_threads():
    before = torch.get_num_threads()
    seen = []
    measure_latency(lambda: seen.append(torch.get_num_threads()), warmup=1, repeats=2, threads=1)
    assert seen == [1, 1, 1]
    assert torch.get_num_threads() == before

    def boom():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        measure_latency(boom, threads=1)
    assert torch.get_num_threads() == before


def test_measure_latency_rejects_bad_arguments():
    with pytest.raises(ValueError):
        measure_latency(lambda: None, repeats=0)
    with pytest.raises(ValueError):
        measure_latency(lambda: None, threads=0)


def _hook_macs(model, logmels):
    """Independent MAC count with forward hooks, in torchinfo's convention."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_out = module.in_channels // module.groups * math.prod(module.kernel_size)
            total += output.numel() * (per_out + (module.bias is not None))
        elif isinstance(module, nn.Linear):
            total += output.numel() * (module.in_features + (module.bias is not None))
        elif isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
            total += sum(p.numel() for p in module.parameters())  # 2 * C, batch 1

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model.eval()(logmels)
    finally:
        for handle in handles:
            handle.remove()
    return total


def test_profile_phinet_student():
    torch.manual_seed(0)
    student = PhiNetStudent(
        0.5, 0.75, 4, 4, n_frames=101, n_mels=64, head_channels=64, embedding_dim=32
    )
    frontend = LogMel(sample_rate=16000, f_max=8000)
    assert frontend.num_frames(32000) == 101
    student.train()
    student.projection.eval()  # mixed modes must survive
    modes_during = []
    handle = student.register_forward_pre_hook(
        lambda module, args: modes_during.append(module.training)
    )
    try:
        info = profile_audio_encoder(student, frontend, 32000, threads=1, warmup=1, repeats=3)
    finally:
        handle.remove()

    assert modes_during == [False] * 5  # torchinfo's pass + 1 warmup + 3 timed
    assert student.training and student.base.training
    assert not student.projection.training
    assert frontend.training

    assert set(info) == {"params", "macs", "cpu_ms_per_clip"}
    assert info["params"] == count_params(student)
    assert info["params"] == sum(p.numel() for p in student.parameters())
    assert info["macs"] == count_macs(student, (1, 101, 64))
    assert info["macs"] == _hook_macs(student, torch.zeros(1, 101, 64))
    assert info["macs"] > 1_000_000  # ~3.5 M: the convolutions dominate
    assert info["cpu_ms_per_clip"] > 0


def test_profile_latency_runs_in_eval_mode():
    frontend = LogMel(sample_rate=16000, f_max=8000)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(51 * 64, 8))
    modes = []
    encoder.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    encoder.train()
    info = profile_audio_encoder(encoder, frontend, 16000, warmup=1, repeats=2)
    assert info["params"] == info["macs"] == 51 * 64 * 8 + 8
    assert modes == [False] * 4  # torchinfo's pass + warmup + 2 repeats
    assert encoder.training


ROWS = [
    {"model": "tinyCLAP", "params": 6_200_000, "macs": 1_234_567_890, "ms": 12.345},
    {"model": "MS-CLAP", "params": 80_000, "ms": 3.0, "note": "a|b"},
]


def test_format_table_exact():
    table = format_table(ROWS, ["model", "params", "macs", ("ms", "CPU ms"), "note"])
    assert table == (
        "model        params           macs  CPU ms  note\n"
        "--------  ---------  -------------  ------  ----\n"
        "tinyCLAP  6,200,000  1,234,567,890   12.35\n"
        "MS-CLAP      80,000                   3.00  a|b"
    )


def test_format_markdown_table_exact():
    table = format_markdown_table(ROWS, ["model", "params", ("ms", "CPU ms"), "note"])
    assert table == (
        "| model    |    params | CPU ms | note |\n"
        "| -------- | --------: | -----: | ---- |\n"
        "| tinyCLAP | 6,200,000 |  12.35 |      |\n"
        "| MS-CLAP  |    80,000 |   3.00 | a\\|b |"
    )


def test_format_table_headers_only():
    assert format_table([], ["a", "bb"]) == "a  bb\n-  --"
    assert format_markdown_table([], ["a"]) == "| a   |\n| --- |"


# --------------------------------------------------------------------------- #
# Paper Table 1: the seven PhiNet students at tinyCLAP's size
# --------------------------------------------------------------------------- #

# alpha, beta, t0, N, params (M) as printed in the paper (DESIGN.md section 3).
TABLE_1 = [
    (3.00, 0.75, 6, 7, 7.0),
    (3.00, 0.75, 6, 9, 13.0),
    (3.00, 0.75, 4, 7, 6.2),
    (1.50, 0.75, 6, 7, 4.4),
    (0.75, 0.75, 4, 7, 3.5),
    (0.75, 0.75, 4, 4, 3.2),
    (0.75, 0.75, 6, 4, 3.3),
]
# 5 s at 44.1 kHz (690 frames x 64 mels), 2048-channel head, 2048 -> 1024 projection.
PAPER_SIZE = {"n_frames": 690, "n_mels": 64, "head_channels": 2048, "embedding_dim": 1024}


@pytest.mark.parametrize(
    ("alpha", "beta", "t_zero", "num_layers", "paper_millions"),
    TABLE_1,
    ids=[f"a{a:g}_b{b:g}_t{t}_N{n}" for a, b, t, n, _ in TABLE_1],
)
def test_table_1_parameter_counts(alpha, beta, t_zero, num_layers, paper_millions):
    student = PhiNetStudent(alpha, beta, t_zero, num_layers, **PAPER_SIZE)
    counts = split_params(student)
    # linear1 2048 x 1024, linear2 1024 x 1024 (no biases), LayerNorm 2 x 1024.
    assert counts["projection_params"] == 2048 * 1024 + 1024 * 1024 + 2 * 1024 == 3_147_776
    assert counts["params"] == counts["backbone_params"] + counts["projection_params"]
    relative = counts["params"] / (paper_millions * 1e6) - 1
    assert abs(relative) <= 0.03, (
        f"Table 1 row alpha={alpha} beta={beta} t0={t_zero} N={num_layers}: "
        f"{counts['params']:,} parameters vs {paper_millions}M in the paper "
        f"({relative:+.2%}, more than 3%)"
    )


# --------------------------------------------------------------------------- #
# split parameters, peak memory, full profile
# --------------------------------------------------------------------------- #


def test_split_params_without_parts():
    assert split_params(nn.Linear(3, 2)) == {
        "params": 8,
        "backbone_params": None,
        "projection_params": None,
    }


def test_module_bytes_counts_parameters_and_buffers():
    assert module_bytes(nn.Linear(10, 5)) == 55 * 4
    assert module_bytes(nn.Linear(10, 5).double()) == 55 * 8
    # weight, bias, running mean, running var (float32) + num_batches_tracked (int64)
    assert module_bytes(nn.BatchNorm2d(3)) == 4 * 3 * 4 + 8


def test_peak_memory_of_known_allocations():
    x = torch.ones(250_000)  # 1 MB, allocated before: not counted

    def chain(x):
        y = x * 2  # +1 MB
        z = y + 1  # +1 MB: y and z alive (2 MB)
        del y  # -1 MB
        w = torch.cat([z, z, z])  # +3 MB: z and w alive (4 MB)
        return w

    peak = measure_peak_memory(chain, x)
    assert 4_000_000 <= peak < 4_000_000 + 10_000  # a few scalars on top at most
    assert measure_peak_memory(lambda x: None, x) == 0
    assert not torch.is_inference_mode_enabled()


def test_profile_model_fields_and_consistency():
    torch.manual_seed(0)
    student = PhiNetStudent(0.5, 0.75, 4, 4, n_frames=101, n_mels=64, head_channels=64,
                            embedding_dim=32)  # fmt: skip
    model = StudentAudioEncoder(student, {"sample_rate": 16000, "f_max": 8000}, 2.0)
    model.train()
    info = profile_model(model, threads=1, batch_sizes=(1, 3), warmup=1, repeats=2)
    assert set(info) == {"params", "backbone_params", "projection_params", "macs", "ms_b1",
                         "ms_b3", "peak_mem_mb", "threads"}  # fmt: skip
    assert info["params"] == count_params(student)
    assert info["backbone_params"] == count_params(student.base)
    assert info["projection_params"] == 64 * 32 + 32 * 32 + 2 * 32
    assert info["macs"] == count_macs(student, (1, 101, 64))  # log-mels of one clip
    assert info["ms_b1"] > 0 and info["ms_b3"] > 0 and info["threads"] == 1
    weights_mb = (module_bytes(student) + module_bytes(model.frontend)) / 1e6
    assert weights_mb < info["peak_mem_mb"] < weights_mb + 50
    assert model.training and student.training  # modes restored
