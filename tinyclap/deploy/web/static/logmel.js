// The CLAP log-mel frontend in JS: tinyclap.runtime.frontend.HostLogMel with the export's
// settings (export.json["frontend"]).
//
// Centred frames (reflect padding of n_fft / 2), a periodic Hann window (float32 values, centred
// when win_length < n_fft), the power spectrum of a real FFT (a radix-2 complex FFT of half the
// size on the even / odd samples, then one split pass; any other n_fft: a direct DFT of the bins
// used), librosa's Slaney mel filterbank (float32 weights, built as the Python side builds them;
// each mel sums only its triangle's non-zero bins), then 10 log10(max(x, amin)) -
// 10 log10(max(amin, ref)). Arithmetic is float64; the output is float32 (the student graph's
// input). Only the FFT bins the filterbank uses are kept, as in HostLogMel.
//
//   const frontend = new LogMel({ sample_rate: 16000, f_max: 8000 });
//   const mels = frontend.compute(window);  // Float32Array [frames * n_mels]

const DEFAULTS = {
  sample_rate: 44100, n_fft: 1024, hop_length: 320, win_length: 1024, n_mels: 64,
  f_min: 50.0, f_max: 14000.0, amin: 1e-10, ref: 1.0,
};

function hzToMel(f) {
  const fSp = 200.0 / 3;
  const minLogHz = 1000.0;
  const minLogMel = minLogHz / fSp;
  const logstep = Math.log(6.4) / 27.0;
  return f >= minLogHz ? minLogMel + Math.log(f / minLogHz) / logstep : f / fSp;
}

function melToHz(m) {
  const fSp = 200.0 / 3;
  const minLogHz = 1000.0;
  const minLogMel = minLogHz / fSp;
  const logstep = Math.log(6.4) / 27.0;
  return m >= minLogMel ? minLogHz * Math.exp(logstep * (m - minLogMel)) : fSp * m;
}

/** [n_mels][n_fft / 2 + 1] float32 Slaney triangles (runtime mel_filterbank). */
export function melFilterbank(sampleRate, nFft, nMels, fMin, fMax) {
  const bins = Math.floor(nFft / 2) + 1;
  const fftfreqs = Array.from({ length: bins }, (_, k) => k / (nFft * (1.0 / sampleRate)));
  const lo = hzToMel(fMin);
  const hi = hzToMel(fMax);
  const step = (hi - lo) / (nMels + 1); // as numpy.linspace
  const melF = Array.from({ length: nMels + 2 }, (_, i) => melToHz(i * step + lo));
  const rows = [];
  for (let i = 0; i < nMels; i++) {
    const row = new Float32Array(bins);
    const enorm = 2.0 / (melF[i + 2] - melF[i]);
    for (let k = 0; k < bins; k++) {
      const lower = -(melF[i] - fftfreqs[k]) / (melF[i + 1] - melF[i]);
      const upper = (melF[i + 2] - fftfreqs[k]) / (melF[i + 2] - melF[i + 1]);
      row[k] = Math.fround(Math.max(0, Math.min(lower, upper))) * enorm;
    }
    rows.push(row);
  }
  return rows;
}

export class LogMel {
  constructor(config = {}) {
    const c = { ...DEFAULTS, ...config };
    this.sampleRate = c.sample_rate;
    this.nFft = c.n_fft;
    this.hop = c.hop_length;
    this.nMels = c.n_mels;
    this.amin = c.amin;
    this.offsetDb = 10.0 * Math.log10(Math.max(c.amin, c.ref));
    const fb = melFilterbank(c.sample_rate, c.n_fft, c.n_mels, c.f_min, c.f_max);
    let first = Infinity;
    let last = -1;
    fb.forEach((row) => row.forEach((v, k) => {
      if (v !== 0) { first = Math.min(first, k); last = Math.max(last, k); }
    }));
    this.firstBin = first;
    this.lastBin = last + 1;
    this.fb = fb.map((row) => row.slice(this.firstBin, this.lastBin));
    // each mel's non-zero span of used bins: [start, start + weights.length)
    this.melStart = new Int32Array(this.nMels);
    this.melWeights = this.fb.map((row, m) => {
      let lo = row.findIndex((v) => v !== 0);
      if (lo < 0) lo = 0;
      let hi = row.length;
      while (hi > lo && row[hi - 1] === 0) hi -= 1;
      this.melStart[m] = lo;
      return Float64Array.from(row.subarray(lo, hi));
    });
    this.window = new Float32Array(this.nFft);
    const offset = Math.floor((this.nFft - c.win_length) / 2);
    for (let n = 0; n < c.win_length; n++) {
      this.window[offset + n] = 0.5 - 0.5 * Math.cos((2.0 * Math.PI * n) / c.win_length);
    }
    this.radix2 = (this.nFft & (this.nFft - 1)) === 0;
    if (this.radix2) this.prepareFft();
  }

  /** Frames for numSamples samples (HostLogMel.num_frames). */
  numFrames(numSamples) {
    return Math.floor(numSamples / this.hop) + 1;
  }

