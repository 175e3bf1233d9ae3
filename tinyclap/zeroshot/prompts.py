"""Class embeddings from text prompts such as ``this is the sound of {label}``.

One template, or several whose embeddings are averaged (prompt ensembling).
"""

import torch
import torch.nn.functional as F

from tinyclap.nn.latent import restrict_embeddings
from tinyclap.runtime.text import DEFAULT_TEMPLATE  # noqa: F401  (one template for all)


def class_prompts(labels, template=DEFAULT_TEMPLATE):
    """Fill ``template`` with each label.

    Example
    -------
    >>> class_prompts(["dog barking", "rain"])
    ['this is the sound of dog barking', 'this is the sound of rain']
    """
    if "{label}" not in template:
        raise ValueError(f"prompt template {template!r} has no {{label}} field")
    return [template.format(label=label) for label in labels]


def prompt_embeddings(teacher, prompts, encoder=None):
    """The teacher's prompt embeddings in ``encoder``'s latent space.

    A pruned student (``encoder.kept_dims`` set) sees only its kept
    dimensions: the text embeddings are sliced (or masked, for a mask-only
    student) and re-normalised, so zero-shot scores stay cosines.

    Parameters
    ----------
    teacher : object
        Has ``embed_text(list[str]) -> [N, D]``.
    prompts : list of str
        One prompt per class.
    encoder : object, optional
        The audio encoder the prompts will be compared with.
    """
    embeddings = teacher.embed_text(list(prompts))
    return restrict_embeddings(
        embeddings, getattr(encoder, "kept_dims", None), getattr(encoder, "masked", False)
    )


def ensemble_prompt_embeddings(teacher, labels, templates=DEFAULT_TEMPLATE, encoder=None):
    """Class text embeddings from one prompt template or an ensemble of them.

    With several templates, each class's prompt embeddings are L2-normalised,
    averaged over the templates and normalised again (CLIP-style prompt
    ensembling). One template gives exactly :func:`prompt_embeddings`.

    Parameters
    ----------
    teacher : object
        Has ``embed_text(list[str]) -> [N, D]``.
    labels : list of str
        Class names as they go into the prompts.
    templates : str or list of str
        Template(s) with a ``{label}`` field.
    encoder : object, optional
        The audio encoder (a pruned student sees its kept dimensions only).

    Returns
    -------
    Tensor
        ``[C, D]`` (or ``[C, K]``) L2-normalised class embeddings.

    Example
    -------
    >>> class Toy:
    ...     def embed_text(self, texts):
    ...         return F.normalize(torch.tensor([[len(t), 1.0] for t in texts]), dim=-1)
    >>> ensemble_prompt_embeddings(Toy(), ["a", "bb"], ["{label}", "x {label}"]).shape
    torch.Size([2, 2])
    """
    if isinstance(templates, str):
        templates = [templates]
    templates = list(templates)
    if not templates:
        raise ValueError("prompt_template: give one template or a non-empty list")
    if len(templates) == 1:
        return prompt_embeddings(teacher, class_prompts(labels, templates[0]), encoder)
    embeddings = torch.stack(
        [
            F.normalize(prompt_embeddings(teacher, class_prompts(labels, t), encoder), dim=-1)
            for t in templates
        ]
    )
    return F.normalize(embeddings.mean(0), dim=-1)
