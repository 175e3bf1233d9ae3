"""Compile an MCU export's ``main.cc`` on this host against TFLM built from source, and run it.

A check of the shipped C++, not a firmware build. TensorFlow Lite Micro is
compiled from a tflite-micro checkout (``--tflm``, default ``$TFLM_SOURCE``)
with its reference kernels and its own host flags (``TF_LITE_STATIC_MEMORY``,
no RTTI, no exceptions) into a static library; the objects are cached
(``--cache``, default ``TFLM/gen/tinyclap_host``; delete it after changing
TFLM's headers). TFLM's third-party headers are read where its
``make third_party_downloads`` puts them
(``tensorflow/lite/micro/tools/make/downloads``): flatbuffers at the version
``schema_generated.h`` asserts, gemmlowp's ``fixedpoint``, ruy's profiler header.

Then ``main.cc`` (with ``-DTINYCLAP_HOST_MAIN``), ``frontend.c`` and
``student_int8.cc`` of the export are linked against it. The program reads one
window of float32 samples and prints the TFLM arena it used, the model's int8
input, its float32 output, the label scores and the best label
(:func:`run_program` parses them).

Example
-------
python -m tinyclap.deploy.mcu.host_build exported/demo/mcu --tflm ../tflite-micro --wav clip.wav
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

PROG = "python -m tinyclap.deploy.mcu.host_build"
DOWNLOADS = Path("tensorflow/lite/micro/tools/make/downloads")
# TFLM's host flags (tools/make/Makefile), -O2 throughout
CXX_FLAGS = (
    "-std=c++17", "-O2", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
    "-ffunction-sections", "-fdata-sections", "-DTF_LITE_STATIC_MEMORY",
    "-DTF_LITE_DISABLE_X86_NEON", "-DTF_LITE_USE_CTIME", "-DFLATBUFFERS_LOCALE_INDEPENDENT=0",
)  # fmt: skip
C_FLAGS = ("-std=c99", "-O2")
# main.cc compiles without a warning under TFLM's own warning set
WARNINGS = ("-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror")
# test harnesses and generated test data among the library's folders
NOT_LIBRARY = re.compile(r"(_test|_test_common|_generated_data|benchmark)\.cc$")


class HostBuildError(RuntimeError):
    """TFLM or the export could not be compiled or run here (the reason is in the message)."""


def compilers():
    """``(c, c++)`` compilers: ``$CC`` / ``$CXX``, else ``cc`` / ``c++``."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not cc or not cxx:
        raise HostBuildError("no C / C++ compiler here (set CC and CXX)")
    return cc, cxx


def check_tflm(tflm, downloads=None):
    """The TFLM checkout and its third-party headers folder, checked; returns both as Paths."""
    tflm = Path(tflm)
    if not (tflm / "tensorflow/lite/micro/micro_interpreter.cc").is_file():
        raise HostBuildError(f"{tflm} is not a tflite-micro checkout (no micro_interpreter.cc)")
    downloads = Path(downloads) if downloads else tflm / DOWNLOADS
    headers = ("flatbuffers/include/flatbuffers/flatbuffers.h", "gemmlowp/fixedpoint/fixedpoint.h",
               "ruy/ruy/profiler/instrumentation.h")  # fmt: skip
    for header in headers:
        if not (downloads / header).is_file():
            raise HostBuildError(
                f"no {downloads / header}: put TFLM's third-party headers there "
                "(its `make third_party_downloads`, or --downloads DIR)"
            )
    return tflm, downloads


