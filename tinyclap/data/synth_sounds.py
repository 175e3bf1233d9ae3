"""Procedural sound classes with captions: the offline embedded dataset.

Every class in :data:`SYNTH_CLASSES` is rendered from scratch with numpy and
scipy (additive tones, filtered noise, resonators, Karplus-Strong strings,
event trains). Each rendering draws its own parameters (pitch, rate, event
lengths, timbre, onset position, loudness) from the random generator it is
given, so two clips of one class differ while the class keeps a recognisable
spectro-temporal signature. :func:`render_example` adds a coloured-noise bed
and optionally a second class; :func:`make_caption` writes a free-form English
caption for the labels.

All randomness flows through explicit :class:`numpy.random.Generator`
objects: seed one per example (see :func:`example_rng`) and the output is
bit-identical whatever the order of generation.

Example
-------
>>> rng = example_rng(seed=0, split_index=0, index=3)
>>> wav, labels = render_example(rng, "siren", 16000, 2.0, second_label="rain")
>>> wav.shape, wav.dtype, labels
((32000,), dtype('float32'), ['siren', 'rain'])
>>> caption = make_caption(labels, rng)
"""

import numpy as np
from scipy import signal

from tinyclap.data.label_sets import SYNTH_CLASSES


# Ranges drawn per example by :func:`render_example`.
SNR_RANGE_DB = (15.0, 35.0)
SECOND_LEVEL_RANGE_DB = (-10.0, 0.0)
PEAK_RANGE = (0.3, 0.95)
NOISE_EXPONENT_RANGE = (0.5, 2.0)  # pink to brown

_MAX_FREQ_FRACTION = 0.45  # highest synthesised frequency, as a fraction of sr


# --------------------------------------------------------------------------
# Signal building blocks
# --------------------------------------------------------------------------


def _safe_freq(freq, sample_rate):
    """Clamp ``freq`` below the Nyquist frequency of ``sample_rate``."""
    return float(min(freq, _MAX_FREQ_FRACTION * sample_rate))


