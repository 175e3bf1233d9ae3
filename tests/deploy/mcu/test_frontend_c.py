"""The generated C99 log-mel frontend against the host frontend, compiled with the system cc.

The C code computes in float32 (a radix-2 real FFT, a sparse mel product,
``log10f``); :class:`HostLogMel` computes in float32 too (pocketfft, BLAS), so
both are compared with a float64 reference of the same definition. Tolerances:

* bins within 60 dB of the clip's loudest bin: 0.005 dB. Float32 rounding in a
  1024-point FFT and a ~20-term mel sum gives relative power errors of about
  1e-6 (measured here: C and host both within 3e-5 dB of float64 on noise);
  0.005 dB is a relative error of 1.2e-3, room for any FMA / vector order, yet
  a window or hop error moves these bins by tenths of a dB or more;
* every bin: 0.5 dB. Bins 60-100 dB below the peak (far from a pure tone) hold
  float32 rounding noise of the FFT itself (about 1e-7 of the peak amplitude),
  which differs between any two float32 FFTs: the host is up to 0.08 dB off
  float64 there; 0.5 dB bounds that with margin, the -100 dB floor (amin) caps it.
"""

import ctypes
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from tinyclap.deploy.mcu.frontend_c import C_FLAGS, frontend_ram_bytes, write_frontend
from tinyclap.runtime.frontend import HostLogMel

CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler")
LOUD_TOL, ALL_TOL, LOUD_RANGE = 5e-3, 0.5, 60.0
FRONTENDS = [({"sample_rate": 16000, "f_max": 8000.0}, 1.0), ({}, 5.0)]  # tests' and CLAP 2022


def compile_frontend(config, seconds, folder):
    """The C frontend of ``config`` as a shared library (ctypes)."""
    paths = write_frontend(config, seconds, folder)
    lib = folder / "libfrontend.so"
    subprocess.run([CC, *C_FLAGS, "-shared", "-fPIC", str(paths["frontend.c"]), "-o", str(lib),
                    "-lm"], check=True, capture_output=True)  # fmt: skip
    return ctypes.CDLL(str(lib))


def c_logmel(lib, config, wave):
    host = HostLogMel.from_config(config)
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    out = np.zeros((host.num_frames(len(wave)), host.n_mels), np.float32)
    state = ctypes.create_string_buffer(frontend_ram_bytes(host))
    lib.tinyclap_frontend_logmel(state, wave.ctypes.data_as(ctypes.c_void_p),
                                 ctypes.c_int(len(wave)), out.ctypes.data_as(ctypes.c_void_p))  # fmt: skip
    return out


def float64_logmel(config, wave):
    host = HostLogMel.from_config(config)
    frames = host.frames(np.asarray(wave, np.float64)[None])[0] * host.window.astype(np.float64)
    power = np.abs(np.fft.rfft(frames, axis=-1)[:, host.first_bin : host.last_bin]) ** 2
    mel = power @ host.mel_fb.astype(np.float64)
    return 10 * np.log10(np.maximum(mel, host.amin)) - host.offset_db


def clips(folder, sample_rate, seconds):
    """Real-format wav clips (PCM_16 and float): noise, a tone, near silence, a chirp."""
    rng = np.random.default_rng(0)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    waves = {
        "noise": 0.3 * rng.standard_normal(n),
        "tone": 0.5 * np.sin(2 * np.pi * 440 * t),
        "quiet": 1e-4 * rng.standard_normal(n),
        "chirp": 0.4 * np.sin(2 * np.pi * (200 + 1500 * t / seconds) * t),
    }
    out = {}
    for i, (name, wave) in enumerate(waves.items()):
        path = folder / f"{name}.wav"
        sf.write(path, np.clip(wave, -1, 1), sample_rate, subtype="PCM_16" if i % 2 else "FLOAT")
        out[name] = sf.read(path, dtype="float32")[0]
    return out


def errors(c, reference):
    loud = reference >= reference.max() - LOUD_RANGE
    return float(np.abs(c - reference)[loud].max()), float(np.abs(c - reference).max())


@pytest.mark.parametrize("config,seconds", FRONTENDS)
def test_c_frontend_matches_host_logmel(tmp_path, config, seconds):
    lib = compile_frontend(config, seconds, tmp_path)
    host = HostLogMel.from_config(config)
    for name, wave in clips(tmp_path, host.sample_rate, seconds).items():
        c, ref, host_out = c_logmel(lib, config, wave), float64_logmel(config, wave), host(wave)
        assert c.shape == host_out.shape
        loud, worst = errors(c, ref)
        assert loud <= LOUD_TOL and worst <= ALL_TOL, (name, loud, worst)
        # and C against the host frontend itself: both within the bounds of float64
        assert np.abs(c - host_out).max() <= 2 * ALL_TOL, name


@pytest.mark.parametrize("change", [{"hop_length": 321}, {"win_length": 960}, {"f_min": 60.0}])
def test_a_wrong_setting_breaks_the_tolerance(tmp_path, change):
    """A frontend built with a wrong hop, window or mel range fails the parity bound."""
    config, seconds = FRONTENDS[0]
    lib = compile_frontend({**config, **change}, seconds, tmp_path)
    wave = clips(tmp_path, 16000, seconds)["chirp"]
    c, ref = c_logmel(lib, {**config, **change}, wave), float64_logmel(config, wave)
    frames = min(len(c), len(ref))
    loud, _ = errors(c[:frames], ref[:frames])
    assert loud > 10 * LOUD_TOL


def test_int8_output_is_the_quantised_log_mel(tmp_path):
    config, seconds = FRONTENDS[0]
    lib = compile_frontend(config, seconds, tmp_path)
    wave = clips(tmp_path, 16000, seconds)["noise"]
    scale, zero = 0.4, 17
    out = np.zeros((51, 64), np.int8)
    state = ctypes.create_string_buffer(frontend_ram_bytes(HostLogMel.from_config(config)))
    lib.tinyclap_frontend_logmel_int8(state, wave.ctypes.data_as(ctypes.c_void_p),
                                      ctypes.c_int(len(wave)), ctypes.c_float(scale),
                                      ctypes.c_int(zero), out.ctypes.data_as(ctypes.c_void_p))  # fmt: skip
    expected = np.clip(np.round(c_logmel(lib, config, wave) / scale) + zero, -128, 127)
    # roundf rounds halves away from zero, numpy to even: they may differ at exact halves only
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert np.mean(out == expected) > 0.99


def test_non_power_of_two_fft_is_refused(tmp_path):
    with pytest.raises(ValueError, match="n_fft=1000.*power of 2"):
        write_frontend({"sample_rate": 16000, "n_fft": 1000, "win_length": 1000, "f_max": 8000.0},
                       1.0, tmp_path)  # fmt: skip
