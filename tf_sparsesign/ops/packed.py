"""Packed signs: signSGD-MV's wire format, one ternary digit per coordinate.

A message over ``N`` coordinates is ``ceil(N / 20)`` int32 words (1.6 bits
per coordinate): coordinate ``i`` is digit ``i % 5`` (base 3, least
significant first) of byte ``(i % 20) // 5`` of word ``i // 20``; digit 0:
not sent (abstains), 1: +, 2: -. Full spec in docs/WIRE.md.

The compiled kernels are used when the op library is available, else the
pure-TensorFlow reference (:mod:`tf_sparsesign.reference.packed`, the same
words and votes bit for bit). Both ops have GPU kernels in a library built
with them (:func:`~tf_sparsesign.ops.devices.kernels_on`); TensorFlow then
runs them where their inputs are, so a GPU's messages and votes stay on it.
"""

from __future__ import annotations

import tensorflow as tf

from ..constants import MAX_ELEMENTS
from ..reference import packed as reference
from . import _library
from ._args import as_int, int32_tensor

__all__ = ["packed_signs_encode", "packed_signs_vote"]

tf.no_gradient("PackedSignsEncode")
tf.no_gradient("PackedSignsVote")


def packed_signs_encode(codes, num_elements: int, name: str | None = None):
    """Wire-format-v1 codes as one packed message.

    Args:
      codes: int32 ``[k]``: codes ``(index << 1) | sign`` in any order;
        ``-1`` anywhere is padding (the coordinate abstains).
      num_elements: Python int ``N <= 2**30``.
      name: optional op name.

    Returns:
      int32 ``[ceil(N / 20)]``.

    Raises:
      tf.errors.InvalidArgumentError: a code below -1, an index ``>= N``,
        or an index given twice.

    Example:

    >>> import tensorflow as tf
    >>> from tf_sparsesign.ops import packed_signs_encode
    >>> # 0+ 1- 3+ (2 abstains): digits 1, 2, 0, 1 -> 1 + 2*3 + 1*27 = 34
    >>> packed_signs_encode(tf.constant([0, 3, 6, -1]), 4).numpy()
    array([34], dtype=int32)
    """
    codes = int32_tensor(codes, "packed_signs_encode: codes", {1: "[k]"})
    n = as_int(num_elements, "packed_signs_encode: num_elements", 0,
               MAX_ELEMENTS)
    lib = _library.load()
    with tf.name_scope(name or "packed_signs_encode"):
        if lib is None:
            return reference.packed_signs_encode(codes, n)
        return lib.packed_signs_encode(codes, num_elements=n)


def packed_signs_vote(rows, num_elements: int, weights=None,
                      name: str | None = None):
    """Majority vote straight from packed messages: ``sign(sum_m w_m s_m)``.

    The same float32 sums as :func:`tf_sparsesign.ops.majority_vote` (rows
    added in order, denormal weights and partial sums counting as zero), so
    the votes equal ``majority_vote`` over the same signs sent as codes, bit
    for bit; but no ``[M, N]`` array of codes is made. A byte above 242 (no
    base-3 byte, e.g. a row of ``-1`` words) abstains for its coordinates;
    check messages first (the packed codec does) if they may be malformed.

    Args:
      rows: int32 ``[M, ceil(N / 20)]``, one message per row.
      num_elements: Python int ``N <= 2**30``.
      weights: optional float32 ``[M]`` finite weights (default 1).
      name: optional op name.

    Returns:
      float32 ``[N]`` in {-1, 0, +1}.

    Example:

    >>> import tensorflow as tf
    >>> from tf_sparsesign.ops import packed_signs_encode, packed_signs_vote
    >>> rows = tf.stack([packed_signs_encode(tf.constant(c), 3)
    ...                  for c in ([0, 3], [0, 2], [1, 5])])
    >>> packed_signs_vote(rows, 3).numpy()   # 0: +,+,- ; 1: -,+ ; 2: -
    array([ 1.,  0., -1.], dtype=float32)
    """
    rows = int32_tensor(rows, "packed_signs_vote: rows", {2: "[M, W]"})
    n = as_int(num_elements, "packed_signs_vote: num_elements", 0,
               MAX_ELEMENTS)
    words = reference.words_for(n)
    if rows.shape.rank == 2 and rows.shape[1] not in (None, words):
        raise ValueError(f"packed_signs_vote: rows must have shape [M, "
                         f"{words}] (ceil({n} / 20) words per message), got "
                         f"{rows.shape}")
    if weights is not None:
        weights = tf.convert_to_tensor(weights)
        if weights.dtype != tf.float32:
            raise TypeError(f"packed_signs_vote: weights must be float32, "
                            f"got {weights.dtype.name}")
    lib = _library.load()
    with tf.name_scope(name or "packed_signs_vote"):
        if lib is None:
            return reference.packed_signs_vote(rows, n, weights)
        weighted = weights is not None
        return lib.packed_signs_vote(
            rows, weights if weighted else tf.zeros([0], tf.float32),
            num_elements=n, weighted=weighted)