  // Tables of the real FFT: a complex radix-2 FFT of m = n_fft / 2 points on
  // z[k] = x[2k] + i x[2k + 1], then X[k] = E[k] + W^k O[k] with E, O the spectra of the even
  // and odd samples (E = (Z[k] + conj Z[m - k]) / 2, O = (Z[k] - conj Z[m - k]) / 2i).
  prepareFft() {
    const n = this.nFft;
    const m = n / 2;
    this.rev = new Uint32Array(m);
    const bits = Math.log2(m);
    for (let i = 0; i < m; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
    this.cos = new Float64Array(Math.max(1, m / 2));
    this.sin = new Float64Array(Math.max(1, m / 2));
    for (let k = 0; k < m / 2; k++) {
      this.cos[k] = Math.cos((2 * Math.PI * k) / m);
      this.sin[k] = -Math.sin((2 * Math.PI * k) / m);
    }
    this.postCos = new Float64Array(m + 1);
    this.postSin = new Float64Array(m + 1);
    for (let k = 0; k <= m; k++) {
      this.postCos[k] = Math.cos((2 * Math.PI * k) / n);
      this.postSin[k] = -Math.sin((2 * Math.PI * k) / n);
    }
    this.re = new Float64Array(m);
    this.im = new Float64Array(m);
  }

  // |X_k|^2 for the used bins of one windowed frame (Float64Array frame of n_fft samples).
  power(frame, out) {
    const n = this.nFft;
    if (!this.radix2 || n < 4) {
      for (let k = this.firstBin; k < this.lastBin; k++) {
        let re = 0;
        let im = 0;
        for (let t = 0; t < n; t++) {
          const a = (2 * Math.PI * ((k * t) % n)) / n;
          re += frame[t] * Math.cos(a);
          im -= frame[t] * Math.sin(a);
        }
        out[k - this.firstBin] = re * re + im * im;
      }
      return;
    }
    const m = n / 2;
    const { re, im, rev, cos, sin } = this;
    for (let i = 0; i < m; i++) {
      re[rev[i]] = frame[2 * i];
      im[rev[i]] = frame[2 * i + 1];
    }
    for (let size = 2; size <= m; size *= 2) {
      const half = size / 2;
      const step = m / size;
      for (let start = 0; start < m; start += size) {
        for (let j = 0; j < half; j++) {
          const wr = cos[j * step];
          const wi = sin[j * step];
          const a = start + j;
          const b = a + half;
          const tr = re[b] * wr - im[b] * wi;
          const ti = re[b] * wi + im[b] * wr;
          re[b] = re[a] - tr;
          im[b] = im[a] - ti;
          re[a] += tr;
          im[a] += ti;
        }
      }
    }
    const { postCos, postSin } = this;
    for (let k = this.firstBin; k < this.lastBin; k++) {
      const ka = k % m;
      const kb = (m - k) % m;
      const ar = re[ka];
      const ai = im[ka];
      const br = re[kb];
      const bi = -im[kb];
      const or = (ai - bi) / 2; // O = -i (Z[k] - conj Z[m - k]) / 2
      const oi = -(ar - br) / 2;
      const c = postCos[k];
      const s = postSin[k];
      const xr = (ar + br) / 2 + c * or - s * oi;
      const xi = (ai + bi) / 2 + c * oi + s * or;
      out[k - this.firstBin] = xr * xr + xi * xi;
    }
  }

  /** Log-mels of one window: Float32Array [frames * n_mels], row-major (frame, mel). */
  compute(wav) {
    const n = this.nFft;
    const pad = Math.floor(n / 2);
    if (wav.length <= pad) throw new Error(`${wav.length} samples: reflect padding needs more than ${pad}`);
    const frames = this.numFrames(wav.length);
    const at = (i) => {
      // reflect padding (torch.stft's pad_mode="reflect")
      if (i < 0) return wav[-i];
      if (i >= wav.length) return wav[2 * (wav.length - 1) - i];
      return wav[i];
    };
    const out = new Float32Array(frames * this.nMels);
    const frame = new Float64Array(n);
    const power = new Float64Array(this.lastBin - this.firstBin);
    const floorDb = 10 * Math.log10(this.amin);
    const { window, melStart, melWeights } = this;
    for (let f = 0; f < frames; f++) {
      const start = f * this.hop - pad;
      if (start >= 0 && start + n <= wav.length) {
        for (let t = 0; t < n; t++) frame[t] = wav[start + t] * window[t];
      } else {
        for (let t = 0; t < n; t++) frame[t] = at(start + t) * window[t];
      }
      this.power(frame, power);
      for (let m = 0; m < this.nMels; m++) {
        const weights = melWeights[m];
        const first = melStart[m];
        let sum = 0;
        for (let k = 0; k < weights.length; k++) sum += power[first + k] * weights[k];
        const db = sum > this.amin ? 10 * Math.log10(sum) : floorDb;
        out[f * this.nMels + m] = db - this.offsetDb;
      }
    }
    return out;
  }
}
