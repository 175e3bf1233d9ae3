"""The page's JS modules under node, against the Python runtime and float64 references.

Tokenizer: the ids of ``tokenizer.js`` must equal sentencepiece's, exactly, for
unigram and BPE models and texts that exercise the normalizer (NFKC through the
precompiled character map, whitespace), unknown characters and truncation.
Audio: WAV reading equals soundfile's samples; resampling and log-mels equal
float64 references within float32 rounding (arguments at each tolerance).
"""

import numpy as np
import pytest
import soundfile as sf

from tests.deploy.web.conftest import run_node
from tinyclap.deploy.web.tokenizer import UnsupportedTokenizerError, sentencepiece_json
from tinyclap.runtime.audio import sinc_kernel
from tinyclap.runtime.frontend import HostLogMel, mel_filterbank
from tinyclap.runtime.text import SentencePieceIds

CORPUS = [f"{t} {w}" for t in ("this is the sound of", "a recording of", "")
          for w in ("dog barking", "rain falling", "a door creaking", "wind", "siren wailing",
                    "birds singing", "an engine idling", "glass breaking", "café naïve")]  # fmt: skip
TEXTS = ["a door creaking", "", "   ", "Café naïve ÜBER", "dog " * 40, "this is the sound of x",
         "ÜÜß zz rain", "ｆｕｌｌ width ①", "tab\there", "the sound of 〰 rain ™"]  # fmt: skip

TOKENIZE = """
const { SentencePiece, tokenize } = await import(STATIC + "/tokenizer.js");
const sp = new SentencePiece(input.spec);
const out = tokenize(sp, input.texts);
console.log(JSON.stringify({ rows: out.rows, dims: out.dims, mask: Array.from(out.mask, Number) }));
"""


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_tokenizer_ids_equal_sentencepiece(tmp_path, model_type):
    import sentencepiece as spm

    (tmp_path / "corpus.txt").write_text("\n".join(CORPUS * 5))
    spm.SentencePieceTrainer.train(
        input=str(tmp_path / "corpus.txt"), model_prefix=str(tmp_path / "m"), vocab_size=40,
        model_type=model_type, character_coverage=1.0, pad_id=0, unk_id=1, bos_id=-1,
        eos_id=-1, minloglevel=2,
    )  # fmt: skip
    model = tmp_path / "m.model"
    want = SentencePieceIds(model, max_length=16)
    got = run_node(TOKENIZE, {"spec": sentencepiece_json(model, 16), "texts": TEXTS})
    assert got["rows"] == want.encode(TEXTS)  # exact ids: normalised, [unk] if empty, cut
    ids, mask = want(TEXTS)
    assert got["dims"] == list(ids.shape) and got["mask"] == mask.ravel().tolist()
    assert 1 in sum(got["rows"], [])  # unknown characters were exercised


def test_unsupported_tokenizers_are_refused(tmp_path):
    (tmp_path / "bad.model").write_bytes(b"\x00not a model")
    with pytest.raises(UnsupportedTokenizerError, match="bad.model"):
        sentencepiece_json(tmp_path / "bad.model", 16)


AUDIO = """
const { readWav, resample } = await import(STATIC + "/audio.js");
const { LogMel } = await import(STATIC + "/logmel.js");
const fs = (await import("node:fs")).default;
const b = fs.readFileSync(input.path);
const { samples, rate } = readWav(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
const wav = resample(samples, rate, input.config.sample_rate);
const mels = new LogMel(input.config).compute(Float32Array.from(input.window));
console.log(JSON.stringify({ samples: Array.from(samples), rate, wav: Array.from(wav),
                              mels: Array.from(mels) }));
"""


