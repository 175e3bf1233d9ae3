"""Dataset preparations, one module per benchmark or corpus: SpeechBrain JSON manifests.

Every preparation is a function ``prepare_<name>(data_folder, save_folder,
**options) -> {split: manifest_path}``. An hparams file declares the one it
uses as an object, e.g.::

    prepare: !new:tinyclap.prepare.Preparation
        name: !ref <dataset>
        data_folder: !ref <data_folder>

or names a preparation function directly (``!name:my_corpus.prepare``): the
stages only call it.

**A new benchmark** is three files and a test: ``tinyclap/prepare/<name>.py``
with its ``prepare_<name>`` function (found by name: no table to edit) and, for
options beyond ``--data_folder`` / ``--save_folder`` / ``--allow_missing``, an
``add_arguments(parser)``; ``recipes/<Name>/<name>_prepare.py`` (one line:
``sys.exit(cli("<name>"))``) and ``recipes/<Name>/README.md``; and
``tests/prepare/test_<name>.py`` building the official layout with small audio.

Shared by every ``prepare_<name>(data_folder, save_folder, ..., allow_missing=False)``:

* ``save_folder``: where the manifests (``<split>.json``) and ``prepare_report.json`` go;
  a second call with the same options returns at once
  (:func:`tinyclap.data.manifests.prepare_once`);
* ``allow_missing``: drop clips listed in the metadata but missing on disk, counting
  them in ``prepare_report.json`` (:func:`tinyclap.data.manifests.preparation_report`),
  instead of raising :class:`tinyclap.data.manifests.MissingAudioError` (the default);
* the return value: ``{split: manifest_path}`` of the non-empty splits.

Every preparation runs from the command line as
``python -m tinyclap.prepare NAME --data_folder DIR [--save_folder DIR] [options]``.
"""

import importlib
import inspect
import pkgutil
import sys

# dataset name -> "module:function": every module here with a prepare_<module> function
PREPARATIONS = {
    info.name: f"{__name__}.{info.name}:prepare_{info.name}"
    for info in pkgutil.iter_modules(__path__)
    if not info.name.startswith("_")
}


def preparation_function(name):
    """The ``prepare_<name>`` function of a dataset name.

    Example
    -------
    >>> preparation_function("esc50").__name__
    'prepare_esc50'
    >>> preparation_function("esc-50")
    Traceback (most recent call last):
    ...
    ValueError: unknown dataset 'esc-50'; known: audiocaps, audiofolder, clotho, esc50, fsd50k, macs, synth, tut17, us8k
    """  # noqa: E501
    if name not in PREPARATIONS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(PREPARATIONS))}")
    module, function = PREPARATIONS[name].split(":")
    return getattr(importlib.import_module(module), function)


class Preparation:
    """A dataset preparation ready to run: ``prepare() -> {split: manifest_path}``.

    Parameters
    ----------
    name : str
        A key of :data:`PREPARATIONS`.
    data_folder : str
        Where the dataset lies (Synth: where it is generated).
    save_folder : str, optional
        Where manifests go (default: ``data_folder``).
    **options
        Options of the preparations; those the dataset's function does not
        take are left out (``test_folds`` means nothing to Synth), so that one
        hparams file serves every benchmark.

    Example
    -------
    >>> p = Preparation("esc50", "/data/ESC-50-master", n_train=3, test_folds=[1])
    >>> p.function.__name__, p.options
    ('prepare_esc50', {'test_folds': [1]})
    """

    def __init__(self, name, data_folder, save_folder=None, **options):
        self.name = name
        self.function = preparation_function(name)
        self.data_folder = str(data_folder)
        self.save_folder = str(save_folder or data_folder)
        accepted = inspect.signature(self.function).parameters
        self.options = {k: v for k, v in options.items() if k in accepted}

    def __call__(self):
        """Prepare (skipped when already prepared with the same options); ``{split: path}``."""
        manifests = self.function(self.data_folder, self.save_folder, **self.options)
        return {split: str(path) for split, path in manifests.items()}

    def report(self):
        """What the preparation dropped (:func:`tinyclap.data.manifests.preparation_report`)."""
        from tinyclap.data.manifests import preparation_report

        return preparation_report(self.save_folder)

    def __repr__(self):
        return f"Preparation({self.name!r}, {self.data_folder!r}, {self.save_folder!r})"


def main(name=None, argv=None):
    """``python -m tinyclap.prepare NAME --data_folder DIR ...``: run one preparation.

    Parameters
    ----------
    name : str, optional
        The dataset (default: the first of ``argv``).
    argv : list of str, optional
        The remaining arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    dict
        ``{split: manifest_path}``, also printed one split per line.
    """
    from tinyclap.data.manifests import prepare_cli

    argv = list(sys.argv[1:] if argv is None else argv)
    if name is None and argv and not argv[0].startswith("-"):
        name, argv = argv[0], argv[1:]
    if name not in PREPARATIONS:  # usage (exit 2), as every tinyclap command line
        known = ", ".join(sorted(PREPARATIONS))
        print("usage: python -m tinyclap.prepare NAME --data_folder DIR ...\n"
              f"tinyclap.prepare: error: NAME must be one of {known}"
              + (f", not {name!r}" if name else ""), file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    function = preparation_function(name)
    module = sys.modules[function.__module__]
    if hasattr(module, "main"):  # a preparation with a command line of its own (synth)
        return module.main(argv)
    description = (module.__doc__ or "").split("\n\n")[0]
    return prepare_cli(function, argv, description, getattr(module, "add_arguments", None))


def cli(name=None, argv=None):
    """:func:`main` as a command: errors as one line (exit 1), as every tinyclap command line.

    ``python -m tinyclap.prepare`` and the ``recipes/*/*_prepare.py`` scripts run this.

    Returns
    -------
    int
        0 when prepared; 1 for a missing or malformed dataset (the message names it).
    """
    try:
        main(name, argv)
    except (OSError, ValueError) as err:
        print(f"tinyclap.prepare: error: {err}", file=sys.stderr)
        return 1
    return 0
