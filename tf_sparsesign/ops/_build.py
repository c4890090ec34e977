"""Compiles the custom-op library against the TensorFlow that is installed.

The library is built on first use (or by ``python -m tf_sparsesign build``)
into a cache folder keyed by the TensorFlow version, the compiler flags, the
CUDA toolkit (nvcc's version, the archs) and a hash of the sources, so it
always matches the installed TensorFlow ABI and a source or toolkit change
rebuilds it. Concurrent processes (multi-worker jobs on one host) serialise
on a lock file and publish the result with an atomic rename.

GPU kernels are added when :func:`._cuda.build_plan` says so (a CUDA
TensorFlow, nvcc, a driver that supports nvcc's CUDA version). Their CUDA
objects are compiled first: if nvcc (or the link with cudart) fails, the
failure is recorded beside the would-be library, a warning says why, and
the CPU-only library is built and used -- one nvcc error never costs the
CPU kernels. ``build --force`` tries the GPU kernels again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import _cuda

LIBRARY_NAME = "_tf_sparsesign_ops.so"
#: Beside a CUDA build that failed: its log (the CPU library is used).
CUDA_FAILED = "cuda_build_failed.txt"

#: Plain C++ core, compiled without TensorFlow headers.
CORE_SOURCES = ("core/encode.cc", "core/vote.cc", "core/rice.cc",
                "core/packed.cc")
#: Thin TensorFlow wrappers (registrations and kernels).
TF_SOURCES = ("tf/sparse_sign_ops.cc", "tf/sparse_sign_kernels.cc",
              "tf/aggregation_kernels.cc", "tf/rice_ops.cc",
              "tf/rice_kernels.cc", "tf/packed_ops.cc",
              "tf/packed_kernels.cc", "tf/step_ops.cc", "tf/step_kernels.cc")
HEADERS = ("core/sparse_sign_core.h", "core/rice.h", "core/packed.h",
           "core/step_errors.h", "tf/kernel_checks.h", "tf/shape_checks.h")
#: GPU kernels, built only when TensorFlow has CUDA and nvcc is found.
CUDA_SOURCES = ("cuda/encode.cu", "cuda/vote.cu", "cuda/driver.cu",
                "cuda/step.cu", "cuda/packed.cu")
CUDA_TF_SOURCES = ("tf/sparse_sign_kernels_gpu.cc", "tf/step_kernels_gpu.cc")
CUDA_HEADERS = ("cuda/sparse_sign_cuda.h", "cuda/step_cuda.h",
                "cuda/select_plan.h", "cuda/float_ops.h",
                "cuda/device_util.cuh", "tf/gpu_kernel_util.h")


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


def build_key(src: Path, cflags: list[str], lflags: list[str],
              tf_version: str, cxx: str, cuda: dict | None = None) -> str:
    """The cache folder name: TF version plus a hash of the sources, the
    flags, the compiler and, for a GPU build, nvcc's path and version, the
    CUDA folders, the archs and the host compiler."""
    h = hashlib.sha256()
    sources = CORE_SOURCES + TF_SOURCES + HEADERS
    if cuda:
        sources += CUDA_SOURCES + CUDA_TF_SOURCES + CUDA_HEADERS
    for rel in sources:
        h.update(rel.encode())
        h.update((src / rel).read_bytes())
    extra = ([cuda["nvcc"], cuda["version"], cuda["include"], cuda["lib"],
              cuda["ccbin"], *cuda["gencode"]] if cuda else [])
    for part in [cxx, sys.version, tf_version, *cflags, *lflags,
                 *_extra_flags(), *extra]:
        h.update(part.encode())
    return f"tf{tf_version}-{h.hexdigest()[:16]}"


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"command failed ({proc.returncode}): "
                         f"{' '.join(cmd)}\n{proc.stderr[-8000:]}")


def _run_all(jobs: list[list[str]]) -> None:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(_run, jobs))


def _cuda_jobs(src: Path, tmp: Path, cxx: str, common: list[str],
               cflags: list[str], cuda: dict) -> list[tuple[list[str], Path]]:
    """nvcc for the .cu files, g++ for the TF GPU wrapper (GOOGLE_CUDA)."""
    # Same C++ ABI as TF's flags: std::string crosses into the .cu.
    abi = [f for f in cflags if f.startswith("-D_GLIBCXX_USE_CXX11_ABI")]
    jobs = []
    for rel in CUDA_SOURCES:
        obj = tmp / (Path(rel).stem + "_cu.o")
        jobs.append(([cuda["nvcc"], "-ccbin", cuda["ccbin"], "-std=c++17",
                      "-O3", *abi, "-Xcompiler", "-fPIC", *cuda["gencode"],
                      "-c", str(src / rel), "-o", str(obj)], obj))
    for rel in CUDA_TF_SOURCES:
        obj = tmp / (Path(rel).stem + ".o")
        jobs.append(([cxx, *common, *cflags, "-DGOOGLE_CUDA=1",
                      f"-I{cuda['include']}", "-c", str(src / rel), "-o",
                      str(obj)], obj))
    return jobs


def _cpu_jobs(src: Path, tmp: Path, cxx: str, common: list[str],
              cflags: list[str]) -> list[tuple[list[str], Path]]:
    jobs = []
    for rel in CORE_SOURCES:
        obj = tmp / (Path(rel).stem + ".o")
        jobs.append(([cxx, *common, "-c", str(src / rel), "-o", str(obj)],
                     obj))
    for rel in TF_SOURCES:
        obj = tmp / (Path(rel).stem + ".o")
        jobs.append(([cxx, *common, *cflags, "-c", str(src / rel), "-o",
                      str(obj)], obj))
    return jobs


class _CudaBuildFailed(Exception):
    """The GPU part of a build failed; the CPU-only build goes on."""


def _compile_and_link(src: Path, out: Path, cxx: str, cflags: list[str],
                      lflags: list[str], cuda: dict | None) -> None:
    """Compiles (nvcc first, when there are GPU kernels) and links `out`.
    Raises _CudaBuildFailed for a failure of the GPU part, BuildError for
    one of the CPU part."""
    common = ["-std=c++17", "-O3", "-fPIC", "-w", *_extra_flags()]
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp_name:
        tmp = Path(tmp_name)
        cpu_jobs = _cpu_jobs(src, tmp, cxx, common, cflags)
        gpu_jobs, link_cuda = [], []
        if cuda:
            gpu_jobs = _cuda_jobs(src, tmp, cxx, common, cflags, cuda)
            nvcc = [cmd for cmd, _ in gpu_jobs if cmd[0] == cuda["nvcc"]]
            wrapper = [cmd for cmd, _ in gpu_jobs if cmd[0] != cuda["nvcc"]]
            try:  # nvcc first: a broken toolkit fails in seconds
                _run_all(nvcc)
                _run_all(wrapper)
            except BuildError as exc:
                raise _CudaBuildFailed(str(exc)) from None
            link_cuda = [f"-L{cuda['lib']}", "-lcudart_static", "-ldl",
                         "-lrt", "-lpthread"]
        _run_all([cmd for cmd, _ in cpu_jobs])
        staged = tmp / LIBRARY_NAME
        try:
            _run([cxx, "-shared", *_extra_flags(),
                  *[str(obj) for _, obj in cpu_jobs + gpu_jobs], "-o",
                  str(staged), *lflags, *link_cuda])
        except BuildError as exc:
            if cuda:
                raise _CudaBuildFailed(str(exc)) from None
            raise
        os.replace(staged, out)  # atomic: readers never see half a file


def _warn_cuda_failed(folder: Path, log: str) -> None:
    warnings.warn(
        "tf_sparsesign: the GPU kernels failed to build, so the CPU kernels "
        f"are used (the log is in {folder / CUDA_FAILED}). Fix the CUDA "
        "toolkit (or set NVCC / TF_SPARSESIGN_CUDA_ARCHS), then run "
        "`python -m tf_sparsesign build --force`; set "
        "TF_SPARSESIGN_DISABLE_CUDA=1 to build without GPU kernels. "
        f"Error: {log[-1500:]}", RuntimeWarning, stacklevel=4)


def _build_variant(src: Path, cxx: str, cflags: list[str], lflags: list[str],
                   tf_version: str, cuda: dict | None, force: bool,
                   verbose: bool) -> Path | None:
    """Builds (or finds) one library; None when its GPU part failed."""
    out_dir = cache_root() / build_key(src, cflags, lflags, tf_version, cxx,
                                       cuda)
    lib = out_dir / LIBRARY_NAME
    failed = out_dir / CUDA_FAILED
    if lib.is_file() and not force:
        return lib
    if cuda and failed.is_file() and not force:
        _warn_cuda_failed(out_dir, failed.read_text())
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.is_file() and not force:
            return lib  # another process built it while we waited
        if cuda and failed.is_file() and not force:
            _warn_cuda_failed(out_dir, failed.read_text())
            return None  # ... or failed to, while we waited
        if verbose or os.environ.get("TF_SPARSESIGN_VERBOSE_BUILD"):
            print(f"tf_sparsesign: compiling the op library "
                  f"({'with' if cuda else 'without'} GPU kernels) against "
                  f"TensorFlow {tf_version} into {out_dir} ...",
                  file=sys.stderr, flush=True)
        try:
            _compile_and_link(src, lib, cxx, cflags, lflags, cuda)
        except _CudaBuildFailed as exc:
            failed.write_text(str(exc))
            _warn_cuda_failed(out_dir, str(exc))
            return None
        failed.unlink(missing_ok=True)
    return lib


def build_library(force: bool = False, verbose: bool = False) -> Path:
    """Returns the path of the compiled library, building it if needed.

    With GPU kernels when :func:`._cuda.build_plan` allows and they
    compile; otherwise (with a warning saying why) the CPU-only library.

    Args:
      force: rebuild even if a cached library (or a recorded GPU build
        failure) exists. Default False.
      verbose: print what is being compiled. Default False.

    Raises:
      BuildError: no compiler, missing sources, or a CPU compile error.
    """
    src = source_dir()
    cxx = _compiler()
    cflags, lflags, tf_version = _tf_flags()
    cuda = _cuda.build_plan(cxx)
    if cuda is not None:
        lib = _build_variant(src, cxx, cflags, lflags, tf_version, cuda,
                             force, verbose)
        if lib is not None:
            return lib
    return _build_variant(src, cxx, cflags, lflags, tf_version, None, force,
                          verbose)
