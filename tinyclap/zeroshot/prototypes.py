"""Few-shot classes: prototypes from a handful of example embeddings.

A class without a good text prompt (or one the teacher never heard) is added
from a few recordings: its *prototype* is the L2-normalised mean of the
student's (L2-normalised) embeddings of those recordings, and it is scored by
cosine like a prompt embedding. A prototype can be mixed with the class's
text embedding, ``normalise((1 - w) * prototype + w * text)``, where ``w`` is
the text weight (0: prototype only, 1: text only).
"""

import torch
import torch.nn.functional as F

KINDS = ("text", "prototype", "mixed")


def class_prototype(embeddings):
    """The prototype of one class: the normalised mean of its normalised example embeddings.

    Parameters
    ----------
    embeddings : Tensor
        ``[k, K]`` embeddings of the class's k examples (normalised here first).

    Returns
    -------
    Tensor
        ``[K]``, unit norm.

    Example
    -------
    >>> class_prototype(torch.tensor([[2.0, 0.0], [0.0, 1.0]])).tolist()
    [0.7071067690849304, 0.7071067690849304]
    """
    embeddings = torch.as_tensor(embeddings, dtype=torch.float32)
    if embeddings.dim() != 2 or len(embeddings) == 0:
        raise ValueError(f"expected [k >= 1, K] example embeddings, got {tuple(embeddings.shape)}")
    return F.normalize(F.normalize(embeddings, dim=-1).mean(0), dim=-1)


def mix_with_text(prototype, text_embedding, text_weight):
    """Mix a prototype with the class's text embedding: ``normalise((1-w) p + w t)``.

    Parameters
    ----------
    prototype, text_embedding : Tensor
        ``[K]`` (or ``[C, K]``) embeddings, normalised here.
    text_weight : float
        ``w`` in [0, 1]: 0 keeps the prototype, 1 the text embedding.

    Example
    -------
    >>> mix_with_text(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.5).tolist()
    [0.7071067690849304, 0.7071067690849304]
    """
    w = float(text_weight)
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"text_weight must be in [0, 1], got {w}")
    p = F.normalize(torch.as_tensor(prototype, dtype=torch.float32), dim=-1)
    t = F.normalize(torch.as_tensor(text_embedding, dtype=torch.float32), dim=-1)
    return F.normalize((1.0 - w) * p + w * t, dim=-1)


def class_table(examples, text=None, text_weight=0.0):
    """Class embeddings from example embeddings and, optionally, text embeddings.

    Parameters
    ----------
    examples : dict
        ``{class: [k, K] example embeddings}``: prototype classes.
    text : dict, optional
        ``{class: [K] text embedding}``. A class only here is a text class; a
        class in both is a prototype mixed with its text (``text_weight > 0``)
        or a prototype (``text_weight == 0``).
    text_weight : float
        See :func:`mix_with_text`.

    Returns
    -------
    (list of str, Tensor, list of str)
        Class names (text classes first, in ``text`` order, then the other
        example classes in ``examples`` order), ``[C, K]`` embeddings and each
        class's kind (``text``, ``prototype`` or ``mixed``).

    Example
    -------
    >>> names, table, kinds = class_table({"b": torch.eye(2)[1:]}, {"a": torch.eye(2)[0]})
    >>> names, table.tolist(), kinds
    (['a', 'b'], [[1.0, 0.0], [0.0, 1.0]], ['text', 'prototype'])
    """
    text = dict(text or {})
    names = list(text) + [c for c in examples if c not in text]
    rows, kinds = [], []
    for name in names:
        if name not in examples:
            rows.append(F.normalize(torch.as_tensor(text[name], dtype=torch.float32), dim=-1))
            kinds.append("text")
            continue
        prototype = class_prototype(examples[name])
        if name in text and float(text_weight) > 0:
            rows.append(mix_with_text(prototype, text[name], text_weight))
            kinds.append("mixed")
        else:
            rows.append(prototype)
            kinds.append("prototype")
    if not rows:
        raise ValueError("no classes: give example embeddings or text embeddings")
    return names, torch.stack(rows), kinds
