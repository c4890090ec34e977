"""The step's helpers: the finiteness check that guards a step, and plain
SGD's write on the touched coordinates only.

Both run compiled kernels where the library has them for the tensors'
device (:func:`.devices.kernels_on`: the CPU, and a GPU when the library was
built with its GPU kernels): one pass, and a sparse write that leaves the
variable's reads uncopied. Elsewhere, or without the op library,
TensorFlow's own ops on the same device, with the same results.
"""

from __future__ import annotations

import tensorflow as tf

from . import _library
from .devices import kernels_on

__all__ = ["check_finite", "scatter_sub", "nd_index"]

tf.no_gradient("SparseSignScatterSub")


def check_finite(x, message: str, name: str | None = None):
    """``x`` unchanged, or ``tf.errors.InvalidArgumentError`` when it holds
    a NaN or an infinity; the error text is ``message``, then how many
    entries are not finite and the first one's flat index and value.

    What ``tf.debugging.check_numerics(x, message)`` does, in one pass
    (multithreaded on CPU: TensorFlow's check is single-threaded, at 10M
    float32 entries it was a quarter of a step's CPU time; on a GPU the
    compiled kernel reports the same count and first index).

    Args:
      x: float16, bfloat16, float32 or float64 tensor.
      message: the error text's start, e.g. naming the variable.
      name: optional op name.

    Example:

    >>> import tensorflow as tf
    >>> from tf_sparsesign.ops import check_finite
    >>> check_finite(tf.constant([1.0, -2.0]), "grad").numpy()
    array([ 1., -2.], dtype=float32)
    """
    x = tf.convert_to_tensor(x)
    if x.dtype not in (tf.float16, tf.bfloat16, tf.float32, tf.float64):
        raise TypeError(f"check_finite: x must be float16, bfloat16, float32"
                        f" or float64, got {x.dtype.name}")
    lib = _library.load()
    if lib is None or not kernels_on(x.device):
        return tf.debugging.check_numerics(x, message, name=name)
    return lib.sparse_sign_check_finite(x, message=message, name=name)


def scatter_sub(variable, indices, updates, name: str | None = None):
    """``variable.flat[indices[i]] -= updates[i]``, in place.

    Bit for bit ``variable.scatter_nd_sub(nd_index(indices, shape),
    updates)``; with the compiled kernels (CPU, and GPU in a build with
    them) without switching the variable to copy-on-read (TensorFlow's
    sparse updates do, and then every later read of the variable copies it:
    at 10M parameters that cost more than the update). Every index is
    checked before anything is written.

    Args:
      variable: a resource ``tf.Variable`` (the component on one device).
      indices: int32 ``[U]`` flat (row-major) positions, in
        ``[0, variable's number of elements)``.
      updates: ``[U]`` of the variable's dtype.
      name: optional op name.

    Raises:
      tf.errors.InvalidArgumentError: an index is out of range (nothing
        written).

    Example:

    >>> import tensorflow as tf
    >>> from tf_sparsesign.ops import scatter_sub
    >>> v = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
    >>> _ = scatter_sub(v, tf.constant([1, 2]), tf.constant([0.5, 1.0]))
    >>> v.numpy()
    array([[1. , 1.5],
           [2. , 4. ]], dtype=float32)
    """
    indices = tf.convert_to_tensor(indices, tf.int32)
    updates = tf.convert_to_tensor(updates, variable.dtype)
    lib = _library.load()
    if lib is None or not kernels_on(variable.device):
        return _scatter_sub_reference(variable, indices, updates, name)
    return lib.sparse_sign_scatter_sub(variable.handle, indices, updates,
                                       name=name)


def _scatter_sub_reference(variable, indices, updates, name):
    """TensorFlow's ops, after the same range check as the kernel; a scalar
    variable (which ``scatter_nd_sub`` rejects) takes the sum of its
    updates at index 0."""
    n = variable.shape.num_elements()
    message = (f"scatter_sub: an index is outside the variable's {n} "
               f"elements (shape {variable.shape}); nothing was written")
    checks = [tf.debugging.assert_non_negative(indices, message=message),
              tf.debugging.assert_less(indices, n, message=message)]
    with tf.control_dependencies(checks):
        if variable.shape.rank == 0:
            return variable.assign_sub(tf.reduce_sum(updates), name=name)
        return variable.scatter_nd_sub(nd_index(indices, variable.shape),
                                       updates, name=name)


def nd_index(flat, shape) -> tf.Tensor:
    """``[U, rank]`` indices of the flat (row-major) positions ``flat``."""
    dims = tf.TensorShape(shape).as_list()
    strides = [1] * len(dims)
    for d in range(len(dims) - 2, -1, -1):
        strides[d] = strides[d + 1] * dims[d + 1]
    if not dims:
        return tf.zeros([tf.size(flat), 0], flat.dtype)
    return tf.stack([(flat // stride) % dim
                     for stride, dim in zip(strides, dims)], axis=1)
