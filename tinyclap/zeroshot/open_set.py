"""Open set ("none of these") and multi-label decisions on cosine scores.

Both are thresholds on the cosine between a clip and the class embeddings,
chosen on a validation split:

* **rejection** (open set): a clip whose best cosine is below ``t`` is
  "none of these". :func:`calibrate_rejection` picks ``t`` so that a given
  fraction of the validation clips of known classes is accepted (only known
  clips needed), or, given validation clips of classes outside the label list
  too, the ``t`` that maximises the mean of known acceptance and unknown
  rejection (balanced accuracy of the accept/reject decision);
* **multi-label**: class ``c`` is present when its cosine is at least
  ``t_c``. :func:`calibrate_label_thresholds` picks each ``t_c`` maximising
  that class's F1 on the validation clips (a class without validation
  positives gets the threshold that maximises the micro F1 of all classes).

:func:`open_set_metrics` and :func:`multilabel_metrics` score the decisions.
Everything here works on plain tensors; the calibration stored in an
exported folder is :mod:`tinyclap.deploy.calibration`.
"""

import torch

REJECTED = -1  # the index of "none of these"


def _candidates(values):
    """Midpoints between sorted distinct values, plus both ends (threshold candidates)."""
    values = torch.unique(torch.as_tensor(values, dtype=torch.float64).flatten())
    if len(values) == 0:
        return torch.tensor([0.0], dtype=torch.float64)
    mids = (values[1:] + values[:-1]) / 2
    return torch.cat([values[:1] - 1e-6, mids, values[-1:] + 1e-6])


def calibrate_rejection(known_best, unknown_best=None, known_accept=0.95):
    """A rejection threshold on the best cosine.

    Parameters
    ----------
    known_best : Tensor
        ``[N]`` best cosine of validation clips of classes in the label list.
    unknown_best : Tensor, optional
        ``[M]`` best cosine of validation clips of classes outside it.
    known_accept : float
        Without ``unknown_best``: the fraction of known clips to accept (the
        threshold is the ``1 - known_accept`` quantile of ``known_best``).

    Returns
    -------
    dict
        ``{"threshold", "method", "known_accept", "unknown_reject" (or None),
        "num_known", "num_unknown"}``, the rates measured on the validation clips.

    Example
    -------
    >>> known, unknown = torch.tensor([0.5, 0.6, 0.7, 0.8]), torch.tensor([0.1, 0.55])
    >>> calibrate_rejection(known, unknown)["threshold"]
    0.575
    """
    known = torch.as_tensor(known_best, dtype=torch.float64).flatten()
    if len(known) == 0:
        raise ValueError("calibrate_rejection: no validation clips of known classes")
    if unknown_best is None or len(unknown_best) == 0:
        threshold = float(torch.quantile(known, 1.0 - float(known_accept)))
        method = f"quantile: accept {known_accept:.0%} of known validation clips"
        unknown = None
    else:
        unknown = torch.as_tensor(unknown_best, dtype=torch.float64).flatten()
        candidates = _candidates(torch.cat([known, unknown]))
        accept = (known[None] >= candidates[:, None]).double().mean(1)
        reject = (unknown[None] < candidates[:, None]).double().mean(1)
        balanced = (accept + reject) / 2
        best = int(torch.argmax(balanced))  # the lowest threshold among ties
        threshold = float(candidates[best])
        method = "balanced: max (known acceptance + unknown rejection) / 2"
    return {
        "threshold": round(threshold, 6),
        "method": method,
        "known_accept": float((known >= threshold).double().mean()),
        "unknown_reject": None if unknown is None else float((unknown < threshold).double().mean()),
        "num_known": len(known),
        "num_unknown": 0 if unknown is None else len(unknown),
    }


def _f1(tp, fp, fn):
    tp, fp, fn = (torch.as_tensor(x).double() for x in (tp, fp, fn))
    return 2 * tp / torch.clamp(2 * tp + fp + fn, min=1e-12)


def calibrate_label_thresholds(scores, targets):
    """Per-class multi-label thresholds maximising each class's F1 on validation clips.

    Parameters
    ----------
    scores : Tensor
        ``[N, C]`` cosines of validation clips.
    targets : Tensor
        ``[N, C]`` booleans: which classes each clip holds.

    Returns
    -------
    (list of float, float)
        ``C`` thresholds and the shared one (max micro F1 over all classes),
        used for classes without validation positives.

    Example
    -------
    >>> s = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6]])
    >>> t = torch.tensor([[1, 0], [0, 1], [1, 1]]).bool()
    >>> per_class, shared = calibrate_label_thresholds(s, t)
    >>> [round(x, 2) for x in per_class]
    [0.45, 0.35]
    """
    scores = torch.as_tensor(scores, dtype=torch.float64)
    targets = torch.as_tensor(targets).bool()
    if scores.shape != targets.shape or scores.dim() != 2:
        raise ValueError(f"scores {tuple(scores.shape)} and targets {tuple(targets.shape)} differ")
    candidates = _candidates(scores)
    predicted = scores[None] >= candidates[:, None, None]  # [T, N, C]
    positive = targets[None]
    tp = (predicted & positive).sum((1, 2)).double()
    fp = (predicted & ~positive).sum((1, 2)).double()
    fn = (~predicted & positive).sum((1, 2)).double()
    micro = _f1(tp, fp, fn)
    shared = float(candidates[int(torch.argmax(micro))])
    per_class = []
    for c in range(scores.shape[1]):
        if not targets[:, c].any():
            per_class.append(round(shared, 6))
            continue
        own = _candidates(scores[:, c])  # midway between this class's own scores
        hit = scores[None, :, c] >= own[:, None]
        positive = targets[None, :, c]
        f1 = _f1((hit & positive).sum(1), (hit & ~positive).sum(1), (~hit & positive).sum(1))
        per_class.append(round(float(own[int(torch.argmax(f1))]), 6))
    return per_class, round(shared, 6)


