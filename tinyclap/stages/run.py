"""The entry point behind ``train.py`` and ``tinyclap train``: load the hparams, run the stage.

``python train.py hparams/<stage>.yaml [--key value ...]``. The hparams file
declares everything as objects (the teacher, the frontend, the student, the
loss, the data preparation, the checkpointers) and names the function that
runs the stage (``stage: !name:tinyclap.stages.distill.run_distill``); this
module only loads the file, records how each ``!new:`` object was built (so
that a student checkpoint can rebuild its student, :mod:`tinyclap.nn.specs`),
puts the frozen teacher on the run's device and calls the stage.

``--check_audio`` decodes every clip of the prepared manifests and reports the
unreadable ones instead of running the stage.

The hparams files ship inside the package (``tinyclap/hparams/``; ``hparams/`` of
a checkout points there), so ``hparams/distill.yaml`` or just ``distill`` names
one from any working directory (:func:`resolve_hparams`), and
``python -m tinyclap.stages.run`` (:func:`stage_command`) runs a stage without
the repository's ``train.py``: that is how ``tinyclap demo``, ``sweep`` and
``study transfer_compare`` start their stages.
"""

import json
import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from tinyclap.nn.specs import recording_constructions
from tinyclap.training.data import check_audio, prepare_data

PACKAGED_HPARAMS = Path(__file__).resolve().parents[1] / "hparams"


def resolve_hparams(hparams_file):
    """The hparams file a path or a stage name means.

    An existing file is used as it is; otherwise ``hparams/<stage>.yaml``,
    ``<stage>.yaml`` and ``<stage>`` name the file shipped in the package.

    Raises
    ------
    FileNotFoundError
        Naming the path and the stages that ship.

    Example
    -------
    >>> resolve_hparams("distill").name
    'distill.yaml'
    >>> resolve_hparams("hparams/prune.yaml").parent.name
    'hparams'
    """
    path = Path(hparams_file)
    if path.is_file():
        return path
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    packaged = PACKAGED_HPARAMS / name
    if packaged.is_file() and (len(path.parts) == 1 or path.parent.name == "hparams"):
        return packaged
    shipped = ", ".join(sorted(p.stem for p in PACKAGED_HPARAMS.glob("*.yaml")))
    raise FileNotFoundError(f"no hparams file {hparams_file} (stages that ship: {shipped})")


def stage_command(python=None):
    """``[python, "-m", "tinyclap.stages.run"]``: a stage's process, from any working directory."""
    return [python or sys.executable, "-m", "tinyclap.stages.run"]


def load_hparams(hparams_file, overrides=None):
    """Load an hparams file (with overrides), recording the build spec of its objects.

    Raises
    ------
    ValueError
        If the file declares no ``stage`` callable.
    """
    with open(hparams_file, encoding="utf-8") as f, recording_constructions():
        hparams = load_hyperpyyaml(f, overrides)
    if not callable(hparams.get("stage")):
        raise ValueError(
            f"{hparams_file}: `stage` must name the function that runs the stage, e.g. "
            "`stage: !name:tinyclap.stages.distill.run_distill`"
        )
    return hparams


def _pop_flag(argv, flag):
    """Remove ``flag`` (optionally followed by true/false) from ``argv``; return its value."""
    if flag not in argv:
        return False
    index = argv.index(flag)
    del argv[index]
    if index < len(argv) and argv[index].lower() in ("true", "false"):
        return argv.pop(index).lower() == "true"
    return True


def main(argv=None):
    """Run the stage an hparams file declares; return its ``results.json`` record."""
    argv = list(sys.argv[1:] if argv is None else argv)
    audio_check = _pop_flag(argv, "--check_audio")
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    hparams_file = str(resolve_hparams(hparams_file))
    sb.utils.distributed.ddp_init_group(run_opts)  # under torchrun: join the process group
    hparams = load_hparams(hparams_file, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    if hparams.get("teacher_model") is not None:  # frozen: cached and scored on the run's device
        hparams["teacher_model"].to(run_opts.get("device", "cpu"))
    if audio_check or hparams.get("check_audio"):
        record = check_audio(hparams, prepare_data({**hparams, "skip_bad_audio": False}, ()))
        print(json.dumps({k: v for k, v in record.items() if k != "bad"}, indent=2))
        return record
    record = hparams["stage"](hparams, run_opts)
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    # ``python -m tinyclap.stages.run ARGS`` is ``python train.py ARGS`` (train.py only calls
    # main): results.json records the command as train.py's, so a rerun recognises a stage
    # finished by either (tinyclap.studies.demo.finished_results)
    sys.argv[0] = "train.py"
    main()