def _bandpass(x, sample_rate, low, high, order=2):
    """Butterworth band-pass ``x`` between ``low`` and ``high`` Hz."""
    high = _safe_freq(high, sample_rate)
    low = min(low, 0.8 * high)
    sos = signal.butter(order, [low, high], "bandpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def _lowpass(x, sample_rate, cutoff, order=2):
    """Butterworth low-pass ``x`` at ``cutoff`` Hz."""
    cutoff = _safe_freq(cutoff, sample_rate)
    sos = signal.butter(order, cutoff, "lowpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def _highpass(x, sample_rate, cutoff, order=2):
    """Butterworth high-pass ``x`` at ``cutoff`` Hz."""
    cutoff = _safe_freq(cutoff, sample_rate)
    sos = signal.butter(order, cutoff, "highpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def _impulses(n_samples, sample_rate, times, amplitudes=None):
    """Return a train of impulses at ``times`` (seconds) inside ``n_samples``."""
    train = np.zeros(n_samples)
    positions = np.round(np.asarray(times, dtype=float) * sample_rate).astype(int)
    if amplitudes is None:
        amplitudes = np.ones(len(positions))
    keep = (positions >= 0) & (positions < n_samples)
    np.add.at(train, positions[keep], np.asarray(amplitudes, dtype=float)[keep])
    return train


def _decay(x, sample_rate, decay_s):
    """Smear ``x`` with a one-pole exponential decay of time constant ``decay_s``."""
    pole = np.exp(-1.0 / (decay_s * sample_rate))
    return signal.lfilter([1.0], [1.0, -pole], x)


def _resonate(x, sample_rate, freq, decay_s):
    """Ring ``x`` through a two-pole resonator at ``freq`` Hz (unit peak gain)."""
    radius = np.exp(-1.0 / (decay_s * sample_rate))
    omega = 2 * np.pi * _safe_freq(freq, sample_rate) / sample_rate
    feedback = [1.0, -2 * radius * np.cos(omega), radius**2]
    return signal.lfilter([1.0 - radius], feedback, x)


def _phase(freq_track, sample_rate):
    """Integrate an instantaneous frequency track (Hz) into a phase (radians)."""
    return 2 * np.pi * np.cumsum(freq_track) / sample_rate


def _harmonic_tone(f0_track, sample_rate, weight_fn, max_freq=None, rng=None):
    """Sum the harmonics of ``f0_track``, each weighted by ``weight_fn``.

    ``weight_fn(k, harmonic_freq)`` returns the amplitude (scalar or per-sample
    array) of harmonic number ``k`` whose instantaneous frequency is
    ``harmonic_freq``. Harmonics above ``max_freq`` (default: the Nyquist
    margin) are muted sample by sample, so the tone never aliases.
    """
    limit = _safe_freq(max_freq or sample_rate, sample_rate)
    phase = _phase(f0_track, sample_rate)
    n_harmonics = max(1, int(limit / max(np.min(f0_track), 20.0)))
    if rng is None:
        offsets = np.zeros(n_harmonics)
    else:
        offsets = rng.uniform(0, 2 * np.pi, n_harmonics)
    tone = np.zeros_like(phase)
    for k in range(1, n_harmonics + 1):
        harmonic_freq = k * f0_track
        weight = weight_fn(k, harmonic_freq) * (harmonic_freq < limit)
        tone += weight * np.sin(k * phase + offsets[k - 1])
    return tone


def _coloured_noise(rng, n_samples, exponent):
    """Noise whose power spectrum falls as ``1 / f**exponent`` (0 white, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    freqs = np.arange(len(spectrum), dtype=float)
    freqs[0] = 1.0
    spectrum *= freqs ** (-exponent / 2.0)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n_samples)
    return noise / (np.std(noise) + 1e-12)


def _slow_random(rng, n_samples, sample_rate, rate_hz):
    """Smooth random curve in [0, 1] that varies at about ``rate_hz``."""
    n_knots = max(2, int(np.ceil(n_samples / sample_rate * rate_hz)) + 2)
    knots = rng.random(n_knots)
    positions = np.linspace(0, n_knots - 1, n_samples)
    return np.interp(positions, np.arange(n_knots), knots)


def _fade_envelope(n_samples, start, stop, fade_in, fade_out):
    """Gate that is 1 on ``[start, stop)`` samples with linear fades."""
    index = np.arange(n_samples)
    rise = np.clip((index - start) / max(fade_in, 1), 0, 1)
    fall = np.clip((stop - index) / max(fade_out, 1), 0, 1)
    return np.minimum(rise, fall)


def _onset(rng, duration, latest_s, latest_fraction=0.3):
    """Random onset (seconds), at most ``latest_s`` and a fraction of the clip."""
    return rng.uniform(0.0, min(latest_s, latest_fraction * duration))


def _active_region(rng, n_samples, sample_rate, min_fraction=0.6):
    """Random gate for a continuous sound: random length, onset and fades."""
    length = max(1, int(n_samples * rng.uniform(min_fraction, 1.0)))
    start = int(rng.integers(0, n_samples - length + 1))
    longest_fade = min(0.3, 0.25 * length / sample_rate)
    fade_in = int(sample_rate * rng.uniform(0.1, 1.0) * longest_fade)
    fade_out = int(sample_rate * rng.uniform(0.1, 1.0) * longest_fade)
    return _fade_envelope(n_samples, start, start + length, fade_in, fade_out)


def _event_times(rng, duration, rate_hz, jitter=0.0, start=None, count=None):
    """Regular event times (seconds) at ``rate_hz`` with relative ``jitter``."""
    period = 1.0 / rate_hz
    if start is None:
        start = rng.uniform(0.0, min(period, 0.5 * duration))
    if count is None:
        count = int(np.floor((duration - start) / period)) + 1
    steps = period * (1.0 + jitter * rng.standard_normal(count))
    times = start + np.concatenate([[0.0], np.cumsum(steps[:-1])])
    return times[(times >= 0) & (times < duration)]


def _poisson_times(rng, duration, rate_hz, start=0.0, stop=None, at_least_one=False):
    """Random event times of a Poisson process on ``[start, stop)`` seconds.

    With ``at_least_one`` an empty draw is replaced by a single event, so that
    short clips of sparse classes are never silent.
    """
    stop = duration if stop is None else max(stop, start)
    count = rng.poisson(rate_hz * (stop - start))
    if at_least_one:
        count = max(count, 1)
    return np.sort(rng.uniform(start, stop, count))


def _add_at(out, event, start):
    """Add ``event`` into ``out`` from sample ``start``, cropping at the end."""
    start = int(start)
    if start >= len(out) or start + len(event) <= 0:
        return out
    begin = max(start, 0)
    stop = min(start + len(event), len(out))
    out[begin:stop] += event[begin - start : stop - start]
    return out


def _attack_decay(n_samples, sample_rate, attack_s, decay_s):
    """Envelope rising linearly over ``attack_s`` then decaying exponentially."""
    t = np.arange(n_samples) / sample_rate
    rise = np.clip(t / max(attack_s, 1e-4), 0, 1)
    return rise * np.exp(-np.maximum(t - attack_s, 0) / decay_s)


def _note_envelope(n_samples, sample_rate, attack_s, release_s):
    """Sustained-note envelope: linear attack, flat, linear release."""
    return _fade_envelope(
        n_samples,
        0,
        n_samples,
        int(attack_s * sample_rate),
        int(release_s * sample_rate),
    )


# --------------------------------------------------------------------------
# One renderer per class: (rng, sample_rate, n_samples) -> float64 signal
# --------------------------------------------------------------------------


def _siren(rng, sr, n):
    """Harmonic tone sweeping up and down (slow wail or fast yelp)."""
    t = np.arange(n) / sr
    centre = rng.uniform(650, 1100)
    depth = rng.uniform(0.25, 0.45) * centre
    rate = rng.uniform(0.25, 0.6) if rng.random() < 0.5 else rng.uniform(2.0, 4.0)
    f0 = centre + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    rolloff = rng.uniform(0.8, 2.0)
    tone = _harmonic_tone(f0, sr, lambda k, f: k**-rolloff, max_freq=5000)
    return tone * _active_region(rng, n, sr, 0.7)


def _rain(rng, sr, n):
    """Broadband hiss with a dense shower of tiny droplet clicks."""
    duration = n / sr
    hiss = _bandpass(rng.standard_normal(n), sr, rng.uniform(400, 1500), rng.uniform(5000, 7500))
    drop_times = _poisson_times(rng, duration, rng.uniform(80, 250))
    drop_amps = rng.uniform(0.2, 1.0, len(drop_times)) ** 2
    drop_env = _decay(_impulses(n, sr, drop_times, drop_amps), sr, 0.003)
    drops = _highpass(rng.standard_normal(n) * drop_env, sr, rng.uniform(1500, 3000))
    mix = rng.uniform(0.3, 1.0) * hiss / np.std(hiss) + drops / (np.std(drops) + 1e-9)
    swell = 0.8 + 0.2 * _slow_random(rng, n, sr, 1.0)
    return mix * swell * _active_region(rng, n, sr, 0.8)


def _engine_idling(rng, sr, n):
    """Low pulse-like harmonic drone with cylinder unevenness and rumble."""
    t = np.arange(n) / sr
    firing = rng.uniform(25, 50)
    wobble = 1 + 0.02 * (_slow_random(rng, n, sr, 2.0) - 0.5)
    rolloff = rng.uniform(0.6, 1.2)
    tone = _harmonic_tone(firing * wobble, sr, lambda k, f: k**-rolloff, max_freq=1200, rng=rng)
    uneven = 1 + rng.uniform(0.2, 0.5) * np.sin(np.pi * firing * t)
    rumble = _lowpass(rng.standard_normal(n), sr, rng.uniform(150, 400))
    tone = tone * uneven / np.std(tone)
    engine = tone + rng.uniform(0.2, 0.6) * rumble / np.std(rumble)
    engine = _lowpass(engine, sr, rng.uniform(600, 1200))
    return engine * _active_region(rng, n, sr, 0.75)


def _birds_chirping(rng, sr, n):
    """Short high chirps sweeping in pitch, often in quick trills."""
    out = np.zeros(n)
    duration = n / sr
    starts = _poisson_times(
        rng, duration, rng.uniform(1.5, 3.5), 0, 0.9 * duration, at_least_one=True
    )
    for start in starts:
        base = rng.uniform(3000, 5500)
        sweep = rng.choice([-1, 1]) * rng.uniform(500, 2000)
        chirp_len = int(sr * rng.uniform(0.03, 0.12))
        trill_rate = rng.uniform(8, 15)
        for repeat in range(int(rng.integers(1, 6))):
            chirp_t = np.arange(chirp_len) / chirp_len
            freq = np.clip(base + sweep * chirp_t, 800, _safe_freq(8000, sr))
            phase = _phase(freq, sr)
            chirp = np.sin(phase) + 0.15 * np.sin(2 * phase)
            chirp *= np.hanning(chirp_len) * rng.uniform(0.5, 1.0)
            _add_at(out, chirp, sr * (start + repeat / trill_rate))
    return out


def _dog_barking(rng, sr, n):
    """A few short harsh harmonic barks with a rise-fall pitch contour."""
    out = np.zeros(n)
    time = _onset(rng, n / sr, 0.5)
    for _ in range(int(rng.integers(1, 5))):
        bark_len = int(sr * rng.uniform(0.12, 0.3))
        bark_t = np.arange(bark_len) / bark_len
        f0 = rng.uniform(250, 600) * (1 + 0.3 * np.sin(np.pi * bark_t))
        tone = _harmonic_tone(f0, sr, lambda k, f: k**-0.5, max_freq=5000, rng=rng)
        noise = rng.standard_normal(bark_len) * rng.uniform(0.4, 1.0)
        voice = _bandpass(
            tone / np.std(tone) + noise,
            sr,
            rng.uniform(250, 450),
            rng.uniform(3000, 4500),
        )
        envelope = _attack_decay(bark_len, sr, 0.01, rng.uniform(0.05, 0.12))
        _add_at(out, voice * envelope * rng.uniform(0.6, 1.0), time * sr)
        time += bark_len / sr + rng.uniform(0.1, 0.45)
    return out


def _clock_ticking(rng, sr, n):
    """Very regular, very short high clicks alternating tick and tock."""
    times = _event_times(rng, n / sr, rng.uniform(2.0, 4.0), jitter=0.005)
    tock_ratio = rng.uniform(0.75, 0.92)
    pitch = rng.uniform(2000, 4500)
    out = np.zeros(n)
    for parity, amp in ((0, 1.0), (1, rng.uniform(0.6, 1.0))):
        clicks = _impulses(n, sr, times[parity::2], amp * np.ones(len(times[parity::2])))
        freq = pitch * (1.0 if parity == 0 else tock_ratio)
        out += _resonate(clicks, sr, freq, rng.uniform(0.002, 0.006))
        out += 0.3 * _resonate(clicks, sr, 2.7 * freq, 0.002)
    return out


def _church_bell(rng, sr, n):
    """Inharmonic bell partials with long decays, struck once or twice."""
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.67, 3.0, 4.0])
    f0 = rng.uniform(200, 550)
    freqs = f0 * ratios * (1 + 0.01 * rng.standard_normal(len(ratios)))
    amps = rng.uniform(0.3, 1.0, len(ratios))
    decays = rng.uniform(1.5, 3.0) / ratios**0.7
    strikes = [_onset(rng, n / sr, 0.5)]
    if rng.random() < 0.5:
        strikes.append(strikes[0] + rng.uniform(0.8, 1.3))
    strike_train = _impulses(n, sr, strikes, [1.0, rng.uniform(0.5, 1.0)][: len(strikes)])
    out = np.zeros(n)
    for freq, amp, decay in zip(freqs, amps, decays):
        if freq < _MAX_FREQ_FRACTION * sr:
            out += amp * _resonate(strike_train, sr, freq, decay)
    clang = _highpass(rng.standard_normal(n), sr, 2000) * _decay(strike_train, sr, 0.01)
    return out / (np.max(np.abs(out)) + 1e-9) + 0.2 * clang


def _knocking(rng, sr, n):
    """Groups of fast woody knocks: damped low-mid resonance plus a click."""
    duration = n / sr
    times = []
    group_start = _onset(rng, duration, 0.4)
    for _ in range(int(rng.integers(1, 3))):
        count = int(rng.integers(2, 6))
        times.extend(_event_times(rng, duration, rng.uniform(5, 9), 0.05, group_start, count))
        group_start = times[-1] + rng.uniform(0.35, 0.8)
    hits = _impulses(n, sr, times, rng.uniform(0.6, 1.0, len(times)))
    wood = _resonate(hits, sr, rng.uniform(120, 350), rng.uniform(0.015, 0.04))
    wood += 0.5 * _resonate(hits, sr, rng.uniform(500, 900), 0.01)
    click = _bandpass(rng.standard_normal(n), sr, 1000, 3000) * _decay(hits, sr, 0.003)
    return wood / (np.max(np.abs(wood)) + 1e-9) + rng.uniform(0.1, 0.3) * click


def _applause(rng, sr, n):
    """Dense overlapping hand claps: band-limited noise bursts, swelling."""
    duration = n / sr
    times = _poisson_times(rng, duration, rng.uniform(25, 70), at_least_one=True)
    claps = _impulses(n, sr, times, rng.uniform(0.3, 1.0, len(times)))
    envelope = _decay(claps, sr, rng.uniform(0.005, 0.015))
    centre = rng.uniform(1000, 2500)
    noise = _bandpass(rng.standard_normal(n) * envelope, sr, 0.4 * centre, 2.5 * centre)
    swell = 0.6 + 0.4 * _slow_random(rng, n, sr, 1.0)
    return noise * swell * _active_region(rng, n, sr, 0.7)


def _wind(rng, sr, n):
    """Low rushing noise whose colour and level move with slow gusts."""
    low = _bandpass(rng.standard_normal(n), sr, 60, rng.uniform(250, 500))
    high = _bandpass(rng.standard_normal(n), sr, rng.uniform(300, 600), rng.uniform(900, 1800))
    gust = _slow_random(rng, n, sr, rng.uniform(0.7, 2.0))
    mix = low / np.std(low) * (1 - 0.6 * gust) + high / np.std(high) * gust
    return mix * (0.3 + 0.7 * gust) * _active_region(rng, n, sr, 0.8)


def _alarm_beeping(rng, sr, n):
    """High square-ish tone switched on and off in a strict beep pattern."""
    t = np.arange(n) / sr
    freq = rng.uniform(2000, 3500)
    phase = 2 * np.pi * freq * t
    tone = sum(np.sin(k * phase) / k for k in (1, 3, 5) if k * freq < _MAX_FREQ_FRACTION * sr)
    period = rng.uniform(0.2, 0.5)
    duty = rng.uniform(0.3, 0.6)
    cycle = ((t - _onset(rng, n / sr, period)) % period) / period
    gate = _lowpass((cycle < duty).astype(float), sr, 300)
    return tone * gate * _active_region(rng, n, sr, 0.7)


def _plucked_string(rng, sr, n):
    """One to four Karplus-Strong plucked notes at random pitches and times."""
    out = np.zeros(n)
    start = _onset(rng, n / sr, 0.4)
    for _ in range(int(rng.integers(1, 5))):
        f0 = rng.uniform(110, 660)
        delay = max(2, round(sr / f0))
        feedback = np.zeros(delay + 2)
        feedback[0] = 1.0
        feedback[delay : delay + 2] = -0.5 * rng.uniform(0.99, 0.999)
        burst = _lowpass(rng.standard_normal(delay), sr, rng.uniform(2000, 7000))
        excitation = np.zeros(n - int(start * sr))
        excitation[:delay] = burst
        note = signal.lfilter([1.0], feedback, excitation)
        _add_at(out, note / (np.max(np.abs(note)) + 1e-9), start * sr)
        start += rng.uniform(0.2, 0.6)
        if start >= n / sr:
            break
    return out


def _footsteps(rng, sr, n):
    """Walking steps: low heel thump plus a gritty scuff, left-right alternating."""
    times = _event_times(rng, n / sr, rng.uniform(1.6, 2.5), jitter=0.05)
    side_amps = np.where(np.arange(len(times)) % 2 == 0, 1.0, rng.uniform(0.7, 1.0))
    steps = _impulses(n, sr, times, side_amps)
    thump = _resonate(steps, sr, rng.uniform(60, 120), rng.uniform(0.03, 0.06))
    grain = rng.standard_normal(n) * (rng.random(n) < rng.uniform(0.05, 0.3))
    scuff_env = _decay(steps, sr, rng.uniform(0.04, 0.1))
    scuff = _bandpass(grain * scuff_env, sr, rng.uniform(700, 1200), rng.uniform(3000, 5000))
    thump /= np.max(np.abs(thump)) + 1e-9
    scuff /= np.max(np.abs(scuff)) + 1e-9
    return thump + rng.uniform(0.3, 1.0) * scuff


def _water_dripping(rng, sr, n):
    """Irregular water drops: short decaying tones whose pitch shoots upwards."""
    out = np.zeros(n)
    times = _poisson_times(rng, n / sr, rng.uniform(2.0, 5.0), 0.0, 0.8 * n / sr, at_least_one=True)
    base = rng.uniform(1000, 2200)
    for time in times:
        drop_len = int(sr * 0.08)
        drop_t = np.arange(drop_len) / sr
        rise = rng.uniform(1.3, 2.0)
        freq = base * rng.uniform(0.85, 1.15) * (1 + (rise - 1) * (1 - np.exp(-drop_t / 0.015)))
        drop = np.sin(_phase(freq, sr)) * np.exp(-drop_t / rng.uniform(0.01, 0.03))
        _add_at(out, drop * rng.uniform(0.5, 1.0), time * sr)
    if rng.random() < 0.5:  # a cave-like echo tail
        tail = rng.standard_normal(int(0.3 * sr)) * np.exp(-np.arange(int(0.3 * sr)) / (0.08 * sr))
        tail[0] = 30.0
        out = signal.fftconvolve(out, tail)[:n]
    return out


def _crackling_fire(rng, sr, n):
    """Low roaring rumble with sparse sharp crackles of heavy-tailed loudness."""
    rumble = _lowpass(rng.standard_normal(n), sr, rng.uniform(200, 500))
    times = _poisson_times(rng, n / sr, rng.uniform(8, 25))
    amps = np.minimum(rng.pareto(1.5, len(times)) + 0.2, 6.0)
    pops = _decay(_impulses(n, sr, times, amps), sr, rng.uniform(0.001, 0.004))
    crackle = _highpass(rng.standard_normal(n) * pops, sr, rng.uniform(1000, 2500))
    rumble *= rng.uniform(0.1, 0.3) / np.std(rumble)
    crackle /= np.max(np.abs(crackle)) + 1e-9
    return (rumble + crackle) * _active_region(rng, n, sr, 0.8)


def _heartbeat(rng, sr, n):
    """Low lub-dub thump pairs at a resting-to-racing heart rate."""
    period = 60.0 / rng.uniform(55, 130)
    lubs = _event_times(rng, n / sr, 1.0 / period, jitter=0.02)
    dubs = lubs + period * rng.uniform(0.3, 0.4)
    lub = _resonate(_impulses(n, sr, lubs), sr, rng.uniform(40, 70), 0.04)
    dub_amps = rng.uniform(0.5, 0.9) * np.ones(len(dubs))
    dub = _resonate(_impulses(n, sr, dubs, dub_amps), sr, rng.uniform(60, 100), 0.03)
    return _lowpass(lub + dub, sr, rng.uniform(150, 300))


def _phone_ringing(rng, sr, n):
    """Mid-pitched tone trilling between two pitches, in ring bursts."""
    t = np.arange(n) / sr
    low = rng.uniform(700, 1400)
    high = low * rng.uniform(1.15, 1.35)
    trill = rng.uniform(15, 25)
    switch = (np.sin(2 * np.pi * trill * t) >= 0).astype(float)
    freq = low + (high - low) * np.clip(_lowpass(switch, sr, 200), 0, 1)
    bright = rng.uniform(0.1, 0.4)
    tone = _harmonic_tone(freq, sr, lambda k, f: bright ** (k - 1), max_freq=6000)
    on_s, off_s = rng.uniform(0.4, 1.0), rng.uniform(0.2, 0.6)
    cycle = (t - _onset(rng, n / sr, on_s + off_s, 0.5)) % (on_s + off_s)
    gate = _lowpass((cycle < on_s).astype(float), sr, 100)
    return tone * gate


def _whistle(rng, sr, n):
    """Nearly pure high whistled melody with vibrato, glides and breath."""
    t = np.arange(n) / sr
    n_notes = int(rng.integers(2, 6))
    base = rng.uniform(1200, 2500)
    note_freqs = base * 2 ** (rng.integers(-4, 8, n_notes) / 12)
    start, stop = int(_onset(rng, n / sr, 0.4) * sr), int(n * rng.uniform(0.75, 1.0))
    index = np.clip((np.arange(n) - start) * n_notes // max(stop - start, 1), 0, n_notes - 1)
    glide = _lowpass(note_freqs[index], sr, rng.uniform(10, 30))
    vibrato = 1 + rng.uniform(0.005, 0.02) * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
    tone = np.sin(_phase(glide * vibrato, sr))
    breath = _bandpass(rng.standard_normal(n), sr, 0.8 * base, 1.3 * base)
    voice = tone + rng.uniform(0.02, 0.1) * breath / np.std(breath)
    gate = _fade_envelope(n, start, stop, int(0.03 * sr), int(0.08 * sr))
    return voice * gate


def _drum_roll(rng, sr, n):
    """Rapid regular snare strokes: noise burst plus tone, with a crescendo."""
    duration = n / sr
    length = duration * rng.uniform(0.4, 0.95)
    start = rng.uniform(0, duration - length)
    times = _event_times(rng, duration, rng.uniform(14, 24), 0.04, start)
    times = times[times < start + length]
    ramp = np.linspace(*(rng.uniform(0.2, 0.5), 1.0)[:: rng.choice([1, -1])], len(times))
    strokes = _impulses(n, sr, times, ramp * rng.uniform(0.8, 1.0, len(times)))
    snare = _bandpass(
        rng.standard_normal(n) * _decay(strokes, sr, rng.uniform(0.02, 0.05)),
        sr,
        1000,
        6000,
    )
    body = _resonate(strokes, sr, rng.uniform(160, 240), 0.03)
    snare /= np.max(np.abs(snare)) + 1e-9
    body /= np.max(np.abs(body)) + 1e-9
    return snare + rng.uniform(0.3, 0.7) * body


def _helicopter(rng, sr, n):
    """Rotor chop (noise gated by sharp blade pulses) plus turbine whine."""
    t = np.arange(n) / sr
    blade_rate = rng.uniform(6, 14)
    sharpness = rng.uniform(4, 10)
    pulses = np.abs(np.sin(np.pi * blade_rate * t + rng.uniform(0, np.pi))) ** sharpness
    chop = _lowpass(rng.standard_normal(n), sr, rng.uniform(1500, 3500)) * pulses
    thump = _resonate(pulses - pulses.mean(), sr, rng.uniform(50, 90), 0.02)
    whine = np.sin(2 * np.pi * rng.uniform(1000, 3000) * t)
    chop /= np.std(chop)
    thump /= np.std(thump) + 1e-9
    level = 0.7 + 0.3 * _slow_random(rng, n, sr, 0.5)
    heli = chop + rng.uniform(0.3, 0.8) * thump + rng.uniform(0.05, 0.2) * whine
    return heli * level * _active_region(rng, n, sr, 0.8)


def _car_horn(rng, sr, n):
    """Loud buzzy two-note chord held for one to three honks."""
    f_low = rng.uniform(350, 500)
    f_high = f_low * rng.uniform(1.2, 1.3)
    out = np.zeros(n)
    time = _onset(rng, n / sr, 0.5)
    for _ in range(int(rng.integers(1, 4))):
        honk_len = int(sr * rng.uniform(0.2, 1.0))
        chord = sum(
            _harmonic_tone(np.full(honk_len, f), sr, lambda k, hf: 1.0 / k, 4000, rng)
            for f in (f_low, f_high)
        )
        chord = _bandpass(chord, sr, 300, rng.uniform(2000, 3500))
        _add_at(out, chord * _note_envelope(honk_len, sr, 0.01, 0.03), time * sr)
        time += honk_len / sr + rng.uniform(0.1, 0.3)
    return out


def _thunder(rng, sr, n):
    """A sharp crack followed by a long low rumble rolling away."""
    onset = _onset(rng, n / sr, 0.6)
    n_rolls = int(rng.integers(2, 6))
    roll_times = onset + np.sort(rng.uniform(0, 0.4 * n / sr, n_rolls))
    rolls = _impulses(n, sr, roll_times, rng.uniform(0.3, 1.0, n_rolls))
    rumble_env = _decay(_lowpass(rolls, sr, 8), sr, rng.uniform(0.5, 1.2))
    rumble = _lowpass(_coloured_noise(rng, n, 1.0), sr, rng.uniform(200, 800))
    crack = _decay(_impulses(n, sr, [onset]), sr, rng.uniform(0.02, 0.06))
    crack = _highpass(rng.standard_normal(n) * crack, sr, 500)
    rumble *= rumble_env / (np.max(rumble_env) + 1e-9)
    rumble /= np.max(np.abs(rumble)) + 1e-9
    crack /= np.max(np.abs(crack)) + 1e-9
    return rumble + rng.uniform(0.3, 0.8) * crack


def _bees_buzzing(rng, sr, n):
    """Buzzy sawtooth drones around 200 Hz that wobble in pitch and level."""
    out = np.zeros(n)
    for _ in range(int(rng.integers(1, 4))):
        f0 = rng.uniform(180, 260)
        wobble = 1 + rng.uniform(0.04, 0.1) * (_slow_random(rng, n, sr, 3.0) - 0.5)
        level = 0.4 + 0.6 * _slow_random(rng, n, sr, 1.0)
        out += level * _harmonic_tone(f0 * wobble, sr, lambda k, f: 1.0 / k, 5000, rng)
    return out * _active_region(rng, n, sr, 0.7)


def _cat_meowing(rng, sr, n):
    """One or two meows: rise-fall pitch with a formant that opens and closes."""
    out = np.zeros(n)
    time = _onset(rng, n / sr, 0.3)
    for _ in range(int(rng.integers(1, 3))):
        meow_len = int(sr * rng.uniform(0.4, 0.9))
        meow_t = np.arange(meow_len) / meow_len
        contour = np.sin(np.pi * meow_t ** rng.uniform(0.6, 1.0))
        f0 = rng.uniform(400, 600) + rng.uniform(200, 400) * contour
        formant = rng.uniform(700, 1000) + rng.uniform(800, 1400) * contour
        width = rng.uniform(300, 600)

        def formant_weight(k, harmonic_freq, formant=formant, width=width):
            return np.exp(-0.5 * ((harmonic_freq - formant) / width) ** 2) + 0.05 / k

        meow = _harmonic_tone(f0, sr, formant_weight, max_freq=6000, rng=rng)
        meow *= _note_envelope(meow_len, sr, 0.05, 0.15)
        _add_at(out, meow * rng.uniform(0.6, 1.0), time * sr)
        time += meow_len / sr + rng.uniform(0.1, 0.4)
    return out


_RENDERERS = {
    "siren": _siren,
    "rain": _rain,
    "engine idling": _engine_idling,
    "birds chirping": _birds_chirping,
    "dog barking": _dog_barking,
    "clock ticking": _clock_ticking,
    "church bell": _church_bell,
    "knocking": _knocking,
    "applause": _applause,
    "wind": _wind,
    "alarm beeping": _alarm_beeping,
    "plucked string": _plucked_string,
    "footsteps": _footsteps,
    "water dripping": _water_dripping,
    "crackling fire": _crackling_fire,
    "heartbeat": _heartbeat,
    "phone ringing": _phone_ringing,
    "whistle": _whistle,
    "drum roll": _drum_roll,
    "helicopter": _helicopter,
    "car horn": _car_horn,
    "thunder": _thunder,
    "bees buzzing": _bees_buzzing,
    "cat meowing": _cat_meowing,
}


# --------------------------------------------------------------------------
# Public rendering API
# --------------------------------------------------------------------------


def example_rng(seed, split_index, index):
    """Return the random generator owned by one example.

    Parameters
    ----------
    seed : int
        Dataset seed.
    split_index : int
        Index of the split (e.g. 0 train, 1 valid, 2 test).
    index : int
        Index of the example inside the split.

    Returns
    -------
    numpy.random.Generator
        A generator that depends only on the three integers, so examples can
        be rendered in any order or in parallel with identical results.

    Example
    -------
    >>> a = example_rng(1, 0, 5).random()
    >>> a == example_rng(1, 0, 5).random()
    True
    """
    return np.random.default_rng([int(seed), int(split_index), int(index)])


def _check_label(label):
    """Raise ``ValueError`` when ``label`` is not one of :data:`SYNTH_CLASSES`."""
    if label not in _RENDERERS:
        raise ValueError(f"unknown synth class {label!r}; known: {SYNTH_CLASSES}")


def generate_clip(label, rng, sample_rate=16000, duration=2.0):
    """Render one clean clip of the procedural class ``label``.

    Parameters
    ----------
    label : str
        One of :data:`SYNTH_CLASSES`.
    rng : numpy.random.Generator
        Source of every random parameter of the clip.
    sample_rate : int
        Sampling rate in Hz.
    duration : float
        Clip length in seconds.

    Returns
    -------
    numpy.ndarray
        float32 mono signal of exactly ``round(sample_rate * duration)``
        samples, peak-normalised to a random peak in :data:`PEAK_RANGE`.

    Example
    -------
    >>> clip = generate_clip("church bell", np.random.default_rng(0))
    >>> clip.shape, clip.dtype
    ((32000,), dtype('float32'))
    """
    _check_label(label)
    n_samples = round(float(sample_rate) * float(duration))
    if n_samples <= 0:
        raise ValueError(f"duration {duration} s gives no samples")
    clip = np.asarray(_RENDERERS[label](rng, sample_rate, n_samples), dtype=float)
    clip = np.nan_to_num(clip[:n_samples], nan=0.0, posinf=0.0, neginf=0.0)
    clip -= np.mean(clip)
    return _normalise_peak(clip, rng.uniform(*PEAK_RANGE)).astype(np.float32)


def _normalise_peak(wav, peak):
    """Scale ``wav`` so that its largest magnitude equals ``peak``."""
    largest = np.max(np.abs(wav))
    if not np.isfinite(largest) or largest <= 0:
        return np.zeros_like(wav)
    return wav * (peak / largest)


def _active_rms(wav, sample_rate):
    """RMS over the loudest quarter of 32 ms frames (level of the sound itself).

    Plain RMS underrates sparse sounds (a few clock ticks); measuring only the
    frames where the sound is present keeps the SNR meaningful for them.
    """
    frame = max(1, int(0.032 * sample_rate))
    n_frames = max(1, len(wav) // frame)
    frames = wav[: n_frames * frame].reshape(n_frames, -1)
    energies = np.sort(np.mean(frames**2, axis=1))[::-1]
    loudest = energies[: max(1, n_frames // 4)]
    return float(np.sqrt(np.mean(loudest))) + 1e-12


def render_example(
    rng,
    label,
    sample_rate=16000,
    duration=2.0,
    second_label=None,
    snr_db=None,
    second_level_db=None,
):
    """Render a dataset example: the clip, a noise bed and an optional second class.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random choice.
    label : str
        Primary class, one of :data:`SYNTH_CLASSES`.
    sample_rate : int
        Sampling rate in Hz.
    duration : float
        Clip length in seconds.
    second_label : str, optional
        A different class mixed in under the primary one.
    snr_db : float, optional
        Ratio of the (active) sound level to a coloured-noise bed, in dB;
        drawn from :data:`SNR_RANGE_DB` when ``None``.
    second_level_db : float, optional
        Level of the second class relative to the primary one, in dB; drawn
        from :data:`SECOND_LEVEL_RANGE_DB` when ``None``.

    Returns
    -------
    wav : numpy.ndarray
        float32 mono signal, finite, with a random peak in :data:`PEAK_RANGE`.
    labels : list of str
        ``[label]`` or ``[label, second_label]``.

    Example
    -------
    >>> wav, labels = render_example(np.random.default_rng(0), "wind", 16000, 1.0)
    >>> len(wav), labels
    (16000, ['wind'])
    """
    primary = generate_clip(label, rng, sample_rate, duration).astype(float)
    mixture = primary / _active_rms(primary, sample_rate)
    labels = [label]
    if second_label is not None:
        if second_label == label:
            raise ValueError("second_label must differ from label")
        other = generate_clip(second_label, rng, sample_rate, duration).astype(float)
        if second_level_db is None:
            second_level_db = rng.uniform(*SECOND_LEVEL_RANGE_DB)
        gain = 10 ** (second_level_db / 20) / _active_rms(other, sample_rate)
        mixture = mixture + gain * other
        labels.append(second_label)
    if snr_db is None:
        snr_db = rng.uniform(*SNR_RANGE_DB)
    noise = _coloured_noise(rng, len(mixture), rng.uniform(*NOISE_EXPONENT_RANGE))
    noise *= _active_rms(mixture, sample_rate) * 10 ** (-snr_db / 20)
    wav = _normalise_peak(mixture + noise, rng.uniform(*PEAK_RANGE))
    return wav.astype(np.float32), labels


def sample_example(rng, label, sample_rate=16000, duration=2.0, mixture_prob=0.0):
    """Draw a full dataset example: audio, its labels and a caption.

    With probability ``mixture_prob`` a second, different class (uniformly
    chosen) is mixed in.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random choice (use :func:`example_rng`).
    label : str
        Primary class.
    sample_rate : int
        Sampling rate in Hz.
    duration : float
        Clip length in seconds.
    mixture_prob : float
        Probability of a two-class mixture.

    Returns
    -------
    wav : numpy.ndarray
        float32 mono signal.
    labels : list of str
        Primary label first.
    caption : str
        Free-form caption mentioning every label.

    Example
    -------
    >>> wav, labels, caption = sample_example(example_rng(0, 0, 0), "rain")
    >>> labels
    ['rain']
    """
    _check_label(label)
    second_label = None
    if rng.random() < mixture_prob:
        others = [name for name in SYNTH_CLASSES if name != label]
        second_label = others[int(rng.integers(len(others)))]
    wav, labels = render_example(rng, label, sample_rate, duration, second_label)
    return wav, labels, make_caption(labels, rng)


# --------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------

# Per class: subjects (noun phrases that act), verbs agreeing with those
# subjects, gerund phrases, and nouns naming the sound itself.
_PHRASES = {
    "siren": (
        ["a siren", "an ambulance siren", "a police siren", "a fire truck siren"],
        ["wails", "blares", "sounds", "howls", "rises and falls"],
        ["wailing", "blaring", "sounding", "howling up and down"],
        ["the wail of a siren", "a wailing siren", "an emergency siren"],
    ),
    "rain": (
        ["rain", "heavy rain", "light rain", "steady rain"],
        ["falls", "pours down", "patters", "falls on a roof", "drums on a window"],
        ["falling", "pouring down", "pattering", "falling on a roof"],
        ["the patter of rain", "rainfall", "a rain shower", "raindrops falling"],
    ),
    "engine idling": (
        ["an engine", "a car engine", "an idling engine", "a truck engine"],
        ["idles", "rumbles steadily", "idles roughly", "ticks over"],
        ["idling", "rumbling while idling", "running at idle"],
        ["an idling engine", "the rumble of an engine", "engine noise at idle"],
    ),
    "birds chirping": (
        ["birds", "small birds", "songbirds", "several birds"],
        ["chirp", "sing", "tweet", "chirp and trill", "call to each other"],
        ["chirping", "singing", "tweeting", "chirping in the trees"],
        ["birdsong", "the chirping of birds", "chirping birds", "bird calls"],
    ),
    "dog barking": (
        ["a dog", "a small dog", "a large dog", "a barking dog"],
        ["barks", "barks repeatedly", "yaps", "barks a few times"],
        ["barking", "barking repeatedly", "yapping"],
        ["a dog barking", "the barking of a dog", "dog barks", "loud barking"],
    ),
    "clock ticking": (
        ["a clock", "a wall clock", "an old clock", "a mechanical clock"],
        ["ticks", "ticks steadily", "tick-tocks", "ticks away"],
        ["ticking", "ticking steadily", "tick-tocking"],
        ["the ticking of a clock", "a ticking clock", "clock ticks"],
    ),
    "church bell": (
        ["a church bell", "a large bell", "a bell tower", "a chapel bell"],
        ["rings", "tolls", "chimes", "rings out"],
        ["ringing", "tolling", "chiming"],
        ["the toll of a church bell", "church bells", "a ringing bell"],
    ),
    "knocking": (
        ["someone", "a visitor", "a person", "a neighbour"],
        [
            "knocks on a door",
            "knocks on wood",
            "knocks at the door",
            "knocks several times",
        ],
        ["knocking on a door", "knocking on wood", "knocking at the door"],
        ["knocking on a door", "a knock at the door", "knocks on wood"],
    ),
    "applause": (
        ["an audience", "a crowd", "the audience", "a group of people"],
        ["applauds", "claps", "claps enthusiastically", "bursts into applause"],
        ["applauding", "clapping", "clapping their hands"],
        ["applause", "a round of applause", "clapping hands", "loud applause"],
    ),
    "wind": (
        ["the wind", "a strong wind", "a gusty wind", "a cold wind"],
        ["blows", "howls", "gusts", "rushes past", "blows in gusts"],
        ["blowing", "howling", "gusting", "rushing past"],
        ["the sound of wind", "wind noise", "gusts of wind", "a blowing wind"],
    ),
    "alarm beeping": (
        ["an alarm", "an alarm clock", "a smoke alarm", "an electronic alarm"],
        ["beeps", "beeps repeatedly", "goes off", "beeps insistently"],
        ["beeping", "beeping repeatedly", "going off"],
        ["alarm beeps", "the beeping of an alarm", "a beeping alarm"],
    ),
    "plucked string": (
        ["a guitar string", "a plucked string", "a harp string", "a string"],
        ["is plucked", "twangs", "rings after being plucked", "is picked"],
        ["being plucked", "twanging", "being picked"],
        ["plucked strings", "a plucked guitar string", "notes on a plucked string"],
    ),
    "footsteps": (
        ["footsteps", "heavy footsteps", "someone's footsteps", "slow footsteps"],
        ["echo", "approach", "pass by", "walk along a floor", "crunch"],
        ["echoing", "approaching", "passing by", "walking along"],
        ["footsteps", "the sound of footsteps", "steps of someone walking"],
    ),
    "water dripping": (
        ["water", "a leaky tap", "a faucet", "a drop of water"],
        ["drips", "drips slowly", "drips into a sink", "keeps dripping"],
        ["dripping", "dripping slowly", "dripping into a puddle"],
        ["dripping water", "water drops", "the drip of water", "water dripping"],
    ),
    "crackling fire": (
        ["a fire", "a campfire", "a fireplace", "a log fire"],
        ["crackles", "crackles and pops", "burns and crackles", "roars and crackles"],
        ["crackling", "crackling and popping", "burning"],
        ["a crackling fire", "the crackle of a fire", "crackling flames"],
    ),
    "heartbeat": (
        ["a heart", "a human heart", "a beating heart"],
        ["beats", "beats steadily", "pounds", "thumps"],
        ["beating", "pounding", "thumping rhythmically"],
        ["a heartbeat", "a steady heartbeat", "a racing heartbeat", "heartbeats"],
    ),
    "phone ringing": (
        ["a phone", "a telephone", "an old telephone", "a desk phone"],
        ["rings", "rings repeatedly", "keeps ringing", "trills"],
        ["ringing", "ringing repeatedly", "trilling"],
        ["a ringing phone", "the ringing of a telephone", "phone rings"],
    ),
    "whistle": (
        ["a person", "someone", "a man", "a woman"],
        ["whistles", "whistles a tune", "whistles a melody", "whistles cheerfully"],
        ["whistling", "whistling a tune", "whistling a melody"],
        ["a whistle", "a whistled tune", "whistling", "a whistled melody"],
    ),
    "drum roll": (
        ["a drummer", "a snare drum", "a marching drummer"],
        ["plays a drum roll", "rolls on a snare", "performs a fast drum roll"],
        ["playing a drum roll", "rolling on a snare drum"],
        ["a drum roll", "a snare drum roll", "a rapid drum roll"],
    ),
    "helicopter": (
        ["a helicopter", "a rescue helicopter", "a news helicopter"],
        ["flies overhead", "hovers", "passes over", "circles above"],
        ["flying overhead", "hovering", "passing over"],
        ["helicopter rotors", "the chopping of a helicopter", "a helicopter"],
    ),
    "car horn": (
        ["a car horn", "a driver", "a taxi", "a car"],
        ["honks", "honks its horn", "beeps its horn", "honks impatiently"],
        ["honking", "honking its horn", "sounding its horn"],
        ["a car horn", "honking horns", "the honk of a car horn"],
    ),
    "thunder": (
        ["thunder", "distant thunder", "a thunderclap", "a thunderstorm"],
        ["rumbles", "cracks and rumbles", "roars", "rolls"],
        ["rumbling", "rolling", "crashing"],
        ["a clap of thunder", "rolling thunder", "a thunderstorm", "thunder"],
    ),
    "bees buzzing": (
        ["bees", "a swarm of bees", "honey bees", "busy bees"],
        ["buzz", "buzz around", "hum and buzz", "buzz around a hive"],
        ["buzzing", "buzzing around", "humming"],
        ["buzzing bees", "the buzz of bees", "a buzzing swarm", "bee buzzing"],
    ),
    "cat meowing": (
        ["a cat", "a kitten", "a hungry cat", "a small cat"],
        ["meows", "meows loudly", "mews", "meows plaintively"],
        ["meowing", "mewing", "meowing for food"],
        ["a cat meowing", "the meow of a cat", "cat meows", "a meowing kitten"],
    ),
}

_ADVERBS = ["loudly", "softly", "quietly", "faintly", "clearly", "", "", ""]
_PLACES = [
    "in the distance",
    "nearby",
    "close to the microphone",
    "far away",
    "outdoors",
    "indoors",
    "in a small room",
    "in a large hall",
    "on a city street",
    "in a quiet room",
    "in a park",
    "",
    "",
]

_SINGLE_TEMPLATES = (
    "{subject} {verb} {adverb} {place}",
    "{sound} can be heard {adverb} {place}",
    "{subject} {gerund} {place}",
    "a recording of {subject} {gerund} {place}",
    "{place_first} {subject} {verb} {adverb}",
    "you can hear {sound} {place}",
    "in this recording {subject} {verb} {adverb} {place}",
    "{subject} {verb} {adverb} over a steady background hiss",
    "{sound}, recorded {place}",
    "{subject} {verb} for a few seconds {place}",
    "{sound} {place} with some background noise",
)

_MIXTURE_TEMPLATES = (
    "{clause1} while {clause2}",
    "{clause1} and {clause2} {place}",
    "{sound1} and {sound2} can be heard {place}",
    "{clause1} {place}; in the background {clause2}",
    "{subject1} {gerund1} as {clause2}",
    "you can hear {sound1} mixed with {sound2}",
    "{sound1} together with {sound2} {place}",
    "{clause1}, and at the same time {clause2}",
)


def _pick(rng, options):
    """Return one element of ``options`` chosen by ``rng``."""
    return options[int(rng.integers(len(options)))]


def _describe(label, rng):
    """Draw the phrases describing one label in a caption."""
    subjects, verbs, gerunds, sounds = _PHRASES[label]
    subject, verb = _pick(rng, subjects), _pick(rng, verbs)
    adverb = "" if verb.endswith("ly") else _pick(rng, _ADVERBS)
    return {
        "subject": subject,
        "verb": verb,
        "gerund": _pick(rng, gerunds),
        "sound": _pick(rng, sounds),
        "adverb": adverb,
        "clause": " ".join(part for part in (subject, verb, adverb) if part),
    }


def _tidy(text):
    """Collapse repeated spaces and stray spaces before punctuation."""
    text = " ".join(text.split())
    return text.replace(" ,", ",").replace(" ;", ";").strip(" ,;")


def make_caption(labels, rng):
    """Write a natural-language caption for one or two labels.

    Parameters
    ----------
    labels : str or list of str
        One label, or ``[primary, secondary]`` for a mixture (both are
        mentioned).
    rng : numpy.random.Generator
        Chooses the template, the phrases and the modifiers.

    Returns
    -------
    str
        A lower-case caption such as ``"a dog barks loudly in the distance"``.

    Example
    -------
    >>> make_caption(["rain", "wind"], np.random.default_rng(3))  # doctest: +SKIP
    'heavy rain falls on a roof while the wind blows'
    """
    if isinstance(labels, str):
        labels = [labels]
    if not 1 <= len(labels) <= 2:
        raise ValueError(f"captions cover one or two labels, got {labels}")
    for label in labels:
        _check_label(label)
    place = _pick(rng, _PLACES)
    place_first = f"{place}," if place else ""
    if len(labels) == 1:
        words = _describe(labels[0], rng)
        template = _pick(rng, _SINGLE_TEMPLATES)
        if template.startswith("{sound}, recorded") and not place:
            place = "outdoors"
        text = template.format(place=place, place_first=place_first, **words)
    else:
        first, second = _describe(labels[0], rng), _describe(labels[1], rng)
        fields = {f"{key}1": value for key, value in first.items()}
        fields.update({f"{key}2": value for key, value in second.items()})
        text = _pick(rng, _MIXTURE_TEMPLATES).format(place=place, **fields)
    return _tidy(text)
