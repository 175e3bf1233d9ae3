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
"""

import json
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from tinyclap.nn.specs import recording_constructions
from tinyclap.training.data import check_audio, prepare_data


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
