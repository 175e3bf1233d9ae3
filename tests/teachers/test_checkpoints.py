"""Mini-teacher checkpoints: round trips and load errors."""

import pytest
import torch

from tinyclap.teachers import TeacherLoadError, load_teacher

FRONTEND = {"sample_rate": 16000, "f_max": 8000.0}


def test_mini_teacher_round_trip(mini_teacher):
    path, model = mini_teacher.path, mini_teacher.model()
    teacher = load_teacher("mini", checkpoint=path)
    assert (teacher.sample_rate, teacher.clip_seconds, teacher.window_samples) == (
        16000,
        1.0,
        16000,
    )
    assert teacher.embedding_dim == 16 and len(teacher.fingerprint) == 64
    wavs = torch.randn(3, 16000)
    emb = teacher.embed_audio(wavs)
    expected = torch.nn.functional.normalize(model.encode_audio(teacher.frontend(wavs)), dim=-1)
    assert torch.allclose(emb, expected, atol=1e-6)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    text = teacher.embed_text(["this is the sound of rain", "a dog barks"])
    assert text.shape == (2, 16)
    assert torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert load_teacher(str(path)).fingerprint == teacher.fingerprint  # path form


def test_teacher_with_wrong_keys_lists_them(mini_teacher, tmp_path):
    path = mini_teacher.path
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["extra.weight"] = torch.zeros(1)
    del payload["state_dict"]["logit_scale"]
    bad = tmp_path / "bad.ckpt"
    torch.save(payload, bad)
    with pytest.raises(TeacherLoadError) as err:
        load_teacher("mini", checkpoint=bad)
    assert "missing: ['logit_scale']" in str(err.value)
    assert "unexpected: ['extra.weight']" in str(err.value)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("mini", {}, "needs checkpoint=PATH"),
        ("msclap-2022", {"checkpoint": "no/such/CLAP_weights_2022.pth"}, "checkpoint not found"),
        ("no/such/file.ckpt", {}, "unknown teacher"),
    ],
)
def test_teacher_errors_are_clear(name, kwargs, message):
    with pytest.raises(TeacherLoadError, match=message):
        load_teacher(name, **kwargs)


def test_teacher_rejects_foreign_and_corrupt_files(tmp_path):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(TeacherLoadError, match="not a tinyclap mini-teacher"):
        load_teacher(str(foreign))
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(TeacherLoadError, match="cannot read teacher checkpoint"):
        load_teacher(str(corrupt))


def test_profiled_audio_tower_is_the_audio_side_only(mini_teacher):
    path, model = mini_teacher.path, mini_teacher.model()
    tower = load_teacher("mini", checkpoint=path).audio_encoder()
    assert sum(p.numel() for p in tower.parameters()) == model.audio_params()
