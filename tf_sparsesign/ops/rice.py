"""Compact wire format: Rice-coded index gaps plus a sign bit per entry.

A wire-format-v1 message (``k`` int32 codes ``(index << 1) | sign``,
ascending, ``-1`` padding) costs 32 bits per entry; the same message as a
Rice stream costs about ``log2(N/K) + 2.5`` bits per entry, within ~1% of
the floor ``log2 C(N, K) + K``. The words are int32, so they travel through
``all_gather`` like the codes do. Layout (full spec in docs/WIRE.md)::

    [W, count, tag, bit stream ...]   W = words used, header included

Messages padded with zero words to a common length still decode, so a
collective can pad every worker's message to ``W_max`` and decode ``[M,
W_max]`` in one call. Decoding validates everything and never reads past
its input.

The compiled kernels are used when the op library is available, else the
NumPy reference (:mod:`tf_sparsesign.reference.rice`, same words) through
``tf.numpy_function``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .. import policy
from ..constants import MAX_ELEMENTS, PAD_CODE, RICE_HEADER_WORDS
from ..reference import rice as _ref
from . import _library
from ._args import as_int, check_on_invalid, int32_tensor

__all__ = ["rice_encode", "rice_decode", "rice_parameter", "rice_max_words"]

tf.no_gradient("RiceEncode")
tf.no_gradient("RiceDecode")


#: The Rice parameter for k entries among n positions (see policy).
rice_parameter = policy.rice_parameter
#: Most words a Rice message can take, for padding (see policy).
rice_max_words = policy.rice_max_words


def rice_encode(codes, num_elements: int, pad_to: int | None = None,
                name: str | None = None):
    """Rice-encodes a wire-format-v1 message.

    Args:
      codes: int32 ``[k]``: codes ``(index << 1) | sign`` ascending by index;
        ``-1`` anywhere is padding and skipped (so one whole step's message,
        with padding between variables, encodes in one call).
      num_elements: Python int ``N <= 2**30``, the size of the index space.
      pad_to: optional Python int: append zero words up to this static
        length (``rice_max_words(N, k)`` always suffices and is only ~5%
        above a typical message), so every worker's message has the same
        shape for ``all_gather`` and the gathered ``[M, pad_to]`` decodes in
        one :func:`rice_decode` call. A message longer than ``pad_to`` is an
        InvalidArgumentError.
      name: optional op name.

    Returns:
      int32 ``[W]``, exactly the words used (``W`` is also its first word),
      or ``[pad_to]`` with ``pad_to``.

    Raises:
      tf.errors.InvalidArgumentError: a code below -1, an index ``>= N``, or
        indices not strictly increasing.

    Example:

    >>> import tensorflow as tf
    >>> from tf_sparsesign.ops import rice_encode, rice_decode
    >>> codes = tf.constant([3, 6, 41, -1], tf.int32)  # 1-, 3+, 20-, padding
    >>> words = rice_encode(codes, num_elements=100)
    >>> words.shape[0], int(words[0]), int(words[1])  # W, W, entries
    (4, 4, 3)
    >>> rice_decode(words, num_elements=100, k=4).numpy()
    array([ 3,  6, 41, -1], dtype=int32)
    >>> rice_encode(codes, 100, pad_to=6).numpy()[4:]  # zeros after W
    array([0, 0], dtype=int32)
    """
    codes = int32_tensor(codes, "rice_encode: codes", {1: "[k]"})
    n = as_int(num_elements, "rice_encode: num_elements", 0, MAX_ELEMENTS)
    if pad_to is not None:
        pad_to = as_int(pad_to, "rice_encode: pad_to", RICE_HEADER_WORDS)
    lib = _library.load()
    with tf.name_scope(name or "rice_encode"):
        if lib is not None:
            words = lib.rice_encode(codes, num_elements=n)
        else:
            words = _reference_encode(codes, n)
        if pad_to is None:
            return words
        used = tf.shape(words)[0]
        fits = tf.debugging.Assert(used <= pad_to, [tf.strings.format(
            "rice_encode: the message has {} words, more than pad_to = {}",
            (used, pad_to))])
        with tf.control_dependencies([fits]):
            words = tf.pad(words, [[0, tf.maximum(pad_to - used, 0)]])
        return tf.ensure_shape(words, [pad_to])


def rice_decode(words, num_elements: int, k: int, on_invalid: str = "raise",
                name: str | None = None):
    """Decodes Rice messages back to wire-format-v1 codes.

    A message must be exactly what :func:`rice_encode` wrote, optionally
    followed by zero words. Anything else (truncated, extended, a flipped
    bit that breaks the structure, an index ``>= num_elements``, more than
    ``k`` entries) is invalid. Decoding reads only the given words.

    Args:
      words: int32 ``[W]`` (one message) or ``[M, W]`` (one per row, each
        padded with zeros to the common length ``W``).
      num_elements: Python int ``N <= 2**30``.
      k: Python int, the slots per decoded message.
      on_invalid: ``"raise"`` (InvalidArgumentError saying why) or
        ``"drop"`` (the message decodes to all ``-1``, flagged invalid).
      name: optional op name.

    Returns:
      int32 ``[k]`` or ``[M, k]``: entries ascending, then ``-1`` (interior
      padding of the encoded codes ends up at the tail). With
      ``on_invalid="drop"`` a pair ``(codes, valid)``, ``valid`` a bool
      scalar or ``[M]``.

    Example:

    >>> import tensorflow as tf
    >>> from tf_sparsesign.ops import rice_encode, rice_decode
    >>> a = rice_encode(tf.constant([0, 9], tf.int32), 50)
    >>> b = rice_encode(tf.constant([97, -1], tf.int32), 50)
    >>> rows = tf.stack([a, tf.pad(b, [[0, 4 - b.shape[0]]])])  # pad to W=4
    >>> codes, valid = rice_decode(rows, 50, k=2, on_invalid="drop")
    >>> codes.numpy().tolist(), valid.numpy().tolist()
    ([[0, 9], [97, -1]], [True, True])
    """
    words = int32_tensor(words, "rice_decode: words", {1: "[W]",
                                                       2: "[M, W]"})
    n = as_int(num_elements, "rice_decode: num_elements", 0, MAX_ELEMENTS)
    k = as_int(k, "rice_decode: k", 0)
    check_on_invalid(on_invalid, "rice_decode")
    lib = _library.load()
    with tf.name_scope(name or "rice_decode"):
        if lib is not None:
            codes, valid = lib.rice_decode(words, num_elements=n, k=k,
                                           on_invalid=on_invalid)
        else:
            codes, valid = _reference_decode(words, n, k, on_invalid)
    if on_invalid == "drop":
        return codes, valid
    return codes


def _raise_if(message: tf.Tensor):
    """An InvalidArgumentError carrying `message` unless it is empty: the
    reference reports errors as strings so eager and graph mode raise the
    same error type as the compiled kernels."""
    return tf.debugging.Assert(tf.equal(message, ""), [message])


def _reference_encode(codes, n: int):
    def run(c):
        try:
            return _ref.encode(c, n), b""
        except _ref.RiceFormatError as exc:
            return np.zeros(0, np.int32), str(exc).encode()

    words, message = tf.numpy_function(run, [codes], (tf.int32, tf.string),
                                       stateful=False)
    words.set_shape([None])
    with tf.control_dependencies([_raise_if(message)]):
        return tf.identity(words)


def _reference_decode(words, n: int, k: int, on_invalid: str):
    def run(w):
        rows = w.reshape(-1, w.shape[-1])
        codes = np.full((rows.shape[0], k), PAD_CODE, np.int32)
        valid = np.zeros(rows.shape[0], bool)
        first_error = b""
        for i, row in enumerate(rows):
            try:
                codes[i], valid[i] = _ref.decode(row, n, k), True
            except _ref.RiceFormatError as exc:
                prefix = f"message {i} of {rows.shape[0]}: " if w.ndim == 2 \
                    else ""
                first_error = first_error or (prefix + str(exc)).encode()
        return (codes.reshape(w.shape[:-1] + (k,)),
                valid.reshape(w.shape[:-1]), first_error)

    codes, valid, message = tf.numpy_function(
        run, [words], (tf.int32, tf.bool, tf.string), stateful=False)
    codes.set_shape(words.shape[:-1].concatenate([k]))
    valid.set_shape(words.shape[:-1])
    checks = [_raise_if(message)] if on_invalid == "raise" else []
    with tf.control_dependencies(checks):
        return tf.identity(codes), tf.identity(valid)
