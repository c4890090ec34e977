"""The two primitives of S3GD-MV: top-K sign encoding and majority vote.

Both run the compiled C++ kernels when the op library is available and the
pure-TensorFlow reference (:mod:`tf_sparsesign.reference.sign`, identical results)
otherwise, after one warning that says how to build.

Wire format v1: a code is the int32 ``(flat_index << 1) | (value < 0)``; a
message is ``k`` codes ascending by index, padded at the tail with ``-1``.
"""

from __future__ import annotations

import tensorflow as tf

from ..constants import MAX_ELEMENTS
from ..reference import sign as reference
from . import _library
from ._args import as_int, check_on_invalid, int32_tensor

__all__ = ["sparse_sign_encode", "majority_vote", "is_compiled"]

_FLOATS = (tf.float16, tf.bfloat16, tf.float32, tf.float64)

tf.no_gradient("SparseSignEncode")
tf.no_gradient("SparseSignEncodeWithResidual")
tf.no_gradient("MajorityVote")


def is_compiled() -> bool:
    """True when the compiled op library is in use (not the fallback)."""
    return _library.is_compiled()


def _static_size(x: tf.Tensor) -> int | None:
    return x.shape.num_elements()


def sparse_sign_encode(x, k: int, *, return_residual: bool = False,
                       name: str | None = None):
    """Encodes the ``k`` largest-magnitude nonzero entries of ``x`` as codes.

    Reads ``x`` flat in row-major order (``N = size(x)``), picks the ``k``
    nonzero entries of largest ``|x|`` (ties: the lower flat index wins) and
    returns ``(index << 1) | (x[index] < 0)`` for each, ascending by index.
    If fewer than ``k`` entries are nonzero, the tail holds ``-1``. ``-0.0``
    counts as zero, ``±inf`` is the largest magnitude, NaN is an error.

    Args:
      x: float16, bfloat16, float32 or float64 tensor of any shape, with
        ``N < 2**30`` elements.
      k: Python int, ``0 <= k <= N``.
      return_residual: also return ``x`` with the selected entries set to
        zero (the error-feedback remainder), computed in the same pass.
      name: optional op name.

    Returns:
      int32 tensor of shape ``[k]``; with ``return_residual`` a pair
      ``(codes, residual)``.

    Raises:
      TypeError: ``x`` is not floating point or ``k`` is not an int.
      ValueError: ``k`` is out of range for a statically known ``N``.
      tf.errors.InvalidArgumentError: NaN in ``x``, or (for shapes known
        only at run time) ``k > N`` or ``N >= 2**30``.

    Example:

    >>> import tensorflow as tf
    >>> from tf_sparsesign.ops import sparse_sign_encode
    >>> sparse_sign_encode(tf.constant([0.5, -3.0, 0.0, 2.0]), 2).numpy()
    array([3, 6], dtype=int32)
    """
    x, k = encode_args(x, k, "sparse_sign_encode", "x")
    lib = _library.load()
    with tf.name_scope(name or "sparse_sign_encode"):
        if lib is None:
            return reference.sparse_sign_encode(x, k, return_residual)
        if return_residual:
            codes, residual = lib.sparse_sign_encode_with_residual(x, k=k)
            return codes, residual
        return lib.sparse_sign_encode(x, k=k)


def majority_vote(codes, num_elements: int, weights=None,
                  on_invalid: str = "raise", name: str | None = None):
    """Majority vote of workers' messages: ``sign(sum_m w_m * s_m)``.

    ``s_{m,i}`` is ``+1``/``-1`` if row ``m`` holds a code for index ``i``
    with that sign and ``0`` otherwise; ties and indices nobody sent give
    ``0``. ``-1`` codes are padding. A row is invalid when a code is below
    ``-1``, decodes to an index ``>= num_elements``, or its indices do not
    strictly increase; the op never reads or writes out of bounds.

    Args:
      codes: int32 ``[M, k]``, one worker's message per row.
      num_elements: Python int, the length of the voted vector (<= 2**30).
      weights: optional float32 ``[M]`` finite per-row weights (default 1).
        Sums run in float32 in row order; float32 denormals (|v| < 2**-126)
        in weights and partial sums count as zero, so results do not depend
        on the CPU's flush-to-zero mode.
      on_invalid: ``"raise"`` (error naming the first invalid row and its
        offending code) or ``"drop"`` (invalid rows abstain).
      name: optional op name.

    Returns:
      float32 ``[num_elements]`` with values in {-1, 0, +1}; with
      ``on_invalid="drop"`` a pair ``(votes, num_dropped)`` where
      ``num_dropped`` is an int32 scalar.

    Example:

    >>> import tensorflow as tf
    >>> from tf_sparsesign.ops import majority_vote
    >>> codes = tf.constant([[0, 5], [1, 5], [0, 6]], tf.int32)
    >>> majority_vote(codes, 4).numpy()
    array([ 1.,  0., -1.,  1.], dtype=float32)
    """
    codes, num_elements, weights = vote_args(codes, num_elements, weights,
                                             on_invalid, "majority_vote")
    lib = _library.load()
    with tf.name_scope(name or "majority_vote"):
        if lib is None:
            votes, dropped = reference.majority_vote(codes, num_elements,
                                                     weights, on_invalid)
        else:
            votes, dropped = lib.majority_vote(
                codes, _weights_or_empty(weights), num_elements=num_elements,
                weighted=weights is not None, on_invalid=on_invalid)
    if on_invalid == "drop":
        return votes, dropped
    return votes


# -- argument checks shared with the aggregation ops (ops/fused.py) --------

def encode_args(x, k, what: str, arg: str):
    """``(x as a float tensor, k as an int)``, or a clear error."""
    x = tf.convert_to_tensor(x)
    if x.dtype not in _FLOATS:
        raise TypeError(f"{what}: {arg} must be float16, bfloat16, float32 "
                        f"or float64, got {x.dtype.name}")
    k = as_int(k, f"{what}: k")
    n = _static_size(x)
    if k < 0 or (n is not None and k > n):
        raise ValueError(f"{what}: k must satisfy 0 <= k <= N = "
                         f"{n if n is not None else 'size(x)'}, got k = {k}")
    if n is not None and n >= MAX_ELEMENTS:
        raise ValueError(f"{what}: {arg} has {n} elements; the limit is "
                         f"2**30 - 1 = {MAX_ELEMENTS - 1} (int32 codes). "
                         "Split the tensor.")
    return x, k


def vote_args(codes, num_elements, weights, on_invalid: str, what: str):
    """``(codes, num_elements, weights)`` checked, or a clear error."""
    codes = int32_tensor(codes, f"{what}: codes", {2: "[M, k]"})
    num_elements = as_int(num_elements, f"{what}: num_elements")
    if not 0 <= num_elements <= MAX_ELEMENTS:
        raise ValueError(f"{what}: num_elements must be in [0, 2**30], got "
                         f"{num_elements}")
    check_on_invalid(on_invalid, what)
    if weights is not None:
        weights = tf.convert_to_tensor(weights)
        if weights.dtype != tf.float32:
            raise TypeError(f"{what}: weights must be float32, got "
                            f"{weights.dtype.name}")
        m = codes.shape[0]
        if weights.shape.rank is not None and (
                weights.shape.rank != 1 or
                (m is not None and weights.shape[0] not in (None, m))):
            raise ValueError(f"{what}: weights must have shape [{m}] (one "
                             f"per row of codes), got {weights.shape}")
    return codes, num_elements, weights


def _weights_or_empty(weights):
    return weights if weights is not None else tf.zeros([0], tf.float32)
