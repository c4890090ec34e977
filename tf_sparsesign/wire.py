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
NumPy reference (:mod:`tf_sparsesign.wire_reference`, same words) through
``tf.numpy_function``.
"""

from __future__ import annotations

import numbers

import numpy as np
import tensorflow as tf

from . import _library
from . import wire_reference as _ref

__all__ = ["rice_encode", "rice_decode", "rice_parameter", "rice_max_words",
           "HEADER_WORDS"]

#: Words before the bit stream: length, entry count, tag (magic, version, r).
HEADER_WORDS = _ref.HEADER_WORDS

tf.no_gradient("RiceEncode")
tf.no_gradient("RiceDecode")


def _as_int(value, what: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be a Python int, got "
                        f"{type(value).__name__}: {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{what} must be in {bound}, got {value}")
    return value


def rice_parameter(n: int, k: int) -> int:
    """The Rice parameter r used for ``k`` entries among ``n`` positions.

    The smallest ``r >= 0`` with ``2**r >= ln(phi) * n / k`` (phi the golden
    ratio): the best power-of-two Golomb parameter for the geometric gaps
    that uniformly spread positions produce. Each entry then costs
    ``(gap >> r) + r + 2`` bits.

    >>> from tf_sparsesign.wire import rice_parameter
    >>> rice_parameter(1_000_000, 10_000), rice_parameter(1_000_000, 1_000)
    (6, 9)
    """
    return _ref.rice_parameter(int(n), int(k))


def rice_max_words(n: int, k: int) -> int:
    """Most words (header included) a message of <= ``k`` entries over
    ``n`` positions can take, whatever the positions; for allocation.

    >>> from tf_sparsesign.wire import rice_max_words
    >>> rice_max_words(1_000_000, 10_000)  # 10_000 int32 codes = 10_000 words
    2987
    """
    return _ref.max_words(int(n), int(k))


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
    >>> from tf_sparsesign.wire import rice_encode, rice_decode
    >>> codes = tf.constant([3, 6, 41, -1], tf.int32)  # 1-, 3+, 20-, padding
    >>> words = rice_encode(codes, num_elements=100)
    >>> words.shape[0], int(words[0]), int(words[1])  # W, W, entries
    (4, 4, 3)
    >>> rice_decode(words, num_elements=100, k=4).numpy()
    array([ 3,  6, 41, -1], dtype=int32)
    >>> rice_encode(codes, 100, pad_to=6).numpy()[4:]  # zeros after W
    array([0, 0], dtype=int32)
    """
    codes = tf.convert_to_tensor(codes)
    if codes.dtype != tf.int32:
        raise TypeError(f"rice_encode: codes must be int32, got "
                        f"{codes.dtype.name}")
    if codes.shape.rank is not None and codes.shape.rank != 1:
        raise ValueError(f"rice_encode: codes must have shape [k], got "
                         f"{codes.shape}")
    n = _as_int(num_elements, "rice_encode: num_elements", 0,
                _ref.MAX_ELEMENTS)
    if pad_to is not None:
        pad_to = _as_int(pad_to, "rice_encode: pad_to", HEADER_WORDS)
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
    >>> from tf_sparsesign.wire import rice_encode, rice_decode
    >>> a = rice_encode(tf.constant([0, 9], tf.int32), 50)
    >>> b = rice_encode(tf.constant([97, -1], tf.int32), 50)
    >>> rows = tf.stack([a, tf.pad(b, [[0, 4 - b.shape[0]]])])  # pad to W=4
    >>> codes, valid = rice_decode(rows, 50, k=2, on_invalid="drop")
    >>> codes.numpy().tolist(), valid.numpy().tolist()
    ([[0, 9], [97, -1]], [True, True])
    """
    words = tf.convert_to_tensor(words)
    if words.dtype != tf.int32:
        raise TypeError(f"rice_decode: words must be int32, got "
                        f"{words.dtype.name}")
    if words.shape.rank is not None and words.shape.rank not in (1, 2):
        raise ValueError(f"rice_decode: words must have shape [W] or [M, W], "
                         f"got {words.shape}")
    n = _as_int(num_elements, "rice_decode: num_elements", 0,
                _ref.MAX_ELEMENTS)
    k = _as_int(k, "rice_decode: k", 0)
    if on_invalid not in ("raise", "drop"):
        raise ValueError(f"rice_decode: on_invalid must be 'raise' or 'drop', "
                         f"got {on_invalid!r}")
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
        codes = np.full((rows.shape[0], k), _ref.PAD_CODE, np.int32)
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
