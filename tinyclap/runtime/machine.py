"""Which machine made a figure: CPU model, the ISA flags that change float kernels, versions.

Float32 kernels (oneDNN, MKL, onnxruntime's MLAS) dispatch on the CPU's
instruction sets: an AVX-512 VNNI machine and a Xeon with AMX run different
code for the same matmul, so a trained model's accuracy moves by a point or
two and timings move by tens of percent. Every ``results/*`` record that
holds a time or a trained model's accuracy therefore carries
:func:`machine_info`, and every ``tinyclap bench`` prints :func:`cpu_line`
above its table. Standard library only (the torch-free runtime uses it too).

Example
-------
>>> info = machine_info()
>>> {"cpu", "isa", "python", "torch"} <= set(info)
True
>>> cpu_line().startswith("CPU: ")
True
"""

import importlib
import os
import platform
from functools import lru_cache

# The instruction sets whose presence changes which float / int8 kernels run.
ISA_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_bf16",
    "amx_int8",
    "amx_tile",
)
# Environment variables that cap the math libraries' dispatch (see .ci/run).
DISPATCH_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
VERSIONED = ("numpy", "torch", "onnxruntime", "speechbrain")


@lru_cache(maxsize=1)
def _cpuinfo():
    """``(model name, set of flags)`` from ``/proc/cpuinfo`` (Linux), else the platform's."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and value.strip():
                    model = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                if key == "flags" and model:  # the first processor tells all
                    break
    except OSError:
        pass
    return model, frozenset(flags)


def _version(module):
    """``module.__version__`` when importable and already cheap to import, else ``None``."""
    try:
        return importlib.import_module(module).__version__
    except Exception:  # noqa: BLE001 - absent or broken: the record says None
        return None


def machine_info(versions=VERSIONED):
    """The CPU, its relevant ISA flags, any dispatch cap and library versions.

    Parameters
    ----------
    versions : iterable of str
        Modules whose ``__version__`` to record (``None`` where not importable).

    Returns
    -------
    dict
        ``cpu`` (model name), ``isa`` (the flags of :data:`ISA_FLAGS` this CPU
        has), ``math_dispatch_cap`` (the set :data:`DISPATCH_CAPS` variables),
        ``python``, ``machine`` and one key per module in ``versions``.

    Example
    -------
    >>> set(machine_info(versions=())["isa"]) <= set(ISA_FLAGS)
    True
    """
    model, flags = _cpuinfo()
    info = {
        "cpu": model,
        "isa": [flag for flag in ISA_FLAGS if flag in flags],
        "math_dispatch_cap": {k: os.environ[k] for k in DISPATCH_CAPS if k in os.environ},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
    }
    info.update({module: _version(module) for module in versions})
    return info


def cpu_line(info=None):
    """One line naming the CPU and its ISA flags, printed above every bench table.

    Example
    -------
    >>> cpu_line({"cpu": "Xeon", "isa": ["avx2", "amx_int8"], "math_dispatch_cap": {}})
    'CPU: Xeon (avx2 amx_int8)'
    >>> cpu_line({"cpu": "EPYC", "isa": ["avx2"], "math_dispatch_cap": {"X": "AVX2"}})
    'CPU: EPYC (avx2; dispatch capped: X=AVX2)'
    """
    info = info or machine_info(versions=())
    flags = " ".join(info.get("isa", [])) or "no listed ISA flags"
    caps = info.get("math_dispatch_cap") or {}
    cap = "; dispatch capped: " + ", ".join(f"{k}={v}" for k, v in caps.items()) if caps else ""
    return f"CPU: {info.get('cpu', 'unknown')} ({flags}{cap})"
