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
CORE_SOURCES = ("core/encode.cc", "core/vote.cc", "core/rice.cc",
                "core/packed.cc")
#: Thin TensorFlow wrappers (registrations and kernels).
TF_SOURCES = ("tf/sparse_sign_ops.cc", "tf/sparse_sign_kernels.cc",
              "tf/aggregation_kernels.cc", "tf/rice_ops.cc",
              "tf/rice_kernels.cc", "tf/packed_ops.cc",
              "tf/packed_kernels.cc")
HEADERS = ("core/sparse_sign_core.h", "core/rice.h", "core/packed.h",
           "tf/kernel_checks.h", "tf/shape_checks.h")
#: GPU kernels, built only when TensorFlow has CUDA and nvcc is found.
CUDA_SOURCES = ("cuda/encode.cu", "cuda/vote.cu")
CUDA_TF_SOURCES = ("tf/sparse_sign_kernels_gpu.cc",)
CUDA_HEADERS = ("cuda/sparse_sign_cuda.h", "cuda/select_plan.h",
                "cuda/device_util.cuh")


class BuildError(RuntimeError):
    """The op library could not be compiled; the message holds the log."""


def source_dir() -> Path:
    """Where the C++ sources are: ``custom_ops/`` beside the package
    (a source checkout or an editable install), or inside it (a wheel)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parent / "custom_ops",
                      package / "custom_ops"):
        if (candidate / CORE_SOURCES[0]).is_file():
            return candidate
    raise BuildError(
        f"C++ sources not found next to {package}; expected custom_ops/ with "
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


def _cuda_config() -> dict | None:
    """nvcc, CUDA paths and target archs when the GPU kernels should be
    built: TensorFlow is a CUDA build and nvcc is found (``$NVCC`` or PATH),
    unless ``TF_SPARSESIGN_DISABLE_CUDA`` is set. None means CPU only."""
    if os.environ.get("TF_SPARSESIGN_DISABLE_CUDA"):
        return None
    import tensorflow as tf

    if not tf.test.is_built_with_cuda():
        return None
    nvcc = os.environ.get("NVCC") or shutil.which("nvcc")
    if not nvcc:
        return None
    # The toolkit root: $CUDA_HOME, else beside the real nvcc binary.
    homes = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
             str(Path(nvcc).resolve().parent.parent), "/usr/local/cuda"]
    home = next((Path(h) for h in homes
                 if h and (Path(h) / "include" / "cuda_runtime.h").is_file()),
                None)
    if home is None:
        return None
    archs = [a.strip() for a in os.environ.get(
        "TF_SPARSESIGN_CUDA_ARCHS", "80;90").replace(",", ";").split(";")
        if a.strip()]
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    gencode.append(f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}")
    lib_dir = next((home / d for d in ("lib64", "lib")
                    if (home / d).is_dir()), home / "lib64")
    return {"nvcc": nvcc, "include": str(home / "include"),
            "lib": str(lib_dir), "gencode": gencode}


def build_key(src: Path, cflags: list[str], lflags: list[str],
              tf_version: str, cxx: str, cuda: dict | None = None) -> str:
    h = hashlib.sha256()
    sources = CORE_SOURCES + TF_SOURCES + HEADERS
    if cuda:
        sources += CUDA_SOURCES + CUDA_TF_SOURCES + CUDA_HEADERS
    for rel in sources:
        h.update(rel.encode())
        h.update((src / rel).read_bytes())
    extra = [cuda["nvcc"], *cuda["gencode"]] if cuda else []
    for part in [cxx, sys.version, tf_version, *cflags, *lflags,
                 *_extra_flags(), *extra]:
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
    cuda = _cuda_config()
    out_dir = cache_root() / build_key(src, cflags, lflags, tf_version, cxx,
                                       cuda)
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
            link_cuda = []
            if cuda:  # GPU kernels: nvcc for .cu, the TF wrapper with g++
                # Same C++ ABI as TF's flags: std::string crosses into the .cu.
                abi = [f for f in cflags if f.startswith("-D_GLIBCXX_USE_CXX11_ABI")]
                for rel in CUDA_SOURCES:
                    obj = Path(tmp) / (Path(rel).stem + "_cu.o")
                    jobs.append(([cuda["nvcc"], "-std=c++17", "-O3", *abi,
                                  "-Xcompiler", "-fPIC", *cuda["gencode"],
                                  "-c", str(src / rel), "-o", str(obj)], obj))
                for rel in CUDA_TF_SOURCES:
                    obj = Path(tmp) / (Path(rel).stem + ".o")
                    jobs.append(([cxx, *common, *cflags, "-DGOOGLE_CUDA=1",
                                  f"-I{cuda['include']}", "-c",
                                  str(src / rel), "-o", str(obj)], obj))
                link_cuda = [f"-L{cuda['lib']}", "-lcudart_static", "-ldl",
                             "-lrt", "-lpthread"]
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                list(pool.map(_run, [cmd for cmd, _ in jobs]))
            staged = Path(tmp) / LIBRARY_NAME
            _run([cxx, "-shared", *_extra_flags(),
                  *[str(obj) for _, obj in jobs], "-o", str(staged),
                  *lflags, *link_cuda])
            os.replace(staged, lib)  # atomic: readers never see half a file
    return lib
