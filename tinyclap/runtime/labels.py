"""Which embedding each requested label takes: a label set, a few-shot prototype, a prompt.

The one implementation of the rule, shared by the torch-free runtime
(:class:`tinyclap.runtime.classifier.RuntimeClassifier`) and the full install
(:class:`tinyclap.deploy.inference.ZeroShotAudioClassifier`, ``tinyclap classify``):

* a label set's name (``esc50``, ``adapted``...) takes the set's table as is;
* free-form labels (``"a,b"`` or a list) that name a *prototype* class of an
  adapted set (``tinyclap adapt``: kind ``prototype`` or ``mixed``) take that
  prototype, the folder's default set first, then the other sets by name; names
  match after :func:`~tinyclap.runtime.text.readable_label` and
  :func:`~tinyclap.runtime.text.normalise` (``Church_Bell`` is ``church bell``);
* every other label takes the embedding of its prompt (``this is the sound of {label}``);
* no labels at all take the folder's default set: the adapted set
  (``export.json["default_labels"]``, written by ``tinyclap adapt``).

:attr:`LabelPlan.note` says, in one line, when prototypes or the default set
were used, so that typing an adapted class's name never silently falls back
to its text prompt.

Example
-------
>>> sets = {"adapted": {"labels": ["siren", "rain"], "prompts": ["<prototype> siren", "x"],
...                     "kinds": ["prototype", "text"]}}
>>> plan = plan_labels("Siren,dog", sets, "this is the sound of {label}", default="adapted")
>>> plan.names, plan.sources
(['Siren', 'dog'], [('set', 'adapted', 0), ('prompt', 'this is the sound of dog')])
>>> plan.note
"label 'Siren' uses the few-shot prototype of 'siren' in the set 'adapted' (tinyclap adapt)"
>>> plan_labels(None, sets, "{label}", default="adapted").note
"no labels given: the folder's default label set 'adapted' (2 classes)"
"""

from dataclasses import dataclass, field

from tinyclap.runtime.text import normalise, readable_label

PROTOTYPE_KINDS = ("prototype", "mixed")


class NoLabelsError(ValueError):
    """No labels were given and the folder has no default label set."""


def match_key(label):
    """How a typed label is matched to a class name (``Door_Knock`` -> ``door knock``).

    Example
    -------
    >>> match_key("  Church_Bell ")
    'church bell'
    """
    return normalise(readable_label(label))


def default_label_set(info, sets):
    """The folder's default label set (``export.json``): its adapted set, or None.

    Example
    -------
    >>> default_label_set({"adapted": {"set": "mine"}}, {"mine": {}})
    'mine'
    >>> default_label_set({}, {"esc50": {}}) is None
    True
    """
    info = info or {}
    name = info.get("default_labels") or (info.get("adapted") or {}).get("set")
    return name if name in sets else None


def prototype_classes(sets, default=None):
    """``{match key: (set name, row, class name)}`` of every prototype class of ``sets``.

    The default set's classes win over other sets', then sets in name order.
    """
    found = {}
    order = ([default] if default in sets else []) + sorted(n for n in sets if n != default)
    for set_name in order:
        table = sets[set_name]
        for row, (name, kind) in enumerate(zip(table["labels"], table.get("kinds") or [])):
            if kind in PROTOTYPE_KINDS:
                found.setdefault(match_key(name), (set_name, row, name))
    return found


@dataclass
class LabelPlan:
    """The score columns of a label spec and where each column's embedding comes from.

    Attributes
    ----------
    names : list of str
        Class names, in score-column order.
    sources : list of tuple
        Per column ``("set", set name, row)`` (a table row) or ``("prompt", prompt)``.
    set_name : str or None
        The whole set asked for by name (every source is then one of its rows).
    default : bool
        True when no labels were given and the default set was used.
    prototypes : list of tuple
        ``(typed label, set name, class name)`` of free-form labels given a prototype.
    """

    names: list
    sources: list
    set_name: str = None
    default: bool = False
    prototypes: list = field(default_factory=list)

    @property
    def prompts(self):
        """The prompts to embed (the ``("prompt", ...)`` sources), in column order."""
        return [source[1] for source in self.sources if source[0] == "prompt"]

    @property
    def note(self):
        """One line for the user when the labels did not mean their text prompts ("" if none)."""
        if self.default:
            return (f"no labels given: the folder's default label set {self.set_name!r} "
                    f"({len(self.names)} classes)")  # fmt: skip
        if not self.prototypes:
            return ""
        if len(self.prototypes) == 1:
            typed, set_name, name = self.prototypes[0]
            return (f"label {typed!r} uses the few-shot prototype of {name!r} in the set "
                    f"{set_name!r} (tinyclap adapt)")  # fmt: skip
        sets = sorted({p[1] for p in self.prototypes})
        return (f"{len(self.prototypes)} labels use few-shot prototypes (tinyclap adapt) of "
                f"the set(s) {', '.join(map(repr, sets))}, not their text prompts: "
                f"{', '.join(p[0] for p in self.prototypes)}")  # fmt: skip

    def describe(self):
        """Per column ``{"label", "source", "set"}``; source: ``set``, ``prototype``, ``text``."""
        rows = []
        typed = {p[0] for p in self.prototypes}
        for name, source in zip(self.names, self.sources):
            kind = (
                "text"
                if source[0] == "prompt"
                else ("prototype" if name in typed and self.set_name is None else "set")
            )
            rows.append({"label": name, "source": kind,
                         "set": source[1] if source[0] == "set" else None})  # fmt: skip
        return rows


def plan_labels(labels, sets, template, default=None):
    """The :class:`LabelPlan` of a label spec (see the module docstring for the rule).

    Parameters
    ----------
    labels : str or list of str or None
        A set's name, ``"a,b,c"``, a list of labels, or None (the default set).
    sets : dict
        ``{set name: {"labels", "prompts", "kinds" (adapted sets)...}}`` (the folder's tables).
    template : str
        The prompt template (``{label}`` filled with :func:`readable_label`).
    default : str, optional
        The folder's default set (:func:`default_label_set`).

    Raises
    ------
    NoLabelsError
        No labels given and no default set, or an empty list.
    """
    from_default = labels is None or (isinstance(labels, str) and not labels.strip())
    if from_default:
        if default is None or default not in sets:
            raise NoLabelsError(
                "no labels given, and this model has no default label set (a folder made by "
                "`tinyclap adapt` has one): pass labels, 'a,b,c' or a set name "
                f"({', '.join(sorted(sets))})"
            )
        labels = default
    if isinstance(labels, str):
        if labels in sets:
            names = list(sets[labels]["labels"])
            return LabelPlan(names, [("set", labels, i) for i in range(len(names))], labels,
                             from_default)  # fmt: skip
        labels = [part.strip() for part in labels.split(",") if part.strip()]
    labels = [str(label) for label in labels]
    if not labels:
        raise NoLabelsError("no labels given")
    found = prototype_classes(sets, default)
    sources, prototypes = [], []
    for label in labels:
        hit = found.get(match_key(label))
        if hit is not None:
            sources.append(("set", hit[0], hit[1]))
            prototypes.append((label, hit[0], hit[2]))
        else:
            sources.append(("prompt", template.format(label=readable_label(label))))
    return LabelPlan(labels, sources, prototypes=prototypes)
