// The page's classifier: tinyclap.runtime.RuntimeClassifier in JS, on onnxruntime-web.
//
// A model folder (model/ of the site) holds model.json, student.onnx, the label tables
// (label_embeddings.safetensors) and, with a text student, text_encoder.onnx + tokenizer.json.
// Labels resolve as in the runtime: a label set's name, or comma-separated labels whose prompts
// ("this is the sound of {label}") are looked up in the tables, the others embedded by the
// text student. A clip is cut into windows (hop = window, the last one end-aligned), each
// window's log-mels go through the student, the L2-normalised window embeddings are averaged
// and normalised again, and the scores are cosines with the label embeddings. The timeline
// uses the windows of `tinyclap classify --timeline` (hop = half a window).
//
//   const model = await WebClassifier.load(ort, "model/");
//   const result = await model.classify(wav16k, "dog barking, rain");

import { splitWindows } from "./audio.js";
import { LogMel } from "./logmel.js";
import { SentencePiece, tokenize } from "./tokenizer.js";

export class ModelError extends Error {}

/** Lower case, runs of whitespace to one space, stripped (tinyclap.runtime.text.normalise). */
export function normalise(text) {
  return String(text).toLowerCase().replace(/\s+/g, " ").trim();
}

/** How a typed label is matched to a class name (tinyclap.runtime.labels.match_key). */
export function matchKey(label) {
  return normalise(readableLabel(label));
}

/** A class name as prompt words (tinyclap.runtime.text.readable_label). */
export function readableLabel(name) {
  return String(name).split("/").map((p) => p.replaceAll("_", " ").trim()).join(" or ");
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** {tensors: {name: {shape, data: Float32Array}}, metadata} of a safetensors file's bytes. */
export function readSafetensors(buffer) {
  const view = new DataView(buffer);
  const size = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, size)));
  const metadata = header.__metadata__ || {};
  delete header.__metadata__;
  const tensors = {};
  for (const [name, entry] of Object.entries(header)) {
    const [start, end] = entry.data_offsets;
    const bytes = buffer.slice(8 + size + start, 8 + size + end);
    let data;
    if (entry.dtype === "F32") data = new Float32Array(bytes);
    else if (entry.dtype === "F64") data = Float32Array.from(new Float64Array(bytes));
    else if (entry.dtype === "F16") data = Float32Array.from(new Uint16Array(bytes), halfToFloat);
    else throw new ModelError(`label tables: tensor ${name} has dtype ${entry.dtype}, not supported`);
    tensors[name] = { shape: entry.shape, data };
  }
  return { tensors, metadata };
}

function normalize(v) {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.max(Math.sqrt(norm), 1e-12);
  return Float64Array.from(v, (x) => x / norm);
}

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new ModelError(`cannot fetch ${what} (${url}): ${err.message}`);
  }
  if (!response.ok) throw new ModelError(`${what} not found: ${url} (HTTP ${response.status})`);
  return response.arrayBuffer();
}

export class WebClassifier {
  /** Load a model folder (base URL ending in "/") with the onnxruntime-web module ort. */
  static async load(ort, base) {
    const settingsUrl = new URL("model.json", base).href;
    let settings;
    try {
      settings = JSON.parse(new TextDecoder().decode(await fetchBytes(settingsUrl, "model.json")));
    } catch (err) {
      throw new ModelError(`${err.message}: build the page with \`tinyclap export ... --web\``);
    }
    if (settings.format !== "tinyclap-web") throw new ModelError(`${settingsUrl}: not a tinyclap web model`);
    const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
    const graph = async (name) => {
      const bytes = await fetchBytes(new URL(name, base).href, `the ONNX graph ${name}`).catch((err) => {
        throw new ModelError(`the model folder has no ONNX graphs: ${err.message}; ` +
          "export the folder with --onnx and build the page again (tinyclap export ... --web)");
      });
      return ort.InferenceSession.create(new Uint8Array(bytes), options);
    };
    const model = new WebClassifier(ort, settings);
    model.student = await graph("student.onnx");
    const tables = readSafetensors(
      await fetchBytes(new URL("label_embeddings.safetensors", base).href, "the label tables"));
    model.setTables(tables);
    if (settings.text_encoder) {
      model.text = await graph(settings.text_encoder);
      const spec = JSON.parse(new TextDecoder().decode(
        await fetchBytes(new URL("tokenizer.json", base).href, "tokenizer.json")));
      model.tokenizer = new SentencePiece(spec);
    }
    return model;
  }

  constructor(ort, settings) {
    this.ort = ort;
    this.settings = settings;
    this.frontend = new LogMel(settings.frontend);
    this.windowSamples = settings.window_samples;
    this.encoded = new Map();
    this.stats = { windows: 0, frontendMs: 0, modelMs: 0 };
  }

