"""Loads the compiled op library once; remembers why when it cannot."""

from __future__ import annotations

import ctypes
import os
import threading
import warnings
from types import ModuleType

_lock = threading.Lock()
_state: dict = {"loaded": False, "module": None, "error": None, "path": None,
               "gpu": None}

#: Exported by the library's GPU kernels (custom_ops/tf/
#: sparse_sign_kernels_gpu.cc), present only in a build with them.
GPU_SYMBOL = "tf_sparsesign_gpu_kernels"

BUILD_HINT = (
    "Install a C++ compiler (g++) and run `python -m tf_sparsesign build` "
    "to compile the ops against the installed TensorFlow; until then the "
    "pure-TensorFlow reference (same results, slower) is used.")


def load() -> ModuleType | None:
    """The loaded op module, or None (after one warning) when unavailable.

    Set ``TF_SPARSESIGN_DISABLE_COMPILED=1`` to force the reference path.
    """
    with _lock:
        if _state["loaded"]:
            return _state["module"]
        _state["loaded"] = True
        if os.environ.get("TF_SPARSESIGN_DISABLE_COMPILED") == "1":
            _state["error"] = "disabled by TF_SPARSESIGN_DISABLE_COMPILED=1"
            return None
        try:
            import tensorflow as tf

            from . import _build

            path = _build.build_library()
            _state["module"] = tf.load_op_library(str(path))
            _state["path"] = path
        except Exception as exc:  # noqa: BLE001 - any failure means fallback
            _state["error"] = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                "tf_sparsesign: the compiled op library is unavailable "
                f"({_state['error'][:2000]}). {BUILD_HINT}",
                RuntimeWarning, stacklevel=3)
        return _state["module"]


def gpu_kernels() -> bool:
    """True when the loaded library has the GPU kernels registered (it was
    built with CUDA, see ``custom_ops/cuda``); False for a CPU-only build or
    without the library."""
    if load() is None:
        return False
    with _lock:
        if _state["gpu"] is None:
            _state["gpu"] = has_symbol(_state["path"], GPU_SYMBOL)
        return _state["gpu"]


def library_path():
    """The loaded library's path (a ``pathlib.Path``), or None."""
    load()
    return _state["path"]


def has_symbol(path, name: str) -> bool:
    """Whether the already loaded shared library ``path`` exports ``name``
    (looked up without loading it a second time)."""
    try:
        lib = ctypes.CDLL(str(path), mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return False
    return hasattr(lib, name)


def is_compiled() -> bool:
    """True when the compiled op library is loaded (not the fallback)."""
    return load() is not None


def load_error() -> str | None:
    """Why the compiled library is not in use, or None if it is."""
    load()
    return _state["error"]
