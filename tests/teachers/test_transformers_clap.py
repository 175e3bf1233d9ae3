"""LAION CLAP through transformers: parity with ClapModel, sources, offline errors, stages.

The fixture is built here with no network: a random-weight ``ClapModel`` (a
reduced HTSAT and RoBERTa: fewer, narrower layers; the real 48 kHz, 10 s, 64-mel
input) saved with ``save_pretrained``, and a ``ClapProcessor`` whose tokenizer
is a byte-level BPE trained by the ``tokenizers`` package on a few sentences and
whose feature extractor has the LAION unfused checkpoints' settings
(``frequency_min`` 50, ``truncation="rand_trunc"``, ``padding="repeatpad"``).
The reference is ``ClapModel.get_audio_features`` / ``get_text_features`` on the
processor's own output.
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from tinyclap.audio.io import load_audio
from tinyclap.teachers import TeacherLoadError, load_teacher
from tinyclap.zeroshot.scoring import encode_clips

pytestmark = pytest.mark.numerics

SR = 48000
DIM = 48
LABELS = ["this is the sound of a dog barking", "a siren wails in the street", "rain"]


def _clap_folder(folder, fusion=False):
    """A random-weight ClapModel + ClapProcessor folder, as save_pretrained writes it."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        RobertaTokenizerFast,
    )

    folder.mkdir(parents=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(LABELS * 5 + ["a dog", "the street"], vocab_size=300, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])  # fmt: skip
    bpe.save_model(str(folder))
    tokenizer = RobertaTokenizerFast(str(folder / "vocab.json"), str(folder / "merges.txt"))
    extractor = ClapFeatureExtractor(
        frequency_min=50, truncation="fusion" if fusion else "rand_trunc"
    )
    torch.manual_seed(0)
    config = ClapConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "intermediate_size": 64,
                     "max_position_embeddings": 80},
        audio_config={"patch_embeds_hidden_size": 16, "depths": [1, 1],
                      "num_attention_heads": [1, 2], "hidden_size": 32,
                      "enable_fusion": fusion, "fusion_type": "aff_2d" if fusion else None},
        projection_dim=DIM,
    )  # fmt: skip
    model = ClapModel(config).eval()
    with torch.no_grad():  # log-mels are about -100..0 dB: normalise them, as trained stats do
        model.audio_model.audio_encoder.batch_norm.running_mean.fill_(-60.0)
        model.audio_model.audio_encoder.batch_norm.running_var.fill_(400.0)
    model.save_pretrained(folder)
    ClapProcessor(extractor, tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clap(tmp_path_factory):
    return _clap_folder(tmp_path_factory.mktemp("laion") / "clap-tiny")


def _reference(folder):
    from transformers import ClapModel, ClapProcessor

    return ClapModel.from_pretrained(folder).eval(), ClapProcessor.from_pretrained(folder)


def _clip(seconds, rate=SR, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wav = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000) * t) * np.exp(-t % 1.3)
    return (wav + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def test_audio_and_text_match_clap_model(clap):
    """3, 7.5 and 10 s clips at 48 kHz: embed_audio == get_audio_features(processor(clip))."""
    teacher = load_teacher(str(clap))
    model, processor = _reference(clap)
    assert (teacher.sample_rate, teacher.clip_seconds, teacher.embedding_dim) == (SR, 10, DIM)
    assert teacher.pad_mode == "repeatpad" and teacher.window_frames == 1001
    clips = [_clip(s, seed=i) for i, s in enumerate((3.0, 7.5, 10.0))]
    ours_direct, ours_windows = [], encode_clips(teacher, [torch.from_numpy(c) for c in clips])
    diffs = []
    for clip, ours in zip(clips, ours_windows):
        inputs = processor(audio=clip, sampling_rate=SR, return_tensors="pt")
        with torch.no_grad():
            theirs = model.get_audio_features(**inputs)[0]
        direct = teacher.embed_audio(torch.from_numpy(clip)[None])[0]
        ours_direct.append(direct)
        diffs.append(max((ours - theirs).abs().max().item(), (direct - theirs).abs().max().item()))
        assert torch.linalg.norm(ours).item() == pytest.approx(1.0, abs=1e-5)
    print("audio max abs diff per clip (3 s, 7.5 s, 10 s):", diffs)
    assert max(diffs) <= 1e-4
    assert F.cosine_similarity(ours_direct[0], ours_direct[1], dim=0) < 0.999  # not collapsed
    tokens = processor(text=LABELS, padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs = model.get_text_features(**tokens)
    text_diff = (teacher.embed_text(LABELS) - theirs).abs().max().item()
    print("text max abs diff:", text_diff)
    assert text_diff <= 1e-4


def test_44k_clip_is_resampled_by_us(clap, tmp_path):
    """transformers refuses 44.1 kHz; load_audio resamples, then the teacher is exact."""
    teacher = load_teacher(str(clap))
    model, processor = _reference(clap)
    with pytest.raises(ValueError, match="sampling rate"):
        processor(audio=_clip(3.0, 44100), sampling_rate=44100)
    path = tmp_path / "clip44k.wav"
    sf.write(str(path), _clip(3.0, 44100), 44100, subtype="FLOAT")
    wav = load_audio(path, teacher.sample_rate)
    assert len(wav) == 3 * SR
    inputs = processor(audio=wav.numpy(), sampling_rate=SR, return_tensors="pt")
    with torch.no_grad():
        theirs = model.get_audio_features(**inputs)[0]
    ours = encode_clips(teacher, [wav])[0]
    print("44.1 kHz clip, max abs diff:", (ours - theirs).abs().max().item())
    assert (ours - theirs).abs().max() <= 1e-4


def test_long_clip_windows_are_deterministic_and_averaged(clap):
    teacher = load_teacher(str(clap))
    wav = torch.from_numpy(_clip(23.0))
    clip, (windows,) = encode_clips(teacher, [wav], per_window=True)
    assert windows.shape == (3, DIM)  # 0-10 s, 10-20 s, 13-23 s (end-aligned)
    assert torch.allclose(clip[0], F.normalize(windows.mean(0), dim=0), atol=1e-6)
    last = teacher.embed_audio(wav[None, -10 * SR :])[0]
    assert torch.allclose(windows[2], last, atol=1e-6)
    assert torch.equal(encode_clips(teacher, [wav]), clip)  # same clip, same embedding
    assert torch.allclose(teacher.embed_audio(wav[None]), clip, atol=1e-6)


def test_fused_checkpoint_is_longer_is_deterministic(tmp_path):
    """A fused checkpoint: is_longer False for every window, whatever the batch holds."""
    teacher = load_teacher(str(_clap_folder(tmp_path / "fused", fusion=True)))
    assert teacher.fused
    a, b = torch.from_numpy(_clip(4.0, seed=1)), torch.from_numpy(_clip(4.0, seed=2))
    alone = teacher.embed_audio(a[None])
    batched = teacher.embed_audio(torch.stack([a, b]))
    assert torch.allclose(alone[0], batched[0], atol=1e-5)
    assert torch.allclose(teacher.embed_audio(a[None]), alone)  # no random marking


def test_student_frontend_matches_the_extractor(clap):
    """LogMel(teacher.frontend_config) computes the rand_trunc extractor's log-mels."""
    from tinyclap.audio.features import LogMel

    teacher = load_teacher(str(clap))
    assert teacher.frontend_config == {"sample_rate": SR, "n_fft": 1024, "hop_length": 480,
                                       "win_length": 1024, "n_mels": 64, "f_min": 50.0,
                                       "f_max": 14000.0}  # fmt: skip
    wav = _clip(10.0)
    theirs = teacher.processor.feature_extractor(wav, sampling_rate=SR)["input_features"][0][0]
    ours = LogMel.from_config(teacher.frontend_config)(torch.from_numpy(wav))
    assert ours.shape == (1001, 64)
    loud = torch.from_numpy(np.asarray(theirs)) > -60  # float32 vs float64: compare real energy
    assert (ours.double() - torch.from_numpy(np.asarray(theirs)))[loud].abs().max() < 1e-2


def test_audio_tower_profiles_like_the_others(clap, capsys):
    """`tinyclap bench model DIR` profiles the tower (params, MACs, latency)."""
    from tinyclap.cli.main import main as cli_main

    assert cli_main(["bench", "model", str(clap), "--json", "--repeats", "1",
                     "--batch_sizes", "1"]) == 0  # fmt: skip
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    teacher = load_teacher(str(clap))
    audio = [teacher.model.audio_model, teacher.model.audio_projection]
    assert row["params"] == sum(p.numel() for m in audio for p in m.parameters())
    assert row["macs"] > 0 and row["ms_b1"] > 0
    tower = teacher.audio_encoder().eval()
    wav = torch.from_numpy(_clip(10.0))[None]
    with torch.no_grad():  # the profiled tower computes the teacher's embedding
        assert torch.allclose(F.normalize(tower(wav), dim=-1), teacher.embed_audio(wav), atol=1e-3)


def _cache_snapshot(cache, repo, folder):
    name = f"models--{repo.replace('/', '--')}"
    snapshot = cache / name / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (cache / name / "refs").mkdir()
    (cache / name / "refs" / "main").write_text("0123abcd")
    for f in folder.iterdir():
        os.symlink(f, snapshot / f.name)


def test_hub_cache_is_used_offline(clap, monkeypatch, tmp_path):
    cache = tmp_path / "hub"
    _cache_snapshot(cache, "laion/clap-htsat-unfused", clap)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cached = load_teacher("laion/clap-htsat-unfused", cache_dir=str(cache))
    local = load_teacher(str(clap))
    assert cached.fingerprint == local.fingerprint and len(local.fingerprint) == 64
    assert cached.source == "laion/clap-htsat-unfused"
    wav = torch.from_numpy(_clip(3.0))[None]
    assert torch.equal(cached.embed_audio(wav), local.embed_audio(wav))


def test_offline_without_files_says_what_to_provide(clap, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TeacherLoadError) as err:
        load_teacher("laion/larger_clap_general", cache_dir=str(tmp_path / "empty"))
    message = str(err.value)
    print(f"TeacherLoadError: {message}")
    assert (
        "HF_HUB_OFFLINE is set" in message
        and "hf download laion/larger_clap_general config.json" in message
    )
    assert "--teacher DIR" in message
    partial = tmp_path / "partial"
    shutil.copytree(clap, partial)
    (partial / "model.safetensors").unlink()
    (partial / "tokenizer.json").unlink()
    (partial / "merges.txt").unlink()
    with pytest.raises(TeacherLoadError) as err:
        load_teacher(str(partial))
    message = str(err.value)
    print(f"TeacherLoadError: {message}")
    assert str(partial) in message and "model.safetensors" in message
    assert "tokenizer.json or vocab.json + merges.txt" in message
    with pytest.raises(TeacherLoadError, match="teacher folder not found"):
        load_teacher("laion/clap-htsat-unfused", checkpoint=tmp_path / "nowhere")


def test_weights_that_do_not_match_are_listed(clap, tmp_path):
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad"
    shutil.copytree(clap, bad)
    state = load_file(str(bad / "model.safetensors"))
    del state["audio_projection.linear1.weight"]
    state["audio_model.extra.weight"] = torch.zeros(1)
    save_file(state, str(bad / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(TeacherLoadError) as err:
        load_teacher(str(bad))
    message = str(err.value)
    assert "missing (1): ['audio_projection.linear1.weight']" in message
    assert "unexpected (1): ['audio_model.extra.weight']" in message
    config = json.loads((bad / "config.json").read_text())
    config["model_type"] = "bert"
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(TeacherLoadError, match="not a transformers CLAP"):
        load_teacher(str(bad))


def test_routing():
    from tinyclap.teachers.transformers_clap import is_transformers_clap

    assert is_transformers_clap("laion/larger_clap_music_and_speech")
    assert not is_transformers_clap("msclap-2022") and not is_transformers_clap("a/b/c.ckpt")
    with pytest.raises(TeacherLoadError, match="text_model is for msclap"):
        load_teacher("laion/clap-htsat-unfused", text_model="bert/")


# --- every stage takes it with one override: --teacher <folder or repo id> ----------

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def distilled(clap, tmp_path_factory):
    """A --debug distill run from the tiny LAION-layout teacher on a few Synth clips."""
    from tinyclap.prepare.synth import prepare_synth
    from tinyclap.stages.run import main

    root = tmp_path_factory.mktemp("laion_stages")
    data = root / "data"
    manifests = prepare_synth(data, data, n_train=1, n_valid=1, n_test=1)
    for split in ("train", "valid"):  # a few clips keep the teacher cache short
        entries = json.loads(Path(manifests[split]).read_text())
        Path(manifests[split]).write_text(json.dumps(dict(list(entries.items())[:4])))
    common = [
        "--debug",
        "--data_folder",
        str(data),
        "--n_train",
        "1",
        "--n_valid",
        "1",
        "--n_test",
        "1",
        "--teacher",
        str(clap),
    ]
    cache = ["--cache_folder", str(root / "cache")]
    result = main([str(REPO / "hparams/distill.yaml"), *common, *cache,
                   "--output_folder", str(root / "student"),
                   "--alpha", "0.25", "--num_layers", "2", "--head_channels", "32"])  # fmt: skip
    return {"root": root, "common": common, "cache": cache, "result": result, "data": data}


def test_distill_students_read_the_teacher_frontend(distilled, clap):
    from tinyclap.students.encoder import load_student

    config = distilled["result"]["student_config"]
    assert (config["n_frames"], config["n_mels"], config["embedding_dim"]) == (1001, 64, DIM)
    student = load_student(distilled["result"]["student_checkpoint"])
    assert student.pad_mode == "repeatpad" and student.sample_rate == SR
    assert student.frontend_config == load_teacher(str(clap)).frontend_config
    assert student.teacher == str(clap)


def test_evaluate_teacher_and_student(distilled, clap):
    from tinyclap.stages.run import main

    root, common = distilled["root"], distilled["common"]
    student = main([str(REPO / "hparams/evaluate.yaml"), *common,
                    "--model", distilled["result"]["student_checkpoint"],
                    "--output_folder", str(root / "eval")])  # fmt: skip
    assert student["zs_accuracy"] == distilled["result"]["zs_accuracy"]  # deterministic
    teacher = main([str(REPO / "hparams/evaluate.yaml"), *common, "--model", "teacher",
                    "--output_folder", str(root / "eval_teacher")])  # fmt: skip
    assert 0.0 <= teacher["zs_accuracy"] <= 1.0


def test_prune(distilled):
    from tinyclap.stages.run import main

    root, common = distilled["root"], distilled["common"]
    result = main([str(REPO / "hparams/prune.yaml"), *common, *distilled["cache"],
                   "--student_checkpoint", distilled["result"]["student_checkpoint"],
                   "--output_folder", str(root / "prune"), "--ks", "[8]",
                   "--rankings", "[student, teacher]", "--finetune_epochs", "1"])  # fmt: skip
    assert [(r["ranking"], r["k"]) for r in result["rows"]] == [("student", 8), ("teacher", 8)]


def test_transfer(distilled):
    from tinyclap.stages.run import main

    root, common = distilled["root"], distilled["common"]
    result = main([str(REPO / "hparams/transfer.yaml"), *common, *distilled["cache"],
                   "--output_folder", str(root / "transfer"), "--alpha", "0.25",
                   "--num_layers", "2", "--head_channels", "32", "--compression", "pca",
                   "--compression_dim", "4", "--reg_loss", "cosine"])  # fmt: skip
    assert result["variant"]["compression"] == "pca" and result["folds"]
    (fold,) = result["folds"]
    assert result["accuracy"]["mean"] == round(fold["accuracy"], 4)
    assert result["student_config"]["n_frames"] == 1001  # the teacher's frontend


def test_export_then_classify(distilled, clap, tmp_path, capsys):
    """The exported folder bundles label tables and points at the teacher for free text."""
    from tinyclap.cli.main import main as cli_main

    out = tmp_path / "exported"
    assert cli_main(["export", distilled["result"]["student_checkpoint"], "--out", str(out),
                     "--label_sets", "esc50"]) == 0  # fmt: skip
    capsys.readouterr()
    hparams = (out / "hyperparams.yaml").read_text()
    assert "TeacherTextEncoder" in hparams and str(clap) in hparams
    assert 'pad_mode: "repeatpad"' in hparams and (out / "label_embeddings.safetensors").is_file()
    wav = distilled["data"] / "clip.wav"
    sf.write(str(wav), _clip(3.0, 16000), 16000)
    assert cli_main(["classify", str(wav), "--labels", "dog barking,rain,siren", "--model",
                     str(out), "--savedir", str(tmp_path / "saved"), "--json"]) == 0  # fmt: skip
    (record,) = json.loads(capsys.readouterr().out)
    assert record["top"][0]["label"] in ("dog barking", "rain", "siren")


def test_distill_text_debug_from_transformers_clap(clap, tmp_path):
    from tests.helpers.text_student import distill_text_debug
    from tinyclap.teachers import load_teacher

    dim = load_teacher(str(clap)).embedding_dim
    distill_text_debug(tmp_path, ["--teacher", str(clap)], embedding_dim=dim)
