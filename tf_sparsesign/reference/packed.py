"""Pure-TensorFlow reference of the packed-signs ops (docs/WIRE.md).

Same results as the compiled ops, bit for bit (tests prove it); the
fallback when the op library cannot be built, and the readable statement
of the format: coordinate ``i`` is digit ``i % 5`` (base 3, least
significant first) of byte ``(i % 20) // 5`` of word ``i // 20``; digit 0
abstains, 1 is +, 2 is -.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..constants import (PACKED_DIGITS_PER_BYTE, PACKED_DIGITS_PER_WORD,
                         PACKED_MAX_BYTE)

SHIFTS = (0, 8, 16, 24)
POWERS = tuple(3 ** j for j in range(PACKED_DIGITS_PER_BYTE))
#: Smallest normal float32: smaller magnitudes count as zero (as in the op).
TINY = 1.17549435e-38


def _sign_table() -> np.ndarray:
    """float32 ``[256, 5]``: the signs (+1, -1, 0) of a byte's five digits;
    bytes above 242 (no base-3 byte; a row of ``-1`` words) give 0."""
    table = np.zeros((256, PACKED_DIGITS_PER_BYTE), np.float32)
    for byte in range(PACKED_MAX_BYTE + 1):
        for j, p in enumerate(POWERS):
            table[byte, j] = (0.0, 1.0, -1.0)[byte // p % 3]
    return table


SIGN_TABLE = _sign_table()


def words_for(num_elements: int) -> int:
    return -(-int(num_elements) // PACKED_DIGITS_PER_WORD)


def packed_signs_encode(codes: tf.Tensor, num_elements: int) -> tf.Tensor:
    """Reference for :func:`tf_sparsesign.ops.packed_signs_encode`."""
    n, slots = int(num_elements), words_for(num_elements) * 20
    index = tf.bitwise.right_shift(codes, 1)
    live = codes >= 0
    bad = (codes < -1) | (live & (index >= n))
    sink = tf.where(live & ~bad, index, slots)  # padding lands past the end
    count = tf.math.unsorted_segment_sum(tf.ones_like(codes), sink,
                                         slots + 1)[:slots]
    checks = [
        tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [
            "packed_signs_encode: a code is below -1 or decodes to an index "
            f"outside [0, {n})"]),
        tf.debugging.Assert(tf.reduce_all(count <= 1), [
            "packed_signs_encode: an index appears twice"])]
    with tf.control_dependencies(checks):
        digit = tf.where(live, 1 + tf.bitwise.bitwise_and(codes, 1), 0)
        digits = tf.math.unsorted_segment_sum(digit, sink, slots + 1)[:slots]
    byte = tf.reduce_sum(
        tf.reshape(digits, [-1, PACKED_DIGITS_PER_BYTE]) * POWERS, 1)
    byte = tf.reshape(tf.cast(byte, tf.uint32), [-1, 4])
    word = byte[:, 0]
    for b in (1, 2, 3):
        word = tf.bitwise.bitwise_or(word,
                                     tf.bitwise.left_shift(byte[:, b], 8 * b))
    return tf.bitcast(word, tf.int32)


def row_signs(words: tf.Tensor, num_elements: int) -> tf.Tensor:
    """One packed message ``[W]`` as float32 signs ``[num_elements]``."""
    b = tf.bitwise.bitwise_and(tf.bitwise.right_shift(words[:, None],
                                                      SHIFTS), 255)
    signs = tf.gather(SIGN_TABLE, tf.reshape(b, [-1]))
    return tf.reshape(signs, [-1])[:num_elements]


def _flush(x):
    return tf.where(tf.abs(x) < TINY, tf.zeros_like(x), x)


def packed_signs_vote(rows: tf.Tensor, num_elements: int,
                      weights=None) -> tf.Tensor:
    """Reference for :func:`tf_sparsesign.ops.packed_signs_vote`: one row
    at a time, in row order, float32, denormals flushed after every add."""
    m = tf.shape(rows)[0]
    checks = []
    if weights is None:
        w = tf.ones([m])
    else:
        checks.append(tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(weights)),
            ["packed_signs_vote: weights must be finite"]))
        w = _flush(weights)

    def add_row(r, tally):
        s = row_signs(rows[r], num_elements)
        return r + 1, _flush(tally + s * w[r])

    with tf.control_dependencies(checks):
        _, tally = tf.while_loop(lambda r, _: r < m, add_row,
                                 (tf.constant(0), tf.zeros([num_elements])))
    return tf.sign(tally)
