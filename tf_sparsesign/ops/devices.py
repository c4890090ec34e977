"""Which device the compiled kernels can run on.

Every op has CPU kernels. The library has GPU kernels for the encode, the
dense vote, the fused error-feedback encode, the sparse write, the
finiteness check and packed signs only when it was built with CUDA (a CUDA
TensorFlow, nvcc and a driver: ``custom_ops/cuda/README.md``). The op
wrappers ask :func:`kernels_on` and otherwise fall back to TensorFlow's own
ops, so that N-sized work stays on the tensors' device; what runs on the
host and why is in docs/GPU.md.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf

from . import _library

__all__ = ["fused_encode_supported", "kernels_on", "device_type",
           "host_scope"]


def device_type(device: str) -> str:
    """``"CPU"``, ``"GPU"``, ... of a device string (a tensor's or a
    variable's ``.device``); an empty one (not placed yet) is a GPU when
    GPUs are visible, else the CPU, as TensorFlow would place it."""
    if device:
        kind = tf.DeviceSpec.from_string(device).device_type
        if kind:
            return kind.upper()
    return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"


def kernels_on(device: str) -> bool:
    """Whether the compiled kernels can run on ``device``: on a CPU when
    the library is loaded, on a GPU when it was built with its GPU kernels;
    never elsewhere."""
    if _library.load() is None:
        return False
    kind = device_type(device)
    return kind == "CPU" or (kind == "GPU" and _library.gpu_kernels())


def fused_encode_supported(device: str) -> bool:
    """Whether :func:`tf_sparsesign.ops.accumulate_encode` runs fused and in
    place for a memory variable on ``device``.

    True on a CPU (the compiled kernel, or without the library its
    pure-TensorFlow reference); on a GPU only when the library was built
    with its GPU kernels; False on other devices. Elsewhere the encode should
    read ``memory + g``, encode it with its residual and write the residual
    back (three passes over N, but no host round trip).

    Args:
      device: the memory variable's ``.device`` (for a distributed variable,
        each component's); ``""`` means not placed yet.

    Example:

    >>> from tf_sparsesign.ops import fused_encode_supported
    >>> fused_encode_supported("/job:localhost/replica:0/task:0/device:CPU:0")
    True
    """
    kind = device_type(device)
    if kind == "CPU":
        return True
    return kind == "GPU" and kernels_on(device)


def host_scope(tensor):
    """A device scope on the host CPU for a host-only op whose input lives
    on a GPU (its input crosses once, explicitly), else no scope: on CPU
    hosts nothing moves."""
    if device_type(getattr(tensor, "device", "") or "") == "GPU":
        return tf.device("/device:CPU:0")
    return contextlib.nullcontext()
