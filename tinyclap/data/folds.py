"""Cross-validation folds and low-resource labelled subsets of a manifest pool.

ESC-50 style evaluation: the clips carry a ``fold`` (1..n); a run trains on
all folds but one and tests on the held-out one. Manifests with an integer
``fold`` field (the official ESC-50 folds) keep it; manifests without one
(the embedded Synth set) get deterministic folds, stratified by ``label``:
within each label the clip ids are sorted, shuffled with ``fold_seed`` and dealt
round-robin to folds 1..n, so every fold holds the same number of clips of
each class (up to one).

A pool for single-label classification keeps only the clips with one class:
:func:`single_label_pool` leaves out the mixtures (``labels`` listing two or
more classes) and returns how many it left out, for the stage's results.
"""

import random
from collections import defaultdict


def assign_folds(entries, num_folds=5, fold_seed=0):
    """``{id: fold}`` from each entry's ``fold``, else stratified by ``label``.

    Parameters
    ----------
    entries : dict
        ``{id: {"label": str, "fold": int (optional), ...}}``.
    num_folds : int
        Number of folds when they are assigned here.
    fold_seed : int
        Seed of the assignment (fixed, so folds do not change with the
        training seed).

    Returns
    -------
    dict
        ``{id: fold}`` with folds in ``1..num_folds``.

    Example
    -------
    >>> entries = {f"c{i}": {"label": "ab"[i % 2]} for i in range(10)}
    >>> folds = assign_folds(entries, num_folds=5)
    >>> sorted(folds.values())
    [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    >>> assign_folds({"x": {"label": "a", "fold": 3}})
    {'x': 3}
    """
    given = [key for key, e in entries.items() if "fold" in e]
    if given:
        if len(given) != len(entries):
            missing = sorted(set(entries) - set(given))[:3]
            raise ValueError(f"some entries have a 'fold' and others not (e.g. {missing})")
        return {key: int(e["fold"]) for key, e in entries.items()}
    by_label = defaultdict(list)
    for key, entry in entries.items():
        by_label[entry["label"]].append(key)
    rng = random.Random(fold_seed)
    folds = {}
    for label in sorted(by_label):
        keys = sorted(by_label[label])
        rng.shuffle(keys)
        folds.update({key: i % num_folds + 1 for i, key in enumerate(keys)})
    return folds


def labeled_subset(keys, entries, per_class=None, seed=0):
    """A few labelled clips per class of ``keys`` (all of them when ``per_class`` is None).

    Parameters
    ----------
    keys : iterable of str
        Candidate clip ids (the training folds).
    entries : dict
        ``{id: {"label": str, ...}}``.
    per_class : int, optional
        Clips drawn per class (a class with fewer clips keeps all of them).
    seed : int
        Seed of the draw.

    Returns
    -------
    list of str
        Sorted ids of the subset.

    Example
    -------
    >>> entries = {f"c{i}": {"label": "ab"[i % 2]} for i in range(10)}
    >>> subset = labeled_subset(entries, entries, per_class=2, seed=1)
    >>> len(subset), sorted({entries[k]["label"] for k in subset})
    (4, ['a', 'b'])
    """
    keys = sorted(keys)
    if per_class is None:
        return keys
    if int(per_class) < 1:
        raise ValueError(f"labeled_per_class must be >= 1 or null, got {per_class}")
    by_label = defaultdict(list)
    for key in keys:
        by_label[entries[key]["label"]].append(key)
    rng = random.Random(seed)
    chosen = []
    for label in sorted(by_label):
        candidates = by_label[label]
        chosen.extend(rng.sample(candidates, min(int(per_class), len(candidates))))
    return sorted(chosen)


def single_label_pool(entries):
    """Split a manifest pool into single-label clips and a count of the others.

    A clip whose ``labels`` list holds two or more distinct classes (the
    two-class mixtures of the Synth set) has no one true class, so it cannot
    be scored by a single-label classifier; it is left out and counted.
    Clips without ``labels`` have the one class of their ``label``.

    Parameters
    ----------
    entries : dict
        ``{id: {"label": str, "labels": list (optional), ...}}`` in pool order.

    Returns
    -------
    kept : dict
        The single-label entries, in their original order (same objects).
    dropped : int
        How many multi-label entries were left out (to log, and to record
        in ``results.json``).

    Example
    -------
    >>> pool = {"a": {"label": "dog"}, "b": {"label": "dog", "labels": ["dog", "rain"]},
    ...         "c": {"label": "rain", "labels": ["rain"]}}
    >>> kept, dropped = single_label_pool(pool)
    >>> list(kept), dropped
    (['a', 'c'], 1)
    """
    kept = {}
    for key, entry in entries.items():
        labels = entry.get("labels")
        if labels is None:
            labels = [entry.get("label")]
        if len(set(labels)) <= 1:
            kept[key] = entry
    return kept, len(entries) - len(kept)
