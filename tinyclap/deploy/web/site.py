"""Build the static web page of an exported folder: ``DIR/web/`` for any static host.

:func:`build_site` writes::

    web/index.html, style.css, *.js       the page (package data of tinyclap.deploy.web)
    web/ort/                              onnxruntime-web's wasm build (tinyclap.deploy.web.ortweb)
    web/model/model.json                  what the page needs of export.json: the frontend
                                          settings, window, pad mode, prompt template,
                                          timeline hop, the calibration (open_set.json)
    web/model/student.onnx                the student (log-mels in)
    web/model/label_embeddings.safetensors  the label tables (teacher prompt embeddings)
    web/model/text_encoder.onnx + tokenizer.json   the text student, when the folder has one

The folder is first loaded by the torch-free runtime
(:class:`tinyclap.runtime.RuntimeClassifier`), which checks every file against
the SHA-256 in ``export.json``: the page gets exactly what the Python runtime
classifies with. Serve ``web/`` with any static server (``python -m
http.server -d DIR/web``) and open ``index.html``; ``?audio=URL&labels=a,b``
classifies a file at load.

Example
-------
>>> build_site("exported/demo")  # doctest: +SKIP
{'out': 'exported/demo/web', 'files': {'index.html': 3012, ...}, 'bytes': 12400000}
"""

import json
import shutil
from importlib import resources
from pathlib import Path

from tinyclap.deploy.web.ortweb import copy_ort_web, ort_web_tarball
from tinyclap.deploy.web.tokenizer import sentencepiece_json

FORMAT = "tinyclap-web"
STATIC = ("index.html", "style.css", "app.js", "audio.js", "logmel.js", "tokenizer.js",
          "decisions.js", "model.js", "capture-worklet.js")  # fmt: skip


class WebBuildError(ValueError):
    """An exported folder the page cannot run (the folder and the fix are named)."""


def static_files():
    """``{name: bytes}`` of the page's static assets (package data).

    Example
    -------
    >>> sorted(static_files())[:2]
    ['app.js', 'audio.js']
    """
    root = resources.files("tinyclap.deploy.web") / "static"
    return {name: (root / name).read_bytes() for name in STATIC}


def model_settings(folder, classifier, why_no_text=""):
    """The page's ``model.json``: the settings of ``export.json`` the JS pipeline follows."""
    from tinyclap.runtime.classifier import folder_config

    config = folder_config(folder)
    window = int(round(config["clip_seconds"] * config["sample_rate"]))
    record = config["info"].get("text_student") or {}
    return {
        "format": FORMAT,
        "source": Path(folder).name,
        "frontend": config["frontend"],
        "sample_rate": config["sample_rate"],
        "clip_seconds": config["clip_seconds"],
        "window_samples": window,
        "timeline_hop_samples": max(1, window // 2),  # classify --timeline's default hop
        "pad_mode": config["pad_mode"],
        "prompt_template": classifier.template,
        "label_sets": classifier.label_sets,
        # typed names of its prototype classes take the prototypes (tinyclap.runtime.labels)
        "default_labels": classifier.default_labels,
        "text_encoder": "text_encoder.onnx" if classifier.has_text_encoder else None,
        "no_text_encoder": why_no_text,
        "text_max_length": (record.get("tokenizer") or {}).get("max_length"),
        "calibration": classifier.calibration,
    }


def build_site(folder, out=None, npm_cache=None):
    """Write the static page of an exported folder (see the module docstring).

    Parameters
    ----------
    folder : str or Path
        A folder written by ``tinyclap export`` with its ONNX graphs.
    out : str or Path, optional
        The site's folder (default: ``FOLDER/web``); replaced if it exists.
    npm_cache : str or Path, optional
        Where the onnxruntime-web tarball is kept (see :func:`~.ortweb.cache_folder`).

    Returns
    -------
    dict
        ``{"out", "files": {relative path: bytes}, "bytes"}``.

    Raises
    ------
    WebBuildError
        No ``export.json`` or no ``onnx/student.onnx`` in the folder.
    """
    from tinyclap.runtime.classifier import RuntimeClassifier

    folder = Path(folder)
    if not (folder / "export.json").is_file():
        raise WebBuildError(f"{folder}: no export.json; pass a folder written by tinyclap export")
    if not (folder / "onnx" / "student.onnx").is_file():
        raise WebBuildError(
            f"{folder}: no ONNX graphs (onnx/student.onnx); the web page runs the ONNX "
            "student: export again with --onnx (needs the onnx and onnxruntime packages)"
        )
    classifier = RuntimeClassifier.from_folder(folder)  # checks every file's SHA-256
    tarball = ort_web_tarball(npm_cache)
    out = Path(out) if out is not None else folder / "web"
    if out.exists():
        shutil.rmtree(out)
    model = out / "model"
    model.mkdir(parents=True)
    for name, data in static_files().items():
        (out / name).write_bytes(data)
    copy_ort_web(tarball, out / "ort")
    shutil.copyfile(folder / "onnx" / "student.onnx", model / "student.onnx")
    shutil.copyfile(folder / "label_embeddings.safetensors",
                    model / "label_embeddings.safetensors")  # fmt: skip
    encoder, why = RuntimeClassifier.text_encoder(folder)
    settings = model_settings(folder, classifier, why)
    if encoder is not None:
        shutil.copyfile(encoder.path, model / "text_encoder.onnx")
        spec = sentencepiece_json(encoder.tokenizer.path, encoder.tokenizer.max_length)
        (model / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    (model / "model.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    files = {p.relative_to(out).as_posix(): p.stat().st_size
             for p in sorted(out.rglob("*")) if p.is_file()}  # fmt: skip
    return {"out": str(out), "files": files, "bytes": sum(files.values())}
