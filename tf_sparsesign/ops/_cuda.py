"""Whether and how to build the GPU kernels, decided from probes.

The GPU kernels are built only when all of these hold:

1. ``TF_SPARSESIGN_DISABLE_CUDA`` is not set;
2. the installed TensorFlow is a CUDA build (else: CPU only, silently);
3. an NVIDIA driver is found (``cuDriverGetVersion`` in libcuda, else
   ``nvidia-smi``) -- no driver, no GPU to run them on: CPU only, silently;
4. ``nvcc`` is found (``$NVCC`` or PATH) with the CUDA headers beside it
   (else: CPU only, and a warning saying how to get the GPU kernels);
5. the driver supports nvcc's CUDA *major* version (CUDA's minor-version
   compatibility covers the rest): a CUDA 13 toolkit needs driver >= 580,
   so on a 550 driver (CUDA 12.4) the GPU kernels would fail at every
   call with ``cudaErrorInsufficientDriver``. Then: CPU only, and a
   warning naming the versions and the fix.

Archs (``-gencode``): ``$TF_SPARSESIGN_CUDA_ARCHS`` (e.g. ``"80;90"``) if
set, else the compute capabilities of the visible GPUs (``nvidia-smi``),
else ``80;90``; always plus PTX for the lowest arch the kernels support with
this toolkit (``compute_75`` with CUDA 13, ``compute_70`` with CUDA 12:
the kernels use Volta's ``__match_any_sync``), so any newer GPU can JIT
them. Archs the toolkit cannot build are left out.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

#: Oldest arch the kernels support (``__match_any_sync``: Volta, sm_70).
MIN_ARCH = 70
#: Used when no GPU can be queried.
DEFAULT_ARCHS = ("80", "90")
#: Driver versions that first support a CUDA major version (for messages).
FIRST_DRIVER = {11: "450", 12: "525", 13: "580"}


def _run(cmd: list[str]) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


# ------------------------------------------------------------------ probes
# Each probe returns None when the thing is absent; tests replace them.

def tf_cuda_version() -> str | None:
    """The CUDA version TensorFlow was built with ("12.5.1"), or None for
    a CPU build."""
    import tensorflow as tf

    if not tf.test.is_built_with_cuda():
        return None
    return str(tf.sysconfig.get_build_info().get("cuda_version") or "?")


def find_nvcc() -> str | None:
    """``$NVCC``, else nvcc on PATH."""
    return os.environ.get("NVCC") or shutil.which("nvcc")


def nvcc_version_text(nvcc: str) -> str | None:
    """The last line of ``nvcc --version`` ("Build cuda_13.0.r13.0/...")
    and the release line, or None if nvcc does not run."""
    out = _run([nvcc, "--version"])
    if not out:
        return None
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return " | ".join(lines[-2:])


def toolkit_archs(nvcc: str) -> list[int]:
    """The compute archs nvcc can target (``nvcc --list-gpu-arch``)."""
    out = _run([nvcc, "--list-gpu-arch"]) or ""
    return sorted({int(a) for a in re.findall(r"compute_(\d+)", out)})


def driver_cuda_version() -> tuple[int, int] | None:
    """The newest CUDA version the NVIDIA driver supports, or None when no
    driver is installed: ``cuDriverGetVersion`` (no context needed), else
    the "CUDA Version" that ``nvidia-smi`` prints."""
    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        version = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(version)) == 0 and version.value:
            return version.value // 1000, version.value % 1000 // 10
    out = _run(["nvidia-smi"]) or ""
    match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def visible_gpu_archs() -> list[str]:
    """Compute capabilities of the visible GPUs ("90"), from nvidia-smi."""
    out = _run(["nvidia-smi", "--query-gpu=compute_cap",
                "--format=csv,noheader"]) or ""
    return sorted({line.strip().replace(".", "")
                   for line in out.splitlines() if line.strip()})


# ---------------------------------------------------------------- decision

def release_of(version_text: str) -> tuple[int, int] | None:
    """(13, 0) from nvcc's "release 13.0" (or "cuda_13.0")."""
    match = re.search(r"release (\d+)\.(\d+)", version_text) or re.search(
        r"cuda_(\d+)\.(\d+)", version_text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _toolkit_home(nvcc: str) -> Path | None:
    """The toolkit root: $CUDA_HOME / $CUDA_PATH, else beside the real
    nvcc binary, else /usr/local/cuda; it must hold cuda_runtime.h."""
    homes = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
             str(Path(nvcc).resolve().parent.parent), "/usr/local/cuda"]
    return next((Path(h) for h in homes
                 if h and (Path(h) / "include" / "cuda_runtime.h").is_file()),
                None)


