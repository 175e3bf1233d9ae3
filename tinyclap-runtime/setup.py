"""The ``tinyclap-runtime`` distribution: ``tinyclap.runtime`` alone, without torch.

A setuptools extra can only add requirements, never drop the full package's
(torch, SpeechBrain...), so the torch-free runtime is a second, tiny
distribution built from the same source files: this file packages
``../tinyclap/runtime`` as ``tinyclap.runtime`` (``tinyclap`` is then an
implicit namespace package) with numpy, soundfile, onnxruntime and sentencepiece
(the text student's tokenizer, for free-form labels) as its only requirements,
and installs the ``tinyclap-runtime`` console script::

    pip install ./tinyclap-runtime            # from a checkout of the repository

Install either this or the full package (which contains ``tinyclap.runtime``
too), not both in one environment.
"""

import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "tinyclap"
VERSION = re.search(r'__version__ = "([^"]+)"', (SOURCE / "__init__.py").read_text()).group(1)

setup(
    name="tinyclap-runtime",
    version=VERSION,
    description="Torch-free zero-shot audio classification with exported tinyclap students "
    "(numpy log-mels + onnxruntime).",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=["tinyclap.runtime"],
    package_dir={"tinyclap.runtime": "../tinyclap/runtime"},
    install_requires=[
        "numpy>=1.23",
        "soundfile>=0.12",
        "onnxruntime>=1.17",
        "sentencepiece>=0.1.99",  # the text student's tokenizer (free-form labels)
    ],
    entry_points={"console_scripts": ["tinyclap-runtime=tinyclap.runtime.cli:main"]},
)
