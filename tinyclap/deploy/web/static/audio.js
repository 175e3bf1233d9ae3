// Audio for the page: WAV reading, mono mix, resampling and windows (runtime/audio.py in JS).
//
// readWav parses PCM (8/16/24/32-bit) and IEEE float WAV files into float32 samples as
// soundfile does (int16 / 32768, ...); channels are averaged. resample is torchaudio's
// default band-limited sinc (Hann window, 6 zero crossings, rolloff 0.99), the kernel built
// in float64 and cast to float32 as tinyclap.runtime.audio.resample builds it; sums run in
// float64 (the Python side sums in float32: last-bit differences, see the parity tests).
// splitWindows gives the deterministic windows of tinyclap.runtime.audio.split_windows.
//
//   const { samples, rate } = readWav(arrayBuffer);
//   const wav = resample(samples, rate, 16000);
//   const { starts, windows } = splitWindows(wav, 16000, 8000, "zeros");

export class AudioFormatError extends Error {}

/** {samples: Float32Array (channels averaged), rate} of a WAV file's bytes, or null if not WAV. */
export function readWav(buffer) {
  const view = new DataView(buffer);
  const tag = (at) => String.fromCharCode(...new Uint8Array(buffer, at, 4));
  if (buffer.byteLength < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") return null;
  let format = null;
  let pos = 12;
  while (pos + 8 <= buffer.byteLength) {
    const id = tag(pos);
    const size = view.getUint32(pos + 4, true);
    const body = pos + 8;
    if (id === "fmt ") {
      let code = view.getUint16(body, true);
      if (code === 0xfffe && size >= 26) code = view.getUint16(body + 24, true); // extensible
      format = {
        code,
        channels: view.getUint16(body + 2, true),
        rate: view.getUint32(body + 4, true),
        bits: view.getUint16(body + 14, true),
      };
    } else if (id === "data") {
      if (!format) throw new AudioFormatError("WAV file without a fmt chunk before its data");
      const length = Math.min(size, buffer.byteLength - body);
      return { samples: decodePcm(view, body, length, format), rate: format.rate };
    }
    pos = body + size + (size % 2);
  }
  throw new AudioFormatError("WAV file without a data chunk");
}

function decodePcm(view, start, length, { code, channels, bits }) {
  const bytes = bits / 8;
  const frames = Math.floor(length / (bytes * channels));
  let read;
  if (code === 3 && bits === 32) read = (at) => view.getFloat32(at, true);
  else if (code === 3 && bits === 64) read = (at) => view.getFloat64(at, true);
  else if (code === 1 && bits === 16) read = (at) => view.getInt16(at, true) / 32768;
  else if (code === 1 && bits === 32) read = (at) => view.getInt32(at, true) / 2147483648;
  else if (code === 1 && bits === 8) read = (at) => (view.getUint8(at) - 128) / 128;
  else if (code === 1 && bits === 24) {
    read = (at) => {
      const v = view.getUint8(at) | (view.getUint8(at + 1) << 8) | (view.getInt8(at + 2) << 16);
      return v / 8388608;
    };
  } else throw new AudioFormatError(`WAV encoding ${code} with ${bits} bits is not supported`);
  if (frames === 0) throw new AudioFormatError("the audio file has no samples");
  const out = new Float32Array(frames);
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += Math.fround(read(start + (i * channels + c) * bytes));
    out[i] = sum / channels;
  }
  for (let i = 0; i < frames; i++) {
    if (!Number.isFinite(out[i])) throw new AudioFormatError("the audio holds NaN or Inf samples");
  }
  return out;
}

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Rows [new][2 * width + orig] of float32 kernel values and width (runtime sinc_kernel). */
export function sincKernel(origSr, targetSr, lowpassFilterWidth = 6, rolloff = 0.99) {
  const g = gcd(origSr, targetSr);
  const orig = origSr / g;
  const next = targetSr / g;
  const base = Math.min(orig, next) * rolloff;
  const width = Math.ceil((lowpassFilterWidth * orig) / base);
  const taps = 2 * width + orig;
  const rows = [];
  for (let j = 0; j < next; j++) {
    const row = new Float32Array(taps);
    for (let k = 0; k < taps; k++) {
      let t = (-j / next + (k - width) / orig) * base;
      t = Math.min(Math.max(t, -lowpassFilterWidth), lowpassFilterWidth);
      const w = Math.cos((t * Math.PI) / lowpassFilterWidth / 2) ** 2;
      const tp = t * Math.PI;
      row[k] = (tp === 0 ? 1.0 : Math.sin(tp) / tp) * w * (base / orig);
    }
    rows.push(row);
  }
  return { rows, width, orig, next };
}

/** wav (Float32Array) resampled from origSr to targetSr, as tinyclap.runtime.audio.resample. */
export function resample(wav, origSr, targetSr) {
  if (origSr === targetSr) return Float32Array.from(wav);
  const { rows, width, orig, next } = sincKernel(origSr, targetSr);
  if (orig * next > 1000000) {
    throw new AudioFormatError(`resampling ${origSr} Hz to ${targetSr} Hz is not supported`);
  }
  const taps = rows[0].length;
  const padded = new Float32Array(wav.length + 2 * width + orig);
  padded.set(wav, width);
  const blocks = Math.floor((padded.length - taps) / orig) + 1;
  const length = Math.ceil((next * wav.length) / orig);
  const out = new Float32Array(length);
  for (let i = 0; i < blocks; i++) {
    for (let j = 0; j < next; j++) {
      const at = i * next + j;
      if (at >= length) return out;
      const row = rows[j];
      let sum = 0;
      for (let k = 0, p = i * orig; k < taps; k++, p++) sum += padded[p] * row[k];
      out[at] = sum;
    }
  }
  return out;
}

/** wav right-padded to numSamples: "zeros", "repeat" or "repeatpad" (runtime pad_to_length). */
export function padToLength(wav, numSamples, mode = "zeros") {
  if (wav.length >= numSamples) return wav;
  const out = new Float32Array(numSamples);
  if (mode === "zeros") out.set(wav);
  else if (mode === "repeat") for (let i = 0; i < numSamples; i++) out[i] = wav[i % wav.length];
  else if (mode === "repeatpad") {
    const copies = Math.floor(numSamples / wav.length);
    for (let c = 0; c < copies; c++) out.set(wav, c * wav.length);
  } else throw new Error(`unknown pad mode ${mode}: use zeros, repeat or repeatpad`);
  return out;
}

/** Window starts covering wav (the last one end-aligned) and the windows, as split_windows. */
export function splitWindows(wav, numSamples, hop = null, padMode = "zeros") {
  hop = hop || numSamples;
  const padded = padToLength(wav, numSamples, padMode);
  const starts = [];
  for (let s = 0; s + numSamples <= padded.length; s += hop) starts.push(s);
  if (starts[starts.length - 1] + numSamples < padded.length) starts.push(padded.length - numSamples);
  return { starts, windows: starts.map((s) => padded.subarray(s, s + numSamples)), length: padded.length };
}