  setTables({ tensors, metadata }) {
    this.template = metadata.template || this.settings.prompt_template;
    this.sets = JSON.parse(metadata.sets);
    this.byPrompt = new Map();
    for (const [name, table] of Object.entries(this.sets)) {
      const { shape, data } = tensors[name];
      table.embeddings = table.labels.map((_, i) => data.subarray(i * shape[1], (i + 1) * shape[1]));
      table.prompts.forEach((p, i) => this.byPrompt.set(p, table.embeddings[i]));
    }
    // few-shot prototypes by typed name: the default set first, then the others by name
    // (tinyclap.runtime.labels.prototype_classes)
    this.prototypes = new Map();
    const fallback = this.settings.default_labels;
    const order = (fallback in this.sets ? [fallback] : []).concat(
      Object.keys(this.sets).filter((n) => n !== fallback).sort());
    for (const setName of order) {
      const table = this.sets[setName];
      (table.kinds || []).forEach((kind, i) => {
        const key = matchKey(table.labels[i]);
        if ((kind === "prototype" || kind === "mixed") && !this.prototypes.has(key)) {
          this.prototypes.set(key, table.embeddings[i]);
        }
      });
    }
  }

  get labelSets() {
    return Object.keys(this.sets).sort();
  }

  /** {names, embeddings} of a label spec: a set's name or "a, b, c" (runtime resolve_labels). */
  async resolveLabels(spec) {
    spec = String(spec ?? "");
    if (spec.trim() in this.sets) {
      const table = this.sets[spec.trim()];
      return { names: [...table.labels], embeddings: table.embeddings };
    }
    const names = spec.split(",").map((s) => s.trim()).filter(Boolean);
    if (!names.length) {
      throw new ModelError("no labels given: type labels separated by commas (e.g. dog barking, rain) " +
        `or a label set's name (${this.labelSets.join(", ")})`);
    }
    // a name of an adapted set's prototype class takes the prototype, as in the runtime
    const proto = names.map((n) => this.prototypes.get(matchKey(n)));
    const prompts = names.map((n) => this.template.replaceAll("{label}", readableLabel(n)));
    const missing = [...new Set(prompts.filter(
      (p, i) => !proto[i] && !this.byPrompt.has(p) && !this.encoded.has(p)))];
    if (missing.length) {
      if (!this.text) {
        throw new ModelError(`${missing.length} label(s) are not in this model's label sets ` +
          `(${this.labelSets.join(", ")}) and it has no text encoder to embed them ` +
          `(${this.settings.no_text_encoder || "exported without a text student"}): ` +
          `${missing.slice(0, 5).join("; ")}. Use labels of those sets.`);
      }
      const { ids, mask, dims } = tokenize(this.tokenizer, missing);
      const feeds = {
        input_ids: new this.ort.Tensor("int64", ids, dims),
        attention_mask: new this.ort.Tensor("int64", mask, dims),
      };
      const out = (await this.text.run(feeds)).embedding;
      const width = out.dims[1];
      missing.forEach((p, i) => this.encoded.set(p, out.data.slice(i * width, (i + 1) * width)));
    }
    const embeddings = prompts.map((p, i) => proto[i] || this.byPrompt.get(p) || this.encoded.get(p));
    return { names, embeddings };
  }

  /** The L2-normalised embedding (Float64Array) of one window of windowSamples samples. */
  async embedWindow(window) {
    const t0 = performance.now();
    const mels = this.frontend.compute(window);
    const t1 = performance.now();
    const frames = mels.length / this.frontend.nMels;
    const input = new this.ort.Tensor("float32", mels, [1, frames, this.frontend.nMels]);
    const out = await this.student.run({ [this.student.inputNames[0]]: input });
    const t2 = performance.now();
    this.stats.windows += 1;
    this.stats.frontendMs += t1 - t0;
    this.stats.modelMs += t2 - t1;
    return normalize(out[this.student.outputNames[0]].data);
  }

  /** Cosine scores of an embedding against label embeddings. */
  static scores(embedding, embeddings) {
    return embeddings.map((e) => e.reduce((sum, x, k) => sum + x * embedding[k], 0));
  }

  /**
   * Classify a clip at the model's rate: {names, scores, timeline: [{start, end, scores}]}.
   * The clip's scores average the hop = window windows (as RuntimeClassifier.classify_files);
   * the timeline has a row per window of hop = half a window when the clip is longer than one.
   */
  async classify(wav, labels) {
    const { names, embeddings } = await this.resolveLabels(labels);
    const W = this.windowSamples;
    const pad = this.settings.pad_mode;
    const clip = splitWindows(wav, W, W, pad);
    const tl = splitWindows(wav, W, this.settings.timeline_hop_samples, pad);
    const cache = new Map();
    const embed = async (start, window) => {
      if (!cache.has(start)) cache.set(start, await this.embedWindow(window));
      return cache.get(start);
    };
    const sum = new Float64Array(embeddings[0].length);
    for (let i = 0; i < clip.starts.length; i++) {
      const e = await embed(clip.starts[i], clip.windows[i]);
      e.forEach((x, k) => (sum[k] += x));
    }
    const scores = WebClassifier.scores(normalize(sum), embeddings);
    const timeline = [];
    if (tl.starts.length > 1) {
      for (let i = 0; i < tl.starts.length; i++) {
        const e = await embed(tl.starts[i], tl.windows[i]);
        timeline.push({ start: tl.starts[i] / this.settings.sample_rate,
          end: (tl.starts[i] + W) / this.settings.sample_rate,
          scores: WebClassifier.scores(e, embeddings) });
      }
    }
    return { names, scores, timeline, windows: cache.size };
  }
}