def _reference_resample(wav, orig, target):
    """torchaudio's sinc resampling in float64 (float32 kernel values, as the JS uses)."""
    kernel, width = sinc_kernel(orig, target)
    kernel = kernel.astype(np.float32).astype(np.float64)
    g = np.gcd(orig, target)
    o, n = orig // g, target // g
    padded = np.pad(wav.astype(np.float64), (width, width + o))
    view = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1])[::o]
    return (view @ kernel.T).reshape(-1)[: -(-n * len(wav) // o)]


def _reference_logmel(window, config):
    """HostLogMel's arithmetic in float64 (float32 window and filterbank values)."""
    fe = HostLogMel.from_config(config)
    pad = fe.n_fft // 2
    x = np.concatenate([window[pad:0:-1], window, window[-2 : -pad - 2 : -1]]).astype(np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(x, fe.n_fft)[:: fe.hop_length]
    spec = np.fft.rfft(frames * fe.window.astype(np.float64), axis=-1)
    fb = mel_filterbank(fe.sample_rate, fe.n_fft, fe.n_mels, fe.f_min, fe.f_max).astype(np.float64)
    power = np.abs(spec) ** 2 @ fb.T
    return 10 * np.log10(np.maximum(power, fe.amin)) - fe.offset_db


@pytest.mark.parametrize("subtype,channels", [("PCM_16", 2), ("PCM_24", 1), ("FLOAT", 3)])
def test_wav_resampling_and_logmels_equal_float64_references(tmp_path, subtype, channels):
    rng = np.random.default_rng(0)
    t = np.arange(int(22050 * 1.3)) / 22050
    mono = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    data = np.stack([mono * (c + 1) / channels for c in range(channels)], 1)
    sf.write(tmp_path / "a.wav", data, 22050, subtype=subtype)
    config = {"sample_rate": 16000, "f_max": 8000.0}
    read, _ = sf.read(tmp_path / "a.wav", dtype="float32", always_2d=True)
    want = read.mean(axis=1)
    window = _reference_resample(want, 22050, 16000)[:16000].astype(np.float32)
    got = run_node(AUDIO, {"path": str(tmp_path / "a.wav"), "config": config,
                           "window": window.tolist()})  # fmt: skip
    assert got["rate"] == 22050
    # soundfile's scaling and the channel mean: equal up to one float32 rounding of the mean
    np.testing.assert_allclose(got["samples"], want, rtol=0, atol=2e-7)
    # both sum the same float32 products in float64, rounded once to float32: within an
    # ulp of |x| <= 0.6 (6e-8) plus the input's own rounding
    np.testing.assert_allclose(got["wav"], _reference_resample(np.float32(got["samples"]),
                               22050, 16000), rtol=0, atol=3e-7)  # fmt: skip
    mels = np.array(got["mels"]).reshape(-1, 64)
    ref = _reference_logmel(window, config)
    # float64 FFTs on both sides (1e-12 relative), the output rounded to float32: for
    # |dB| <= 100 one float32 ulp is <= 8e-6 dB
    assert mels.shape == ref.shape == (51, 64)
    np.testing.assert_allclose(mels, ref, rtol=0, atol=2e-5)
    # the runtime's float32 FFT: its rounding is ~1e-6 of a frame's energy, so bins within
    # 60 dB of their frame's maximum are within 0.01 dB
    runtime = HostLogMel.from_config(config)(window)
    loud = runtime > runtime.max(axis=1, keepdims=True) - 60
    assert np.abs(mels - runtime)[loud].max() < 1e-2 and loud.mean() > 0.5


LOGMEL = """
const { LogMel } = await import(STATIC + "/logmel.js");
const mels = new LogMel(input.config).compute(Float32Array.from(input.window));
console.log(JSON.stringify({ mels: Array.from(mels) }));
"""


@pytest.mark.parametrize("config", [
    {"sample_rate": 44100},  # CLAP 2022: bins 2..325 of the real FFT's split pass
    {"sample_rate": 16000, "f_max": 8000.0, "n_fft": 512, "win_length": 400},  # centred window
    {"sample_rate": 16000, "f_max": 8000.0, "n_fft": 1000, "win_length": 1000},  # not 2^k: DFT
], ids=["clap2022", "n_fft_512", "n_fft_1000"])  # fmt: skip
def test_logmels_equal_the_float64_reference_at_other_settings(config):
    rng = np.random.default_rng(1)
    rate = config["sample_rate"]
    t = np.arange(rate) / rate
    window = 0.3 * np.sin(2 * np.pi * 1234.5 * t) + 0.05 * rng.standard_normal(rate)
    window = window.astype(np.float32)
    got = run_node(LOGMEL, {"config": config, "window": window.tolist()})
    ref = _reference_logmel(window, config)
    mels = np.array(got["mels"]).reshape(ref.shape)
    # float64 on both sides, the output rounded to float32 (as above): 2e-5 dB
    np.testing.assert_allclose(mels, ref, rtol=0, atol=2e-5)


def test_not_a_wav_is_recognised():
    script = """
const { readWav } = await import(STATIC + "/audio.js");
const bytes = new TextEncoder().encode(input.text);
let error = "";
try { readWav(new TextEncoder().encode("RIFF\\0\\0\\0\\0WAVEjunk").buffer); } catch (e) { error = e.message; }
console.log(JSON.stringify({ plain: readWav(bytes.buffer), error }));
"""
    got = run_node(script, {"text": "not audio at all"})
    assert got["plain"] is None and "without a data chunk" in got["error"]
