"""Compiles the custom-op library against the TensorFlow that is installed.

The library is built on first use (or by ``python -m tf_sparsesign build``)
into a cache folder keyed by the TensorFlow version, the compiler flags and a
hash of the sources, so it always matches the installed TensorFlow ABI and a
source change rebuilds it. Concurrent processes (multi-worker jobs on one
host) serialise on a lock file and publish the result with an atomic rename.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

LIBRARY_NAME = "_tf_sparsesign_ops.so"

#: Plain C++ core, compiled without TensorFlow headers.
CORE_SOURCES = ("core/encode.cc", "core/vote.cc")
#: Thin TensorFlow wrappers (registrations and kernels).
TF_SOURCES = ("tf/sparse_sign_ops.cc", "tf/sparse_sign_kernels.cc")
HEADERS = ("core/sparse_sign_core.h",)


class BuildError(RuntimeError):
    """The op library could not be compiled; the message holds the log."""


def source_dir() -> Path:
    """Where the C++ sources are: ``custom_ops/`` beside the package
    (a source checkout or an editable install), or inside it (a wheel)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "custom_ops", here / "custom_ops"):
        if (candidate / CORE_SOURCES[0]).is_file():
            return candidate
    raise BuildError(
        f"C++ sources not found next to {here}; expected custom_ops/ with "
        f"{', '.join(CORE_SOURCES + TF_SOURCES)}")


def _compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        raise BuildError("no C++ compiler found (set CXX or install g++)")
    return cxx


def _tf_flags() -> tuple[list[str], list[str], str]:
    import tensorflow as tf  # the very TensorFlow that will load the library

    return (list(tf.sysconfig.get_compile_flags()),
            list(tf.sysconfig.get_link_flags()), tf.__version__)


def _extra_flags() -> list[str]:
    """Extra flags from TF_SPARSESIGN_CXXFLAGS (e.g. -fsanitize=address)."""
    return os.environ.get("TF_SPARSESIGN_CXXFLAGS", "").split()


def cache_root() -> Path:
    """The build cache: ``$TF_SPARSESIGN_BUILD_DIR`` or
    ``~/.cache/tf_sparsesign``."""
    env = os.environ.get("TF_SPARSESIGN_BUILD_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tf_sparsesign"


def build_key(src: Path, cflags: list[str], lflags: list[str],
              tf_version: str, cxx: str) -> str:
    h = hashlib.sha256()
    for rel in CORE_SOURCES + TF_SOURCES + HEADERS:
        h.update(rel.encode())
        h.update((src / rel).read_bytes())
    for part in [cxx, sys.version, tf_version, *cflags, *lflags,
                 *_extra_flags()]:
        h.update(part.encode())
    return f"tf{tf_version}-{h.hexdigest()[:16]}"


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"command failed ({proc.returncode}): "
                         f"{' '.join(cmd)}\n{proc.stderr[-8000:]}")


def build_library(force: bool = False, verbose: bool = False) -> Path:
    """Returns the path of the compiled library, building it if needed.

    Args:
      force: rebuild even if a cached library exists.
      verbose: print what is being compiled.

    Raises:
      BuildError: no compiler, missing sources, or a compile error.
    """
    src = source_dir()
    cxx = _compiler()
    cflags, lflags, tf_version = _tf_flags()
    out_dir = cache_root() / build_key(src, cflags, lflags, tf_version, cxx)
    lib = out_dir / LIBRARY_NAME
    if lib.is_file() and not force:
        return lib
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.is_file() and not force:
            return lib  # another process built it while we waited
        if verbose or os.environ.get("TF_SPARSESIGN_VERBOSE_BUILD"):
            print(f"tf_sparsesign: compiling the op library against "
                  f"TensorFlow {tf_version} into {out_dir} ...",
                  file=sys.stderr, flush=True)
        common = ["-std=c++17", "-O3", "-fPIC", "-w", *_extra_flags()]
        with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
            jobs = []
            for rel in CORE_SOURCES:
                obj = Path(tmp) / (Path(rel).stem + ".o")
                jobs.append(([cxx, *common, "-c", str(src / rel), "-o",
                              str(obj)], obj))
            for rel in TF_SOURCES:
                obj = Path(tmp) / (Path(rel).stem + ".o")
                jobs.append(([cxx, *common, *cflags, "-c", str(src / rel),
                              "-o", str(obj)], obj))
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                list(pool.map(_run, [cmd for cmd, _ in jobs]))
            staged = Path(tmp) / LIBRARY_NAME
            _run([cxx, "-shared", *_extra_flags(),
                  *[str(obj) for _, obj in jobs], "-o", str(staged),
                  *lflags])
            os.replace(staged, lib)  # atomic: readers never see half a file
    return lib