def gencode_flags(nvcc: str, release: tuple[int, int]) -> list[str]:
    """SASS for the requested (or visible, or default) archs the toolkit
    supports, plus PTX for the lowest supported arch."""
    supported = [a for a in toolkit_archs(nvcc) if a >= MIN_ARCH]
    lowest = supported[0] if supported else (75 if release[0] >= 13
                                             else MIN_ARCH)
    env = os.environ.get("TF_SPARSESIGN_CUDA_ARCHS")
    archs = ([a.strip() for a in env.replace(",", ";").split(";")
              if a.strip()] if env else
             (visible_gpu_archs() or list(DEFAULT_ARCHS)))
    sass = [a for a in dict.fromkeys(archs)
            if a.isdigit() and int(a) >= lowest
            and (not supported or int(a) in supported)]
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in sass]
    flags.append(f"-gencode=arch=compute_{lowest},code=compute_{lowest}")
    return flags


def _warn(message: str) -> None:
    warnings.warn(f"tf_sparsesign: {message}", RuntimeWarning, stacklevel=4)


def build_plan(cxx: str) -> dict | None:
    """The CUDA part of the build, or None for a CPU-only library (with a
    warning when GPU kernels were wanted but cannot work; see the module
    docstring). The dict holds nvcc, its version text, include and lib
    folders, the -gencode flags and the host compiler."""
    if os.environ.get("TF_SPARSESIGN_DISABLE_CUDA"):
        return None
    tf_cuda = tf_cuda_version()
    if tf_cuda is None:
        return None
    driver = driver_cuda_version()
    if driver is None:
        return None  # no NVIDIA driver: no GPU for the kernels to run on
    nvcc = find_nvcc()
    version = nvcc_version_text(nvcc) if nvcc else None
    release = release_of(version) if version else None
    home = _toolkit_home(nvcc) if nvcc else None
    if not (nvcc and release and home):
        _warn(f"GPU kernels not built: TensorFlow is a CUDA {tf_cuda} build "
              f"and an NVIDIA driver is present, but no usable nvcc with "
              f"CUDA headers was found (nvcc: {nvcc or 'not on PATH'}). "
              f"Fix: install a CUDA toolkit the driver supports (CUDA "
              f"{driver[0]}.x or older) and set NVCC or PATH, then "
              f"`python -m tf_sparsesign build --force`; or set "
              f"TF_SPARSESIGN_DISABLE_CUDA=1 to silence this. The CPU "
              f"kernels are used.")
        return None
    if driver[0] < release[0]:
        needed = FIRST_DRIVER.get(release[0], "a newer one")
        _warn(f"GPU kernels not built: nvcc is CUDA "
              f"{release[0]}.{release[1]} ({nvcc}), which needs NVIDIA "
              f"driver >= {needed}, but the installed driver supports CUDA "
              f"{driver[0]}.{driver[1]} at most (TensorFlow itself was "
              f"built with CUDA {tf_cuda}). Fix: point NVCC at a CUDA "
              f"{driver[0]}.x toolkit (e.g. NVCC=/usr/local/cuda-"
              f"{driver[0]}/bin/nvcc) or update the driver, then "
              f"`python -m tf_sparsesign build --force`. The CPU kernels "
              f"are used until then.")
        return None
    lib = next((home / d for d in ("lib64", "lib") if (home / d).is_dir()),
               home / "lib64")
    return {"nvcc": nvcc, "version": version, "include": str(home / "include"),
            "lib": str(lib), "gencode": gencode_flags(nvcc, release),
            "ccbin": cxx}
