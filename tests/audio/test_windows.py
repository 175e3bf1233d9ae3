"""Tests of tinyclap.audio.windows: padding, cropping, splitting into windows."""

import pytest
import torch

from tinyclap.audio.windows import pad_to_length, random_crop, split_windows

# --------------------------------------------------------------------------- #
# pad_to_length
# --------------------------------------------------------------------------- #


def test_pad_zeros():
    out = pad_to_length(torch.tensor([1.0, 2.0, 3.0]), 6)
    assert out.tolist() == [1.0, 2.0, 3.0, 0.0, 0.0, 0.0]


def test_pad_repeat():
    out = pad_to_length(torch.tensor([1.0, 2.0, 3.0]), 8, mode="repeat")
    assert out.tolist() == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0]


def test_pad_batched_last_dim():
    wav = torch.arange(6.0).reshape(2, 3)
    zeros = pad_to_length(wav, 5)
    rep = pad_to_length(wav, 5, mode="repeat")
    assert zeros.shape == rep.shape == (2, 5)
    assert zeros.tolist() == [[0, 1, 2, 0, 0], [3, 4, 5, 0, 0]]
    assert rep.tolist() == [[0, 1, 2, 0, 1], [3, 4, 5, 3, 4]]


@pytest.mark.parametrize("mode", ["zeros", "repeat"])
def test_pad_long_input_unchanged(mode):
    wav = torch.arange(10.0)
    assert pad_to_length(wav, 10, mode) is wav
    assert pad_to_length(wav, 4, mode) is wav


def test_pad_unknown_mode():
    with pytest.raises(ValueError, match="unknown pad mode"):
        pad_to_length(torch.ones(3), 5, mode="reflect")


# --------------------------------------------------------------------------- #
# random_crop
# --------------------------------------------------------------------------- #


def test_random_crop_deterministic_with_generator():
    wav = torch.arange(1000.0)
    a = [random_crop(wav, 100, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(a[0], a[1])
    g1, g2 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    seq1 = [random_crop(wav, 100, g1) for _ in range(5)]
    seq2 = [random_crop(wav, 100, g2) for _ in range(5)]
    for x, y in zip(seq1, seq2):
        assert torch.equal(x, y)


def test_random_crop_is_contiguous_window_of_input():
    wav = torch.arange(1000.0)
    gen = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(20):
        crop = random_crop(wav, 100, gen)
        assert crop.shape == (100,)
        start = int(crop[0])
        assert 0 <= start <= 900
        assert torch.equal(crop, torch.arange(start, start + 100, dtype=torch.float32))
        starts.add(start)
    assert len(starts) > 1  # it is actually random


def test_random_crop_exact_length_returns_whole_clip():
    wav = torch.randn(50)
    assert torch.equal(random_crop(wav, 50, torch.Generator().manual_seed(0)), wav)


def test_random_crop_short_input_is_padded():
    wav = torch.tensor([1.0, 2.0, 3.0])
    gen = torch.Generator().manual_seed(0)
    assert random_crop(wav, 5, gen).tolist() == [1.0, 2.0, 3.0, 0.0, 0.0]
    assert random_crop(wav, 5, gen, pad_mode="repeat").tolist() == [
        1.0,
        2.0,
        3.0,
        1.0,
        2.0,
    ]


# --------------------------------------------------------------------------- #
# split_windows
# --------------------------------------------------------------------------- #


def test_split_windows_exact_multiple():
    out = split_windows(torch.arange(12.0), 4)
    assert out.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_split_windows_long_clip_last_window_end_aligned():
    wav = torch.arange(10.0)
    out = split_windows(wav, 4)
    assert out.shape == (3, 4)
    assert out.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [6, 7, 8, 9]]
    # Every sample is covered, no padding anywhere.
    assert set(out.flatten().tolist()) == set(wav.tolist())


def test_split_windows_long_clip_all_windows():
    wav = torch.arange(16000 * 5 + 123, dtype=torch.float32)
    out = split_windows(wav, 16000)
    assert out.shape == (6, 16000)
    for i in range(5):
        assert torch.equal(out[i], wav[i * 16000 : (i + 1) * 16000])
    assert torch.equal(out[-1], wav[-16000:])


def test_split_windows_with_hop():
    out = split_windows(torch.arange(10.0), 4, hop=3)
    assert out.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    out = split_windows(torch.arange(11.0), 4, hop=3)
    assert out.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9], [7, 8, 9, 10]]


def test_split_windows_short_clip_one_padded_window():
    out = split_windows(torch.tensor([1.0, 2.0, 3.0]), 5)
    assert out.tolist() == [[1.0, 2.0, 3.0, 0.0, 0.0]]
    out = split_windows(torch.tensor([1.0, 2.0, 3.0]), 5, pad_mode="repeat")
    assert out.tolist() == [[1.0, 2.0, 3.0, 1.0, 2.0]]


def test_split_windows_is_deterministic():
    wav = torch.randn(5000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(split_windows(wav, 1024, 512), split_windows(wav, 1024, 512))