def tflm_sources(tflm):
    """The library's sources, relative to ``tflm``: TFLM's ``MICROLITE`` sets, no tests.

    ``tensorflow/lite/micro`` and its arena, planner, bridge and kernel folders
    (not the optimised kernel subfolders: the reference kernels), and the shared
    TfLite sources outside ``micro`` and ``experimental`` (``array.cc`` excluded,
    as TFLM's Makefile does with ``TF_LITE_STATIC_MEMORY``).
    """
    tflm = Path(tflm)
    micro = tflm / "tensorflow/lite/micro"
    files = []
    for folder in ("", "arena_allocator", "memory_planner", "tflite_bridge", "kernels"):
        files += sorted((micro / folder).glob("*.cc"))
    for path in sorted((tflm / "tensorflow").rglob("*.c*")):
        rel = path.relative_to(tflm).as_posix()
        if path.suffix in (".cc", ".c") and not rel.startswith(
            ("tensorflow/lite/micro/", "tensorflow/lite/experimental/")
        ):
            files.append(path)
    return [
        f.relative_to(tflm)
        for f in files
        if not NOT_LIBRARY.search(f.name) and f.name != "array.cc"
    ]


def includes(tflm, downloads):
    """``-I`` flags: the checkout and its third-party headers."""
    return [f"-I{tflm}", f"-I{downloads}", f"-I{downloads / 'flatbuffers/include'}",
            f"-I{downloads / 'gemmlowp'}", f"-I{downloads / 'ruy'}"]  # fmt: skip


def _compile(command, source):
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "error" in line]
        raise HostBuildError(f"compiling {source} failed: {(errors or [done.stderr.strip()])[0]}")


def build_library(tflm, cache=None, downloads=None, jobs=None):
    """Compile TFLM into ``CACHE/libtflm_<flags>.a``; objects are kept, changed sources rebuilt.

    Parameters
    ----------
    tflm : str or Path
        A tflite-micro checkout.
    cache : str or Path, optional
        Where objects and the library go (default ``TFLM/gen/tinyclap_host``).
    downloads : str or Path, optional
        TFLM's third-party headers (default: where its Makefile downloads them).
    jobs : int, optional
        Parallel compiles (default: the CPU count).

    Returns
    -------
    dict
        ``library`` (Path), ``compiled`` (sources compiled now), ``sources``, ``seconds``.
    """
    tflm, downloads = check_tflm(tflm, downloads)
    _, cxx = compilers()
    cache = Path(cache) if cache else tflm / "gen" / "tinyclap_host"
    flags = [cxx, *CXX_FLAGS, *includes(tflm, downloads)]
    stamp = hashlib.sha1(" ".join(flags).encode()).hexdigest()[:12]
    objects = cache / f"obj_{stamp}"  # other flags, compiler or paths: other objects
    todo, outputs = [], []
    for rel in tflm_sources(tflm):
        obj = objects / rel.with_suffix(".o")
        outputs.append(obj)
        if not obj.is_file() or obj.stat().st_mtime < (tflm / rel).stat().st_mtime:
            obj.parent.mkdir(parents=True, exist_ok=True)
            todo.append(([*flags, "-c", str(tflm / rel), "-o", str(obj)], rel))
    start = time.perf_counter()
    pool = ThreadPoolExecutor(jobs or os.cpu_count() or 1)
    try:
        for future in as_completed([pool.submit(_compile, *job) for job in todo]):
            future.result()  # the first failure stops the build
    finally:
        pool.shutdown(cancel_futures=True)
    library = cache / f"libtflm_{stamp}.a"
    if todo or not library.is_file():
        library.unlink(missing_ok=True)
        subprocess.run(["ar", "rcs", str(library), *map(str, outputs)], check=True)
    return {"library": library, "compiled": len(todo), "sources": len(outputs),
            "seconds": time.perf_counter() - start}  # fmt: skip


