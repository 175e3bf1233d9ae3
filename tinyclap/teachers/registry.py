"""The teacher table: every teacher family, how its names are recognised, loaded and sized.

:func:`tinyclap.teachers.load_teacher` and the benches (``tinyclap bench deploy``)
read this one table, so a new teacher costs its module (a loader, and for the
benches a random-weight audio tower) plus one :class:`TeacherFamily` row here
and a test. Loaders and towers are named as ``"module:function"`` strings and
imported only when used, so reading the table imports no model library.

Example
-------
>>> family_of("msclap-2023").clip_seconds
7.0
>>> family_of("laion/clap-htsat-unfused").name
'transformers-clap'
>>> family_of("runs/teacher.ckpt").name
'mini'
>>> sorted(f.bench_name for f in FAMILIES if f.audio_tower)
['laion', 'msclap-2022', 'msclap-2023']
"""

import importlib
from dataclasses import dataclass, field

from tinyclap.audio.features import CLAP2022_FRONTEND, LAION_FRONTEND


def _is_msclap(version):
    return lambda name: str(name) == version


def _is_transformers_clap(name):
    from tinyclap.teachers.transformers_clap import is_transformers_clap

    return is_transformers_clap(name)


@dataclass(frozen=True)
class TeacherFamily:
    """One row of the teacher table.

    Attributes
    ----------
    name : str
        The family's name (``msclap-2022``, ``transformers-clap``, ``mini``).
    matches : callable
        ``name_or_path -> bool``: whether ``load_teacher`` hands this name to the family.
    loader : str
        ``"module:function"`` called as ``function(name, checkpoint=..., device=..., **kwargs)``.
    frontend : dict, optional
        :class:`~tinyclap.audio.features.LogMel` settings a student of this teacher
        uses (``None`` where each checkpoint records its own, as ``mini``).
    clip_seconds : float, optional
        The teacher's window.
    embedding_dim : int, optional
        Size of the shared latent space.
    audio_tower : str, optional
        ``"module:function"`` returning ``(callable [B, T] -> [B, D], params)``:
        the audio tower with random weights, for the deploy bench.
    bench_name : str, optional
        The name ``tinyclap bench deploy --teachers`` uses (default: ``name``).
    """

    name: str
    matches: object
    loader: str
    frontend: dict = field(default=None)
    clip_seconds: float = None
    embedding_dim: int = None
    audio_tower: str = None
    bench_name: str = None

    def __post_init__(self):
        """Default ``bench_name`` to ``name``."""
        if self.bench_name is None:
            object.__setattr__(self, "bench_name", self.name)

    def load(self, name, checkpoint=None, device="cpu", **kwargs):
        """Import the loader and call it."""
        return _resolve(self.loader)(name, checkpoint=checkpoint, device=device, **kwargs)

    def random_tower(self):
        """``(callable, params)``: the audio tower with random weights (benches only)."""
        if not self.audio_tower:
            raise ValueError(f"the {self.name} teacher has no random audio tower for benches")
        return _resolve(self.audio_tower)(self.name)


def _resolve(target):
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


FAMILIES = (
    TeacherFamily("msclap-2022", _is_msclap("msclap-2022"),
                  "tinyclap.teachers.msclap:load_msclap_teacher", CLAP2022_FRONTEND, 5.0, 1024,
                  "tinyclap.teachers.msclap:random_audio_tower"),
    TeacherFamily("msclap-2023", _is_msclap("msclap-2023"),
                  "tinyclap.teachers.msclap:load_msclap_teacher", CLAP2022_FRONTEND, 7.0, 1024,
                  "tinyclap.teachers.msclap:random_audio_tower"),
    TeacherFamily("transformers-clap", _is_transformers_clap,
                  "tinyclap.teachers.transformers_clap:load_transformers_clap_teacher",
                  LAION_FRONTEND, 10.0, 512,
                  "tinyclap.teachers.transformers_clap:random_audio_tower", bench_name="laion"),
    # last: any other name is a mini-teacher checkpoint path (or "mini" + mini_checkpoint)
    TeacherFamily("mini", lambda name: True, "tinyclap.teachers.mini:load_named_mini_teacher"),
)  # fmt: skip


def family_of(name_or_path):
    """The first family whose ``matches`` accepts ``name_or_path`` (``mini`` at worst)."""
    return next(family for family in FAMILIES if family.matches(name_or_path))


def bench_family(bench_name):
    """The family ``tinyclap bench deploy --teachers NAME`` means.

    Example
    -------
    >>> bench_family("laion").embedding_dim
    512
    """
    for family in FAMILIES:
        if family.audio_tower and family.bench_name == bench_name:
            return family
    names = [f.bench_name for f in FAMILIES if f.audio_tower]
    raise ValueError(f"unknown teacher {bench_name!r}: use one of {names}")


def named_families():
    """Names that ``load_teacher`` accepts as they are (no path): ``msclap-2022``, ..."""
    return tuple(f.name for f in FAMILIES if f.name.startswith("msclap"))
