"""Work-arounds for broken pieces of some Python stacks, kept in one place.

Two third-party packages misbehave on a CPU-only machine:

* ``torchaudio`` wheels from PyPI may be CUDA builds whose compiled extension
  cannot load beside a CPU-only ``torch`` (``libc10_cuda.so`` missing), which
  makes ``import torchaudio`` itself fail. The pure-Python parts we use
  (``functional.resample``, ``transforms``) do not need the extension.
  :func:`repair_torchaudio` removes the unloadable libraries; ``make`` calls it
  once after installing (``python -m tinyclap._compat``). It does nothing where
  torchaudio already imports, so CUDA set-ups are left unchanged.
* ``micromind``'s package ``__init__`` imports ``accelerate`` and
  ``torchvision``, which need not be installed. :func:`load_phinet_class`
  imports the PhiNet module file directly, bypassing that ``__init__``.
"""

import contextlib
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path


def repair_torchaudio():
    """Delete torchaudio's compiled extension if (and only if) it cannot load.

    Returns
    -------
    list of str
        The removed library paths (empty when torchaudio imported fine).
    """
    check = subprocess.run(
        [sys.executable, "-c", "import torchaudio"], capture_output=True, text=True
    )
    if check.returncode == 0:
        return []
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or spec.origin is None:
        raise RuntimeError("torchaudio is not installed")
    removed = []
    for lib in sorted((Path(spec.origin).parent / "lib").glob("*.so")):
        lib.unlink()
        removed.append(str(lib))
    recheck = subprocess.run(
        [sys.executable, "-c", "import torchaudio"], capture_output=True, text=True
    )
    if recheck.returncode != 0:
        raise RuntimeError("torchaudio still fails to import:\n" + recheck.stderr)
    return removed


def load_phinet_class():
    """Return ``micromind.networks.phinet.PhiNet`` without micromind's ``__init__``.

    Returns
    -------
    type
        The PhiNet class.
    """
    name = "micromind.networks.phinet"
    if name in sys.modules:
        return sys.modules[name].PhiNet
    spec = importlib.util.find_spec("micromind")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "micromind is not installed: `pip install --no-deps micromind==0.2.1` "
            "(or `pip install tinyclap[full]` where torchvision is available)."
        )
    path = Path(spec.submodule_search_locations[0]) / "networks" / "phinet.py"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    sys.modules[name] = module
    return module.PhiNet


@contextlib.contextmanager
def hyperpyyaml_hook(name, replacement):
    """Swap one of hyperpyyaml's module-level constructors while the block runs.

    hyperpyyaml (1.2) offers no hook for its tag constructors, but looks them up
    by module-global name at each load, so swapping the global is enough; the
    original is always restored. Used to record how ``!new:`` objects were
    built (:mod:`tinyclap.nn.specs`) and to parse ``(...)`` tuples safely
    (:mod:`tinyclap.deploy.safety`).
    """
    import hyperpyyaml.core

    original = getattr(hyperpyyaml.core, name)
    setattr(hyperpyyaml.core, name, replacement)
    try:
        yield
    finally:
        setattr(hyperpyyaml.core, name, original)


if __name__ == "__main__":
    for removed_lib in repair_torchaudio():
        print(f"removed unloadable torchaudio library {removed_lib}")