def build_program(mcu_dir, tflm, out_dir=None, cache=None, downloads=None, jobs=None):
    """Compile ``main.cc`` (host mode), ``frontend.c``, ``student_int8.cc``; link them with TFLM.

    ``out_dir`` receives the objects and the program (default ``CACHE/program``);
    the other parameters are :func:`build_library`'s.

    Returns
    -------
    dict
        ``program`` (the executable's Path) and ``library`` (:func:`build_library`'s dict).
    """
    mcu_dir = Path(mcu_dir)
    missing = [n for n in ("main.cc", "frontend.c", "student_int8.cc", "labels.h")
               if not (mcu_dir / n).is_file()]  # fmt: skip
    if missing:
        raise HostBuildError(f"{mcu_dir}: no {', '.join(missing)} (an older or partial export?)")
    library = build_library(tflm, cache, downloads, jobs)
    tflm, downloads = check_tflm(tflm, downloads)
    cc, cxx = compilers()
    # not inside the export: `tinyclap push` uploads only the export's own files
    out_dir = Path(out_dir) if out_dir else library["library"].parent / "program"
    out_dir.mkdir(parents=True, exist_ok=True)
    inc = [f"-I{mcu_dir}", *includes(tflm, downloads)]
    objects = []
    for source, command in (
        ("frontend.c", [cc, *C_FLAGS, f"-I{mcu_dir}"]),
        ("student_int8.cc", [cxx, *CXX_FLAGS, *inc]),
        ("main.cc", [cxx, *CXX_FLAGS, "-DTINYCLAP_HOST_MAIN", *WARNINGS, *inc]),
    ):
        obj = out_dir / (source + ".o")
        _compile([*command, "-c", str(mcu_dir / source), "-o", str(obj)], mcu_dir / source)
        objects.append(str(obj))
    program = out_dir / "tinyclap_host"
    _compile([cxx, *objects, str(library["library"]), "-Wl,--gc-sections", "-lm", "-o",
              str(program)], "the program (link)")  # fmt: skip
    return {"program": program, "library": library}


def header_define(mcu_dir, name):
    """An integer ``#define`` of ``frontend.h`` (``TINYCLAP_WINDOW_SAMPLES``, ...)."""
    text = (Path(mcu_dir) / "frontend.h").read_text(encoding="utf-8")
    found = re.search(rf"#define {name} (\d+)", text)
    if not found:
        raise HostBuildError(f"{mcu_dir}/frontend.h defines no {name}")
    return int(found.group(1))


def run_program(program, window):
    """Run the host program on one window of samples; its printed values, parsed.

    Returns
    -------
    dict
        ``arena_used_bytes``, ``input_int8`` / ``output_float32`` / ``scores``
        (numpy arrays), ``best`` (index, -1 none of these) and ``label``.
    """
    data = np.ascontiguousarray(window, dtype="<f4").tobytes()
    done = subprocess.run([str(program)], input=data, capture_output=True)
    if done.returncode != 0:
        raise HostBuildError(f"{program} failed: {done.stderr.decode(errors='replace').strip()}")
    out = {}
    for line in done.stdout.decode().splitlines():
        key, _, rest = line.partition(" ")
        if key == "best":
            index, _, label = rest.partition(" ")
            out["best"], out["label"] = int(index), label
        elif key == "arena_used_bytes":
            out[key] = int(rest)
        else:
            count, *values = rest.split()
            dtype = np.int8 if key == "input_int8" else np.float32
            out[key] = np.array([float(v) if dtype == np.float32 else int(v) for v in values],
                                dtype=dtype)  # fmt: skip
            if len(out[key]) != int(count):
                raise HostBuildError(f"{program}: {key} printed {len(out[key])} of {count} values")
    return out


def read_window(path, mcu_dir):
    """The first window of a wav file (zero-padded) at the export's sample rate."""
    import soundfile as sf

    wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    expected = header_define(mcu_dir, "TINYCLAP_SAMPLE_RATE")
    if rate != expected:
        raise HostBuildError(f"{path} is {rate} Hz, the export reads {expected} Hz")
    window = np.zeros(header_define(mcu_dir, "TINYCLAP_WINDOW_SAMPLES"), np.float32)
    mono = wave.mean(axis=1)[: len(window)]
    window[: len(mono)] = mono
    return window


