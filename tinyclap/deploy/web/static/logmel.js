// The CLAP log-mel frontend in JS: tinyclap.runtime.frontend.HostLogMel with the export's
// settings (export.json["frontend"]).
//
// Centred frames (reflect padding of n_fft / 2), a periodic Hann window (float32 values, centred
// when win_length < n_fft), the power spectrum of a radix-2 FFT (any other n_fft: a direct DFT of
// the bins used), librosa's Slaney mel filterbank (float32 weights, built as the Python side
// builds them), then 10 log10(max(x, amin)) - 10 log10(max(amin, ref)). Arithmetic is float64;
// the output is float32 (the student graph's input). Only the FFT bins the filterbank uses are
// kept, as in HostLogMel.
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

  prepareFft() {
    const n = this.nFft;
    this.rev = new Uint32Array(n);
    const bits = Math.log2(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
    this.cos = new Float64Array(n / 2);
    this.sin = new Float64Array(n / 2);
    for (let k = 0; k < n / 2; k++) {
      this.cos[k] = Math.cos((2 * Math.PI * k) / n);
      this.sin[k] = -Math.sin((2 * Math.PI * k) / n);
    }
    this.re = new Float64Array(n);
    this.im = new Float64Array(n);
  }

  // |X_k|^2 for the used bins of one windowed frame (Float64Array frame of n_fft samples).
  power(frame, out) {
    const n = this.nFft;
    if (!this.radix2) {
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
    const { re, im, rev, cos, sin } = this;
    for (let i = 0; i < n; i++) {
      re[rev[i]] = frame[i];
      im[rev[i]] = 0;
    }
    for (let size = 2; size <= n; size *= 2) {
      const half = size / 2;
      const step = n / size;
      for (let start = 0; start < n; start += size) {
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
    for (let k = this.firstBin; k < this.lastBin; k++) out[k - this.firstBin] = re[k] ** 2 + im[k] ** 2;
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
    for (let f = 0; f < frames; f++) {
      const start = f * this.hop - pad;
      for (let t = 0; t < n; t++) frame[t] = at(start + t) * this.window[t];
      this.power(frame, power);
      for (let m = 0; m < this.nMels; m++) {
        const row = this.fb[m];
        let sum = 0;
        for (let k = 0; k < row.length; k++) sum += power[k] * row[k];
        const db = sum > this.amin ? 10 * Math.log10(sum) : floorDb;
        out[f * this.nMels + m] = db - this.offsetDb;
      }
    }
    return out;
  }
}