def reject_decisions(scores, threshold):
    """Best class index per clip; :data:`REJECTED` (-1) where the best cosine < ``threshold``.

    Example
    -------
    >>> reject_decisions(torch.tensor([[0.2, 0.6], [0.1, 0.3]]), 0.5).tolist()
    [1, -1]
    """
    best, index = torch.as_tensor(scores).max(dim=-1)
    return torch.where(best >= float(threshold), index, torch.full_like(index, REJECTED))


def multilabel_decisions(scores, thresholds):
    """``[N, C]`` booleans: class ``c`` present where its cosine is at least ``thresholds[c]``.

    Example
    -------
    >>> multilabel_decisions(torch.tensor([[0.2, 0.6]]), [0.1, 0.7]).tolist()
    [[True, False]]
    """
    scores = torch.as_tensor(scores)
    limits = torch.as_tensor(thresholds, dtype=scores.dtype).reshape(1, -1)
    return scores >= limits


def open_set_metrics(decisions, targets):
    """Scores of open-set decisions.

    Parameters
    ----------
    decisions : Tensor
        ``[N]`` predicted class index, or :data:`REJECTED`.
    targets : Tensor
        ``[N]`` true class index, or :data:`REJECTED` for a clip of a class
        outside the label list.

    Returns
    -------
    dict
        ``known_accuracy`` (known clips given their class; a rejection is an
        error), ``known_rejected`` (known clips wrongly rejected),
        ``unknown_rejection`` (clips outside the list rejected: the open-set
        rejection rate), ``precision`` / ``recall`` / ``f1`` of the accepted
        predictions (precision: correct among accepted clips; recall: correct
        among known clips), and the counts.

    Example
    -------
    >>> m = open_set_metrics(torch.tensor([0, -1, 1, -1]), torch.tensor([0, 1, -1, -1]))
    >>> m["known_accuracy"], m["unknown_rejection"], m["precision"]
    (0.5, 0.5, 0.5)
    """
    decisions, targets = torch.as_tensor(decisions), torch.as_tensor(targets)
    known, unknown = targets != REJECTED, targets == REJECTED
    accepted = decisions != REJECTED
    correct = (decisions == targets) & known
    n_known, n_unknown = int(known.sum()), int(unknown.sum())
    precision = float(correct.sum()) / max(1, int(accepted.sum()))
    recall = float(correct.sum()) / max(1, n_known)
    return {
        "known_accuracy": recall,
        "known_rejected": float((~accepted & known).sum()) / max(1, n_known),
        "unknown_rejection": float((~accepted & unknown).sum()) / max(1, n_unknown),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(1e-12, precision + recall),
        "num_known": n_known,
        "num_unknown": n_unknown,
    }


def multilabel_metrics(predicted, targets):
    """Micro precision / recall / F1, macro F1 and exact-match rate of multi-label decisions.

    Example
    -------
    >>> p = torch.tensor([[1, 1, 0], [0, 0, 0]]).bool()
    >>> t = torch.tensor([[1, 0, 0], [0, 0, 1]]).bool()
    >>> m = multilabel_metrics(p, t)
    >>> m["precision"], m["recall"], m["exact_match"]
    (0.5, 0.5, 0.0)
    """
    predicted, targets = torch.as_tensor(predicted).bool(), torch.as_tensor(targets).bool()
    tp = (predicted & targets).sum(0).double()
    fp = (predicted & ~targets).sum(0).double()
    fn = (~predicted & targets).sum(0).double()
    precision = float(tp.sum() / torch.clamp(tp.sum() + fp.sum(), min=1))
    recall = float(tp.sum() / torch.clamp(tp.sum() + fn.sum(), min=1))
    present = targets.any(0)
    macro = _f1(tp, fp, fn)[present].mean() if present.any() else torch.tensor(0.0)
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(1e-12, precision + recall),
        "macro_f1": float(macro),
        "exact_match": float((predicted == targets).all(1).double().mean()),
        "labels_per_clip": float(predicted.sum(1).double().mean()),
        "num_clips": int(len(targets)),
    }