def evaluate_manifest(program, mcu_dir, manifest, progress=None):
    """The program's zero-shot accuracy on a labelled manifest's clips (first window each).

    Also its agreement with the int8 decisions that ``report.json`` records for
    the same manifest (TFLM's Python interpreter at export), when it has them.

    Returns
    -------
    dict
        ``num_clips``, ``accuracy``, ``agreement_with_report`` (or None),
        ``arena_used_bytes`` (every value seen).
    """
    import json

    from tinyclap.data.pipelines import manifest_classes, read_manifest

    classes = manifest_classes(manifest)
    entries = list(read_manifest(manifest).values())
    best, arena = [], set()
    for index, entry in enumerate(entries):
        result = run_program(program, read_window(entry["wav"], mcu_dir))
        best.append(result["best"])
        arena.add(result["arena_used_bytes"])
        if progress:
            progress(index + 1, len(entries))
    correct = sum(b >= 0 and classes[b] == e["label"] for b, e in zip(best, entries))
    report = json.loads((Path(mcu_dir) / "report.json").read_text(encoding="utf-8"))
    recorded = report.get("accuracy") or {}
    agreement = None
    predictions = (recorded.get("predictions") or {}).get("int8")
    if predictions is not None and Path(str(recorded.get("manifest"))).resolve() == (
        Path(manifest).resolve()
    ):
        agreement = float(np.mean(np.array(best) == np.array(predictions)))
    return {"num_clips": len(entries), "accuracy": correct / max(1, len(entries)),
            "agreement_with_report": agreement, "arena_used_bytes": sorted(arena)}  # fmt: skip


def build_parser():
    """The command line of ``python -m tinyclap.deploy.mcu.host_build``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Compile an --mcu export's main.cc against TFLM built from source; run it.",
    )
    parser.add_argument("mcu_dir", help="the export's mcu/ folder")
    parser.add_argument("--tflm", default=os.environ.get("TFLM_SOURCE"),
                        help="tflite-micro checkout (default: $TFLM_SOURCE)")  # fmt: skip
    parser.add_argument("--downloads", help="TFLM's third-party headers (default: "
                        "TFLM/tensorflow/lite/micro/tools/make/downloads)")  # fmt: skip
    parser.add_argument("--cache", help="TFLM objects (default: TFLM/gen/tinyclap_host)")
    parser.add_argument("--out", help="where the program goes (default: CACHE/program)")
    parser.add_argument("--jobs", type=int, help="parallel compiles (default: CPU count)")
    parser.add_argument("--wav", help="run the program on this clip's first window")
    parser.add_argument("--manifest",
                        help="run it on every clip of this labelled manifest (first window): "
                        "accuracy, and agreement with report.json's int8 decisions")  # fmt: skip
    return parser


def main(argv=None):
    """Build (and run) the host program: exit 0, 1 when it fails (one line), 2 on usage errors.

    The statuses of tinyclap's CLI policy; 130 when interrupted.
    """
    args = build_parser().parse_args(argv)
    if not args.tflm:
        print(f"{PROG}: error: pass --tflm TFLITE_MICRO_CHECKOUT or set TFLM_SOURCE",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        built = build_program(args.mcu_dir, args.tflm, args.out, args.cache, args.downloads,
                              args.jobs)  # fmt: skip
        lib = built["library"]
        print(f"TFLM: {lib['compiled']} of {lib['sources']} sources compiled in "
              f"{lib['seconds']:.0f} s -> {lib['library']}")  # fmt: skip
        print(f"program: {built['program']}")
        if args.wav:
            result = run_program(built["program"], read_window(args.wav, args.mcu_dir))
            print(f"arena used: {result['arena_used_bytes']} bytes")
            print("output:", " ".join(f"{v:.6g}" for v in result["output_float32"]))
            print(f"best: {result['best']} {result['label']}")
        if args.manifest:
            summary = evaluate_manifest(built["program"], args.mcu_dir, args.manifest)
            agreement = summary["agreement_with_report"]
            print(f"{summary['num_clips']} clips: accuracy {100 * summary['accuracy']:.2f}%, "
                  "agreement with report.json's int8 decisions "
                  + ("n/a" if agreement is None else f"{100 * agreement:.2f}%")
                  + f", arena used {summary['arena_used_bytes']} bytes")  # fmt: skip
    except HostBuildError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
