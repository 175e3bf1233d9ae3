"""Latent-space pruning: ranking, masking, shrinking, checkpoints, text side."""

import pytest
import torch
import torch.nn.functional as F

from tinyclap.nn.latent import mask_embeddings, restrict_embeddings
from tinyclap.pruning.ranking import rank_dimensions
from tinyclap.pruning.report import write_pruning_table
from tinyclap.pruning.surgery import (
    MaskedAudioEncoder,
    expected_shrunk_params,
    shrink_encoder,
    shrink_student,
)
from tinyclap.students.encoder import StudentAudioEncoder, load_student, save_student
from tinyclap.students.phinet import PhiNetStudent
from tinyclap.zeroshot.prompts import prompt_embeddings

FRONTEND = {"sample_rate": 16000, "f_max": 8000.0}
D, HEAD = 24, 32


@pytest.fixture()
def encoder():
    torch.manual_seed(0)
    student = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=51, n_mels=64, head_channels=HEAD,
                            embedding_dim=D)  # fmt: skip
    return StudentAudioEncoder(student, FRONTEND, 1.0).eval()


def test_rankings():
    emb = torch.tensor([[0.1, -0.9, 0.4, 0.0], [0.3, 0.7, -0.5, 0.1]])
    assert rank_dimensions(emb, "student") == [1, 2, 0, 3]
    assert rank_dimensions(emb.numpy(), "teacher") == [1, 2, 0, 3]
    random_order = rank_dimensions(emb, "random", seed=3)
    assert sorted(random_order) == [0, 1, 2, 3]
    assert random_order == rank_dimensions(emb, "random", seed=3)
    with pytest.raises(ValueError, match="unknown ranking"):
        rank_dimensions(emb, "magnitude")


def test_mask_only_equals_full_embedding_with_dropped_dims_zeroed(encoder):
    wavs = torch.randn(3, 16000)
    kept = [5, 0, 17, 9]
    raw = encoder.student(encoder.frontend(wavs)).detach()
    masked = mask_embeddings(raw, kept)
    dropped = [i for i in range(D) if i not in kept]
    assert torch.equal(masked[:, kept], raw[:, kept])
    assert torch.all(masked[:, dropped] == 0)
    assert torch.allclose(
        MaskedAudioEncoder(encoder, kept).embed_audio(wavs), F.normalize(masked, dim=-1), atol=1e-6
    )


@pytest.mark.parametrize("k", [1, 8, 23])
def test_shrunk_student_has_exactly_the_expected_parameter_count(encoder, k):
    full = sum(p.numel() for p in encoder.student.parameters())
    small = shrink_student(encoder.student, list(range(k)))
    assert sum(p.numel() for p in small.parameters()) == expected_shrunk_params(full, HEAD, D, k)
    assert small.embedding_dim == k and small.config["embedding_dim"] == k


def test_shrinking_keeps_the_first_layer_exactly_and_is_identity_at_k_equals_d(encoder):
    kept = list(range(D))[::-1]
    small = shrink_student(encoder.student, kept).eval()
    x = torch.randn(2, 51, 64)
    full_out = encoder.student(x)
    assert torch.allclose(small(x), full_out[:, kept], atol=1e-5)  # a permutation is exact
    kept = [3, 11, 2]
    small = shrink_student(encoder.student, kept).eval()
    feats = encoder.student.base(x)
    assert torch.allclose(
        small.projection.linear1(feats), encoder.student.projection.linear1(feats)[:, kept]
    )


def test_shrunk_embedding_approximates_the_masked_one(encoder):
    """The LayerNorm normalises over K dims after shrinking: close, not equal."""
    wavs = torch.randn(8, 16000)
    kept = rank_dimensions(torch.randn(10, D), "random", seed=1)[:12]
    shrunk = shrink_encoder(encoder, kept).embed_audio(wavs)
    masked = restrict_embeddings(MaskedAudioEncoder(encoder, kept).embed_audio(wavs), kept)
    cosine = F.cosine_similarity(shrunk, masked).mean().item()
    assert 0.5 < cosine < 1.0


def test_kept_dims_round_trip_through_the_checkpoint(encoder, tmp_path):
    pruned = shrink_encoder(encoder, [7, 2, 19, 4])
    save_student(tmp_path / "pruned.ckpt", pruned)
    loaded = load_student(tmp_path / "pruned.ckpt")
    assert loaded.kept_dims == [7, 2, 19, 4]
    wavs = torch.randn(2, 16000)
    assert torch.equal(loaded.embed_audio(wavs), pruned.embed_audio(wavs))
    twice = shrink_encoder(loaded, [1, 3])  # indices of the pruned student's outputs
    assert twice.kept_dims == [2, 4]


class _Teacher:
    def embed_text(self, texts):
        return F.normalize(
            torch.arange(len(texts) * D, dtype=torch.float).view(len(texts), D) % 7 + 1, dim=-1
        )


def test_pruned_students_get_k_dim_text_embeddings(encoder):
    prompts = ["this is the sound of rain", "this is the sound of wind"]
    full = _Teacher().embed_text(prompts)
    assert torch.equal(prompt_embeddings(_Teacher(), prompts, encoder), full)
    kept = [4, 1, 20]
    text = prompt_embeddings(_Teacher(), prompts, shrink_encoder(encoder, kept))
    assert text.shape == (2, 3)
    assert torch.allclose(text, F.normalize(full[:, kept], dim=-1))
    masked_text = prompt_embeddings(_Teacher(), prompts, MaskedAudioEncoder(encoder, kept))
    assert masked_text.shape == (2, D)
    assert torch.allclose(masked_text[:, kept], text)  # same cosines as slicing


def test_invalid_kept_dims(encoder):
    with pytest.raises(ValueError, match="distinct indices"):
        shrink_student(encoder.student, [1, 1])
    with pytest.raises(ValueError, match="distinct indices"):
        shrink_student(encoder.student, [D])
    with pytest.raises(ValueError, match="kept dims for a student"):
        StudentAudioEncoder(encoder.student, FRONTEND, 1.0, kept_dims=[0, 1])


def test_pruning_table(tmp_path):
    rows = [{"ranking": "student", "k": 8, "params": 1234, "macs": 99, "acc_mask": 0.5,
             "acc_shrunk": 0.25, "acc_finetuned": None, "cos_shrunk_vs_mask": 0.9}]  # fmt: skip
    text = write_pruning_table(rows, tmp_path, "python train.py hparams/prune.yaml")
    assert "| student | 8 | 1,234 | 99 | 50.0% | 25.0% |  | 0.900 |" in text
    assert (tmp_path / "pruning_table.csv").read_text().splitlines()[
        1
    ] == "student,8,1234,99,0.5,0.25,,0.9"
