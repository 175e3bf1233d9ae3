"""onnxruntime-web for the page: the pinned npm package, packed once into a cache folder.

The page runs the ONNX graphs with onnxruntime-web's wasm backend, served by the
site itself (no CDN at run time): two files of the npm package,
``dist/ort.wasm.bundle.min.mjs`` (the JS API with its wasm loader) and
``dist/ort-wasm-simd-threaded.wasm`` (the runtime). The package is fetched by
npm's own client at build time (``npm pack onnxruntime-web@VERSION`` into the
cache folder; nothing else of the registry is read), checked against the
registry's published SHA-512 integrity, and reused from then on. A machine
without npm can put the tarball in the cache folder by hand.

Example
-------
>>> tarball = ort_web_tarball()  # doctest: +SKIP
>>> copy_ort_web(tarball, "exported/demo/web/ort")  # doctest: +SKIP
['ort.wasm.bundle.min.mjs', 'ort-wasm-simd-threaded.wasm']
"""

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

VERSION = "1.23.2"
# `npm view onnxruntime-web@1.23.2 dist.integrity`
INTEGRITY = (
    "sha512-T09JUtMn+CZLk3mFwqiH0lgQf+4S7+oYHHtk6uhaYAAJI95bTcKi5bOOZYwORXf"
    "S/RLZCjDDEXGWIuOCAFlEjg=="
)
FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")
CACHE_ENV = "TINYCLAP_NPM_CACHE"
NOTICE = f"""onnxruntime-web {VERSION} (MIT license, https://github.com/microsoft/onnxruntime):
{", ".join(FILES)} from the npm package's dist/ folder (npm pack onnxruntime-web@{VERSION},
integrity {INTEGRITY}).
"""


class OrtWebError(OSError):
    """onnxruntime-web could not be packed or its tarball does not match the pinned integrity."""


def cache_folder(cache=None):
    """Where the tarball is kept: ``cache``, ``$TINYCLAP_NPM_CACHE`` or ``~/.cache/tinyclap/npm``.

    Example
    -------
    >>> cache_folder("/tmp/x").as_posix()
    '/tmp/x'
    """
    if cache is not None:
        return Path(cache)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path.home() / ".cache" / "tinyclap" / "npm"


def integrity_of(path):
    """The npm ``sha512-<base64>`` integrity string of a file.

    Example
    -------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "x"
    >>> _ = f.write_bytes(b"")
    >>> integrity_of(f)[:20]
    'sha512-z4PhNX7vuL3xV'
    """
    digest = hashlib.sha512(Path(path).read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode("ascii")


def ort_web_tarball(cache=None):
    """The pinned onnxruntime-web tarball in the cache folder, packed by npm when missing.

    Raises
    ------
    OrtWebError
        npm is missing or fails, or the tarball does not match :data:`INTEGRITY`.
    """
    folder = cache_folder(cache)
    tarball = folder / f"onnxruntime-web-{VERSION}.tgz"
    if not tarball.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise OrtWebError(
                f"npm not found: install Node.js (npm), or put onnxruntime-web-{VERSION}.tgz "
                f"(`npm pack onnxruntime-web@{VERSION}`) in {folder} (or ${CACHE_ENV})"
            )
        folder.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(
            [npm, "pack", f"onnxruntime-web@{VERSION}", "--pack-destination", str(folder)],
            capture_output=True, text=True, cwd=str(folder),
        )  # fmt: skip
        if run.returncode != 0 or not tarball.is_file():
            tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
            raise OrtWebError(f"npm pack onnxruntime-web@{VERSION} failed: {tail[0]}")
    if integrity_of(tarball) != INTEGRITY:
        raise OrtWebError(
            f"{tarball}: does not match onnxruntime-web {VERSION}'s published integrity; "
            "delete it and build again"
        )
    return tarball


def copy_ort_web(tarball, dest):
    """Extract :data:`FILES` (and a notice naming the package) from ``tarball`` into ``dest``.

    Returns
    -------
    list of str
        The file names written.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as tar:
        for name in FILES:
            member = tar.extractfile(f"package/dist/{name}")
            if member is None:
                raise OrtWebError(f"{tarball}: no package/dist/{name}")
            (dest / name).write_bytes(member.read())
    (dest / "NOTICE.txt").write_text(NOTICE, encoding="utf-8")
    return list(FILES)
