// The page: a file (chosen, dropped or ?audio=URL) or the microphone, classified against the
// labels typed, with sorted score bars, the open-set / multi-label decisions and a timeline.
//
// ?audio=URL&labels=a,b,c classifies URL at load and writes the winner into #top-label and
// the sorted scores into #scores (li elements with data-label / data-score); ?model=DIR/
// loads another model folder (default model/). window.tinyclap exposes the state for tests.
// Every failure is shown in #error as one sentence; nothing is thrown to the console.

import * as ort from "./ort/ort.wasm.bundle.min.mjs";
import { AudioFormatError, readWav, resample } from "./audio.js";
import { multiLabel, openSet, ranked } from "./decisions.js";
import { WebClassifier } from "./model.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { model: null, last: null, live: [], firstResultMs: null, errors: [], mic: null };
window.tinyclap = state;

ort.env.wasm.numThreads = 1;
// the bundle carries its wasm loader; only the .wasm file is fetched, from ort/
ort.env.wasm.wasmPaths = { wasm: new URL("ort/ort-wasm-simd-threaded.wasm", location.href).href };
ort.env.logLevel = "error";

function showError(err) {
  const message = err && err.message ? err.message : String(err);
  state.errors.push(message);
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function status(text) {
  $("status").textContent = text;
}

function hue(label) {
  let h = 0;
  for (const c of label) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

function renderScores(names, scores) {
  const order = ranked(scores);
  const lo = Math.min(0, ...scores);
  const hi = Math.max(...scores, lo + 1e-9);
  const calibration = state.model.settings.calibration;
  const open = openSet(scores, names, calibration);
  const present = multiLabel(scores, names, calibration);
  $("top-label").textContent = names[order[0]];
  const list = $("scores");
  list.replaceChildren();
  for (const i of order) {
    const li = document.createElement("li");
    li.dataset.label = names[i];
    li.dataset.score = String(scores[i]);
    if (present && !present.includes(names[i])) li.classList.add("rejected");
    const name = document.createElement("span");
    name.textContent = names[i];
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(1, (100 * (scores[i] - lo)) / (hi - lo))}%`;
    const value = document.createElement("span");
    value.className = "score";
    value.textContent = scores[i].toFixed(3);
    li.append(name, bar, value);
    list.append(li);
  }
  const decisions = $("decisions");
  if (!calibration) {
    decisions.textContent = "This model has no calibration (open_set.json): the open-set and " +
      "multi-label decisions need `tinyclap calibrate`.";
    decisions.dataset.openSet = "";
    return;
  }
  const rejected = open.index < 0;
  decisions.dataset.openSet = rejected ? "none of these" : open.label;
  decisions.dataset.multiLabel = JSON.stringify(present);
  decisions.textContent = `Open set: ${rejected ? "none of these" : open.label}` +
    ` (threshold ${calibration.reject_threshold.toFixed(3)}). ` +
    `Multi-label: ${present.length ? present.join(", ") : "none"}.`;
}

function timelineRow(start, end, names, scores) {
  const row = document.createElement("div");
  row.className = "row";
  const order = ranked(scores).slice(0, 3);
  row.dataset.top = names[order[0]];
  const time = document.createElement("span");
  time.textContent = `${start.toFixed(2)}–${end.toFixed(2)} s`;
  const chips = document.createElement("span");
  for (const i of order) {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.style.background = `hsl(${hue(names[i])} 55% 45%)`;
    chip.textContent = `${names[i]} ${scores[i].toFixed(2)}`;
    chips.append(chip);
  }
  row.append(time, chips);
  $("timeline").append(row);
  $("timeline").scrollTop = $("timeline").scrollHeight;
}

function renderStats() {
  const s = state.model.stats;
  const per = (ms) => (s.windows ? (ms / s.windows).toFixed(1) : "–");
  $("stats").textContent = `First result ${state.firstResultMs?.toFixed(0) ?? "–"} ms after load; ` +
    `${s.windows} windows, ${per(s.frontendMs)} ms log-mels + ${per(s.modelMs)} ms student per ` +
    "window (onnxruntime-web, wasm, 1 thread).";
}

async function decode(buffer, name) {
  let wav;
  try {
    wav = readWav(buffer);
  } catch (err) {
    if (err instanceof AudioFormatError) throw new Error(`${name}: ${err.message}`);
    throw err;
  }
  const rate = state.model.settings.sample_rate;
  if (wav) return resample(wav.samples, wav.rate, rate);
  try {
    // not WAV: the browser decodes (and resamples) what it can
    const audio = await new OfflineAudioContext(1, 1, rate).decodeAudioData(buffer);
    const out = new Float32Array(audio.length);
    for (let c = 0; c < audio.numberOfChannels; c++) {
      audio.getChannelData(c).forEach((x, i) => (out[i] += x / audio.numberOfChannels));
    }
    return out;
  } catch {
    throw new Error(`${name} is not an audio file this page can read (WAV, or a format the ` +
      "browser decodes: FLAC, Ogg, MP3...)");
  }
}

async function classifyBuffer(buffer, name) {
  clearError();
  status(`classifying ${name}…`);
  const wav = await decode(buffer, name);
  if (!wav.length) throw new Error(`${name}: the audio file has no samples`);
  const result = await state.model.classify(wav, $("labels").value);
  if (state.firstResultMs === null) state.firstResultMs = performance.now();
  state.last = { file: name, ...result };
  renderScores(result.names, result.scores);
  $("timeline").replaceChildren();
  for (const row of result.timeline) timelineRow(row.start, row.end, result.names, row.scores);
  status(`${name}: ${(wav.length / state.model.settings.sample_rate).toFixed(2)} s, ` +
    `${result.windows} window(s)`);
  renderStats();
}

async function guarded(task) {
  try {
    await task();
  } catch (err) {
    status("");
    showError(err);
  }
}

async function classifyUrl(url) {
  const response = await fetch(url).catch((err) => {
    throw new Error(`cannot fetch ${url}: ${err.message}`);
  });
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
  await classifyBuffer(await response.arrayBuffer(), url.split("/").pop());
}

async function listen() {
  clearError();
  const settings = state.model.settings;
  const { names, embeddings } = await state.model.resolveLabels($("labels").value);
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (err) {
    const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
    throw new Error(denied
      ? "microphone access was denied: allow it in the browser's site settings, or choose a file"
      : `no microphone available (${err && err.name}): connect one, or choose a file`);
  }
  const context = new AudioContext();
  await context.audioWorklet.addModule("capture-worklet.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "tinyclap-capture");
  const mute = context.createGain();
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(context.destination);
  const native = context.sampleRate;
  const W = settings.window_samples;
  const need = Math.ceil((W * native) / settings.sample_rate) + 64;
  const hop = Math.round((settings.timeline_hop_samples * native) / settings.sample_rate);
  const buffer = new Float32Array(need);
  let filled = 0;
  let total = 0;
  let sinceLast = 0;
  let busy = false;
  $("timeline").replaceChildren();
  state.live = [];
  node.port.onmessage = ({ data }) => {
    buffer.copyWithin(0, Math.min(data.length, need));
    buffer.set(data.subarray(Math.max(0, data.length - need)), need - Math.min(data.length, need));
    filled = Math.min(need, filled + data.length);
    total += data.length;
    sinceLast += data.length;
    if (filled < need || sinceLast < hop || busy) return;
    sinceLast = 0;
    busy = true;
    const end = total / native;
    guarded(async () => {
      const wav = resample(buffer, native, settings.sample_rate).subarray(-W);
      const e = await state.model.embedWindow(wav);
      const scores = WebClassifier.scores(e, embeddings);
      if (state.firstResultMs === null) state.firstResultMs = performance.now();
      state.live.push({ end, scores });
      state.last = { file: "microphone", names, scores, timeline: state.live };
      renderScores(names, scores);
      timelineRow(end - W / settings.sample_rate, end, names, scores);
      renderStats();
    }).finally(() => (busy = false));
  };
  state.mic = { stream, context };
  status(`listening (${native} Hz, resampled to ${settings.sample_rate} Hz)…`);
  $("listen").hidden = true;
  $("stop").hidden = false;
}

function stop() {
  if (state.mic) {
    state.mic.stream.getTracks().forEach((t) => t.stop());
    state.mic.context.close();
    state.mic = null;
  }
  $("listen").hidden = false;
  $("stop").hidden = true;
  status("stopped");
}

async function main() {
  const base = new URL(params.get("model") || "model/", location.href).href;
  state.model = await WebClassifier.load(ort, base);
  const s = state.model.settings;
  $("model-info").textContent = `${s.source}: ${s.sample_rate} Hz, ${s.clip_seconds} s windows, ` +
    `${s.frontend.n_mels ?? 64} mels, label sets ${state.model.labelSets.join(", ")}` +
    (s.text_encoder ? ", free-form labels (text student)" : ", label-set labels only");
  $("labels").value = params.get("labels") ?? state.model.labelSets[0] ?? "";
  $("listen").disabled = false;
  status("ready: choose or drop an audio file, or press listen");
  $("file").addEventListener("change", () => {
    const file = $("file").files[0];
    if (file) guarded(async () => classifyBuffer(await file.arrayBuffer(), file.name));
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) guarded(async () => classifyBuffer(await file.arrayBuffer(), file.name));
  });
  $("listen").addEventListener("click", () => guarded(listen));
  $("stop").addEventListener("click", stop);
  if (params.get("audio")) await classifyUrl(params.get("audio"));
}

state.ready = guarded(main).then(() => (state.done = true));
