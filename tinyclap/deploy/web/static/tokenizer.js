// SentencePiece encoding in the browser: the text student's tokenizer, exported as JSON.
//
// Mirrors sentencepiece's C++ encoder for the models tinyclap trains (unigram or BPE, no byte
// fallback): the normalizer (the model's precompiled character map, a Darts double-array trie
// of UTF-8 prefixes, then whitespace removal, the dummy prefix and "\u2581" for spaces), the
// unigram Viterbi search with float32 scores (the unknown penalty, user-defined pieces) or
// the BPE merges (best score first, leftmost on ties), and the processor's merge of a run of
// unknown pieces into one. tinyclap.runtime.text.SentencePieceIds is the Python side; the
// tests compare the ids of both on the same texts (tests/deploy/web/test_tokenizer_parity.py).
//
//   const sp = new SentencePiece(await (await fetch("model/tokenizer.json")).json());
//   sp.encode("this is the sound of rain");  // -> [ids...]

const SPACE = "\u2581";
const UNK_PENALTY = 10.0;
const TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 };
const f32 = Math.fround;

function base64Bytes(text) {
  if (!text) return new Uint8Array(0);
  if (typeof atob === "function") {
    const raw = atob(text);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  return new Uint8Array(Buffer.from(text, "base64")); // node without atob
}

/** The normalizer of a SentencePiece model: its precompiled charsmap and whitespace rules. */
export class Normalizer {
  constructor(spec) {
    const blob = base64Bytes(spec.precompiled_charsmap || "");
    this.addDummyPrefix = spec.add_dummy_prefix !== false;
    this.removeExtraWhitespaces = spec.remove_extra_whitespaces !== false;
    this.escapeWhitespaces = spec.escape_whitespaces !== false;
    this.trie = null;
    if (blob.length >= 4) {
      const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
      const trieSize = view.getUint32(0, true);
      this.trie = new Uint32Array(blob.slice(4, 4 + trieSize).buffer);
      this.normalized = blob.slice(4 + trieSize);
    }
  }

  // Length in bytes of the longest charsmap key at bytes[pos..], and the value (blob offset).
  longestMatch(bytes, pos) {
    const a = this.trie;
    let node = 0;
    let unit = a[0];
    node ^= (unit >>> 10) << ((unit & 512) >>> 6);
    let best = null;
    for (let i = pos; i < bytes.length; i++) {
      const c = bytes[i];
      node ^= c;
      unit = a[node];
      if (unit === undefined || (unit & 0x800000ff) >>> 0 !== c) break;
      node ^= (unit >>> 10) << ((unit & 512) >>> 6);
      if ((unit >>> 8) & 1) best = [i + 1 - pos, a[node] & 0x7fffffff];
    }
    return best;
  }

  // [replacement bytes, bytes consumed] of the prefix of bytes[pos..] (sentencepiece's
  // NormalizePrefix): the charsmap's longest match, else one UTF-8 character as it is.
  prefix(bytes, pos) {
    const match = this.trie ? this.longestMatch(bytes, pos) : null;
    if (match) {
      let end = match[1];
      while (end < this.normalized.length && this.normalized[end] !== 0) end++;
      return [this.normalized.subarray(match[1], end), match[0]];
    }
    const lead = bytes[pos];
    let length = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (pos + length > bytes.length) length = 1;
    return [bytes.subarray(pos, pos + length), length];
  }

  /** The normalized text (a string with "\u2581" for spaces), as sentencepiece's Normalize. */
  normalize(text) {
    const bytes = new TextEncoder().encode(text);
    const out = [];
    let pos = 0;
    const isSpace = (piece) => piece.length === 1 && piece[0] === 0x20;
    if (this.removeExtraWhitespaces) {
      while (pos < bytes.length) {
        const [piece, used] = this.prefix(bytes, pos);
        if (!isSpace(piece)) break;
        pos += used;
      }
    }
    if (pos >= bytes.length) return "";
    const space = [...new TextEncoder().encode(this.escapeWhitespaces ? SPACE : " ")];
    if (this.addDummyPrefix) out.push(...space);
    let prevSpace = this.removeExtraWhitespaces;
    while (pos < bytes.length) {
      const [raw, used] = this.prefix(bytes, pos);
      let start = 0;
      while (prevSpace && start < raw.length && raw[start] === 0x20) start++;
      if (start < raw.length) {
        for (let n = start; n < raw.length; n++) {
          if (raw[n] === 0x20) out.push(...space);
          else out.push(raw[n]);
        }
        prevSpace = raw[raw.length - 1] === 0x20;
      }
      pos += used;
    }
    let result = new TextDecoder().decode(new Uint8Array(out));
    if (this.removeExtraWhitespaces) {
      const sp = this.escapeWhitespaces ? SPACE : " ";
      while (result.endsWith(sp)) result = result.slice(0, -sp.length);
    }
    return result;
  }
}

/** A SentencePiece model (tinyclap's tokenizer.json) that encodes text to ids. */
export class SentencePiece {
  constructor(spec) {
    if (spec.format !== "tinyclap-sentencepiece") {
      throw new Error("tokenizer.json: not a tinyclap SentencePiece export");
    }
    this.modelType = spec.model_type;
    if (this.modelType !== "unigram" && this.modelType !== "bpe") {
      throw new Error(`tokenizer.json: model type ${this.modelType} is not supported`);
    }
    this.normalizer = new Normalizer(spec.normalizer);
    this.unkId = spec.unk_id;
    this.maxLength = spec.max_length;
    this.pieces = new Map();
    this.scores = spec.pieces.map((p) => f32(p[1]));
    this.types = spec.pieces.map((p) => p[2]);
    this.maxPieceChars = 1;
    let minScore = Infinity;
    let maxScore = -Infinity;
    spec.pieces.forEach(([piece, score, type], id) => {
      if (type === TYPE.NORMAL || type === TYPE.USER_DEFINED || type === TYPE.UNUSED) {
        this.pieces.set(piece, id);
        this.maxPieceChars = Math.max(this.maxPieceChars, [...piece].length);
      }
      if (type === TYPE.NORMAL) {
        minScore = Math.min(minScore, f32(score));
        maxScore = Math.max(maxScore, f32(score));
      }
    });
    this.unkScore = f32(minScore - UNK_PENALTY);
    this.maxScore = maxScore;
  }

  // Unigram: the best segmentation of the code points chars (float32 path scores).
  viterbi(chars) {
    const n = chars.length;
    const best = Array.from({ length: n + 1 }, () => ({ id: -1, score: 0, start: -1 }));
    for (let start = 0; start < n; start++) {
      const here = best[start].score;
      let single = false;
      let piece = "";
      for (let end = start + 1; end <= Math.min(n, start + this.maxPieceChars); end++) {
        piece += chars[end - 1];
        const id = this.pieces.get(piece);
        if (id === undefined || this.types[id] === TYPE.UNUSED) continue;
        const length = end - start;
        const score =
          this.types[id] === TYPE.USER_DEFINED ? f32(length * this.maxScore - 0.1) : this.scores[id];
        const candidate = f32(score + here);
        if (best[end].start === -1 || candidate > best[end].score) {
          best[end] = { id, score: candidate, start };
        }
        if (length === 1) single = true;
      }
      if (!single) {
        const candidate = f32(this.unkScore + here);
        if (best[start + 1].start === -1 || candidate > best[start + 1].score) {
          best[start + 1] = { id: this.unkId, score: candidate, start };
        }
      }
    }
    const ids = [];
    for (let end = n; end > 0; end = best[end].start) ids.push(best[end].id);
    return ids.reverse();
  }

  // BPE: merge the adjacent pair whose merged piece scores best (leftmost on ties).
  bpe(chars) {
    const symbols = [...chars];
    for (;;) {
      let bestAt = -1;
      let bestScore = -Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const id = this.pieces.get(symbols[i] + symbols[i + 1]);
        if (id === undefined || this.types[id] === TYPE.UNUSED) continue;
        if (this.scores[id] > bestScore) {
          bestScore = this.scores[id];
          bestAt = i;
        }
      }
      if (bestAt < 0) break;
      symbols.splice(bestAt, 2, symbols[bestAt] + symbols[bestAt + 1]);
    }
    return symbols.map((s) => {
      const id = this.pieces.get(s);
      return id === undefined || this.types[id] === TYPE.UNUSED ? this.unkId : id;
    });
  }

  /** Ids of text (already tinyclap-normalised), a run of unknown pieces merged into one. */
  encode(text) {
    const chars = [...this.normalizer.normalize(text)];
    const ids = this.modelType === "unigram" ? this.viterbi(chars) : this.bpe(chars);
    return ids.filter((id, i) => !(id === this.unkId && i > 0 && ids[i - 1] === this.unkId));
  }
}

/** Lower-case, single-spaced text (tinyclap.runtime.text.normalise). */
export function normalise(text) {
  return String(text).toLowerCase().split(/\s+/).filter(Boolean).join(" ");
}

/**
 * The text graph's inputs for texts: BigInt64Array ids and mask [B, L], right-padded with 0.
 * Each text: normalised, encoded, [unk] when empty, cut to maxLength (runtime/text.py).
 */
export function tokenize(sp, texts) {
  const rows = texts.map((t) => {
    const ids = sp.encode(normalise(t));
    return (ids.length ? ids : [sp.unkId]).slice(0, sp.maxLength);
  });
  const length = Math.max(1, ...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * length);
  const mask = new BigInt64Array(rows.length * length);
  rows.forEach((row, b) => {
    row.forEach((id, i) => {
      ids[b * length + i] = BigInt(id);
      mask[b * length + i] = 1n;
    });
  });
  return { ids, mask, rows, dims: [rows.length, length] };
}
