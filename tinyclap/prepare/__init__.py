"""Dataset preparations, one module per benchmark or corpus: SpeechBrain JSON manifests.

Every preparation is a function ``prepare_<name>(data_folder, save_folder,
**options) -> {split: manifest_path}``. An hparams file declares the one it
uses as an object, e.g.::

    prepare: !new:tinyclap.prepare.Preparation
        name: !ref <dataset>
        data_folder: !ref <data_folder>

or names a preparation function directly (``!name:my_corpus.prepare``): the
stages only call it. A new benchmark is one module here with its
``prepare_<name>`` function, one line in :data:`PREPARATIONS`, a README under
``recipes/`` and a test.
"""

import importlib
import inspect

# dataset name -> "module:function"
PREPARATIONS = {
    "synth": "tinyclap.prepare.synth:prepare_synth",
    "esc50": "tinyclap.prepare.esc50:prepare_esc50",
    "us8k": "tinyclap.prepare.us8k:prepare_us8k",
    "tut17": "tinyclap.prepare.tut17:prepare_tut17",
    "audiocaps": "tinyclap.prepare.audiocaps:prepare_audiocaps",
    "clotho": "tinyclap.prepare.clotho:prepare_clotho",
    "macs": "tinyclap.prepare.macs:prepare_macs",
    "fsd50k": "tinyclap.prepare.fsd50k:prepare_fsd50k",
    "audiofolder": "tinyclap.prepare.audiofolder:prepare_audiofolder",
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
