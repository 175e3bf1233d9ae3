"""tinyclap: distil CLAP audio-text models into tiny zero-shot audio classifiers.

The library behind the recipes: audio loading and the CLAP log-mel frontend,
teachers (an embedded mini CLAP; Microsoft CLAP), PhiNet students, the
distillation / evaluation Brains and the tools around them (complexity,
command line). Heavy imports live in the submodules, so ``import tinyclap``
stays cheap.
"""

__version__ = "0.1.0"
