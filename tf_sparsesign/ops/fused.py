"""The aggregation's fused primitives: error feedback and encoding in one
pass over the memory, and the majority vote in sparse form.

Both run the compiled kernels when the op library has them for the
tensors' device and the pure-TensorFlow references
(:mod:`tf_sparsesign.reference.sign`, identical results) otherwise: the
fused encode has CPU and GPU kernels
(:func:`~tf_sparsesign.ops.fused_encode_supported`), the sparse vote a CPU
kernel only and runs on the host (docs/GPU.md).
"""

from __future__ import annotations

import tensorflow as tf

from ..reference import sign as reference
from . import _library
from .devices import host_scope, kernels_on
from .sign import _weights_or_empty, encode_args, vote_args

__all__ = ["accumulate_encode", "sparse_majority_vote"]

tf.no_gradient("SparseSignAccumulateEncode")
tf.no_gradient("SparseMajorityVote")


def accumulate_encode(memory, gradient, k: int, label: str = "",
                      return_values: bool = False, name: str | None = None):
    """Error feedback and top-K sign encoding, in place on ``memory``::

        memory += gradient
        codes = sparse_sign_encode(memory, k)
        memory[selected] = 0

    The compiled kernel makes one read of the gradient and one
    read-modify-write of the memory (the pass that adds also brackets the
    k-th magnitude and collects the selected indices), where the three steps
    above take about five passes. Codes and memory are bit for bit those of
    the three steps (float16/bfloat16 add with TensorFlow's own rounding).
    On a GPU (a library built with its GPU kernels) the same op runs there
    with the same results; without them it falls back to the three steps
    on the memory's device (see :func:`fused_encode_supported`).

    Args:
      memory: a ``tf.Variable`` (or a Keras variable; in replica context the
        replica's own component) of the gradient's dtype and shape.
      gradient: float16, bfloat16, float32 or float64 tensor, fewer than
        ``2**30`` elements.
      k: Python int, ``0 <= k <= N``.
      label: the variable's name for error messages.
      return_values: also return the selected entries' values (of the
        sum, in the memory's dtype; 0 in padding slots), e.g. to give back
        entries that could not be sent.
      name: optional op name.

    Returns:
      int32 ``[k]`` codes, as :func:`tf_sparsesign.ops.sparse_sign_encode`;
      with ``return_values`` a pair ``(codes, values)``.

    Raises:
      TypeError / ValueError: as ``sparse_sign_encode``.
      tf.errors.InvalidArgumentError: dtype or shape of memory and gradient
        differ, or NaN in the sum (the memory then holds the sum: check the
        gradient before, as the aggregation does).

    Example:

    >>> import tensorflow as tf
    >>> from tf_sparsesign.ops import accumulate_encode
    >>> memory = tf.Variable([0.5, -1.0, 0.0, 0.0])
    >>> accumulate_encode(memory, tf.constant([0.0, -2.0, 0.0, 2.0]), 2
    ...                   ).numpy()
    array([3, 6], dtype=int32)
    >>> memory.numpy()
    array([0.5, 0. , 0. , 0. ], dtype=float32)
    """
    gradient, k = encode_args(gradient, k, "accumulate_encode", "gradient")
    variable = memory if isinstance(memory, tf.Variable) else memory.value
    if variable.dtype != gradient.dtype:
        raise TypeError(f"accumulate_encode: memory is {variable.dtype.name}"
                        f" but the gradient is {gradient.dtype.name}")
    if not variable.shape.is_compatible_with(gradient.shape):
        raise ValueError(f"accumulate_encode: memory has shape "
                         f"{variable.shape} but the gradient has "
                         f"{gradient.shape}")
    lib = _library.load()
    with tf.name_scope(name or "accumulate_encode"):
        if lib is None or not kernels_on(variable.device):
            codes, values = reference.accumulate_encode(variable, gradient, k)
        else:
            codes, values = lib.sparse_sign_accumulate_encode(
                variable.handle, gradient, k=k, label=label)
    return (codes, values) if return_values else codes


def sparse_majority_vote(codes, num_elements: int, weights=None,
                         on_invalid: str = "raise",
                         return_tallies: bool = False,
                         name: str | None = None):
    """:func:`tf_sparsesign.ops.majority_vote` in sparse form.

    Returns only the coordinates whose vote is not 0: scattering
    ``votes`` at ``indices`` into zeros gives ``majority_vote``'s result bit
    for bit (same validation, errors, float32 sums in row order). Work is
    ``O(M k log M)``, independent of ``num_elements``; it runs on the host
    (codes on a GPU are copied there once: ``M k`` int32).

    Args: as :func:`tf_sparsesign.ops.majority_vote`, plus
      return_tallies: return the tallies ``sum_m w_m s_{m,i}`` (float32,
        their signs are the votes, their magnitudes rank coordinates)
        instead of the votes.

    Returns:
      ``(indices, votes)``: int32 ``[U]`` ascending and float32 ``[U]`` in
      {-1, +1} (or the tallies); with ``on_invalid="drop"`` also
      ``num_dropped`` (int32).

    Example:

    >>> import tensorflow as tf
    >>> from tf_sparsesign.ops import sparse_majority_vote
    >>> codes = tf.constant([[0, 5], [1, 5], [0, 6]], tf.int32)
    >>> indices, votes = sparse_majority_vote(codes, 4)
    >>> indices.numpy(), votes.numpy()
    (array([0, 2, 3], dtype=int32), array([ 1., -1.,  1.], dtype=float32))
    """
    codes, num_elements, weights = vote_args(
        codes, num_elements, weights, on_invalid, "sparse_majority_vote")
    lib = _library.load()
    with tf.name_scope(name or "sparse_majority_vote"), host_scope(codes):
        if lib is None:
            indices, tallies, dropped = reference.sparse_majority_vote(
                codes, num_elements, weights, on_invalid)
        else:
            indices, tallies, dropped = lib.sparse_majority_vote(
                codes, _weights_or_empty(weights), num_elements=num_elements,
                weighted=weights is not None, on_invalid=on_invalid)
        values = tallies if return_tallies else tf.sign(tallies)
    if on_invalid == "drop":
        return indices, values, dropped
    return indices, values
