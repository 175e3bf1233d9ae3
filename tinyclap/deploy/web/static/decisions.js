// Decisions on cosine scores: open set ("none of these"), multi-label, timeline rows.
//
// The rules of tinyclap.runtime.decisions with the exported thresholds (open_set.json, inlined
// in model.json as "calibration"): the best label is rejected below reject_threshold; every
// label at or above its threshold (label_thresholds, else shared_label_threshold) is present,
// best first. Scores and thresholds are compared as float32, as the Python side compares them.
//
//   openSet([0.4, 0.7], ["a", "b"], calibration)  // -> { index: 1, label: "b", best: 0.7 }

const f32 = Math.fround;

/** Index of the first maximum of scores (ties go to the label listed first). */
export function argmax(scores) {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return best;
}

/** Indices of scores, highest first (stable: ties keep the label order). */
export function ranked(scores) {
  return scores.map((s, i) => [s, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map((p) => p[1]);
}

/** {best, index, label}: the best label, or index -1 and label null below the threshold. */
export function openSet(scores, names, calibration) {
  if (!calibration) return null;
  const index = argmax(scores);
  const best = scores[index];
  const keep = f32(best) >= f32(calibration.reject_threshold);
  return { best, index: keep ? index : -1, label: keep ? names[index] : null };
}

/** Threshold of each label: calibrated, else the shared one (runtime label_thresholds). */
export function labelThresholds(calibration, names) {
  const table = calibration.label_thresholds || {};
  const shared = calibration.shared_label_threshold ?? 0.5;
  return names.map((n) => f32(n in table ? table[n] : shared));
}

/** Labels at or above their thresholds, best first (runtime multi_label_decisions). */
export function multiLabel(scores, names, calibration) {
  if (!calibration) return null;
  const limits = labelThresholds(calibration, names);
  return ranked(scores).filter((i) => f32(scores[i]) >= limits[i]).map((i) => names[i]);
}
