"""Pure-TensorFlow reference implementations of the two ops.

Same results as the compiled ops, bit for bit (tests prove it); used as the
fallback when the compiled library is unavailable, and as the readable
statement of the semantics. They run anywhere TensorFlow runs (CPU or GPU,
eager or inside ``tf.function``) but are slower: encoding sorts with
``tf.math.top_k`` (which puts the lower index first among equal values).
"""

from __future__ import annotations

import tensorflow as tf

from ..constants import MAX_ELEMENTS, PAD_CODE


def sparse_sign_encode(x: tf.Tensor, k: int, return_residual: bool = False):
    """Reference for :func:`tf_sparsesign.ops.sparse_sign_encode`.

    Args and results as there; ``k`` must already be a validated int.
    """
    x = tf.convert_to_tensor(x)
    flat = tf.reshape(x, [-1])
    n = tf.size(flat, out_type=tf.int64)
    is_nan = tf.math.is_nan(flat)
    checks = [
        tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(is_nan)),
            [tf.strings.format(
                "sparse_sign_encode: input contains NaN (first at flat index "
                "{} of {}); NaN has no magnitude order, fix the gradient "
                "before encoding",
                (tf.argmax(tf.cast(is_nan, tf.int32), output_type=tf.int64),
                 n))]),
        tf.debugging.Assert(
            n < MAX_ELEMENTS,
            [tf.strings.format("sparse_sign_encode: input has {} elements; "
                               "the limit is 2**30 - 1 (int32 codes)", n)]),
        tf.debugging.Assert(
            k <= n,
            [tf.strings.format("sparse_sign_encode: k must satisfy 0 <= k <= "
                               "N = {}, got k = {}", (n, k))]),
    ]
    with tf.control_dependencies(checks):
        mag = tf.abs(flat)
        if mag.dtype in (tf.float16, tf.bfloat16):
            mag = tf.cast(mag, tf.float32)  # exact; top_k wants 32/64 bits
        values, index = tf.math.top_k(mag, k=k, sorted=True)
    nonzero = tf.reduce_sum(tf.cast(values > 0, tf.int32))
    chosen = tf.sort(index[:nonzero])
    negative = tf.cast(tf.gather(flat, chosen) < 0, tf.int32)
    codes = tf.concat(
        [chosen * 2 + negative, tf.fill([k - nonzero], PAD_CODE)], axis=0)
    codes = tf.ensure_shape(codes, [k])
    if not return_residual:
        return codes
    residual = tf.tensor_scatter_nd_update(
        flat, chosen[:, None], tf.zeros_like(chosen, dtype=flat.dtype))
    return codes, tf.reshape(residual, tf.shape(x))


def _row_problems(codes: tf.Tensor, num_elements: int):
    """Per row: is it invalid, and the first offending position in it."""
    k = tf.shape(codes)[1]
    pad = tf.equal(codes, PAD_CODE)
    index = tf.bitwise.right_shift(codes, 1)
    bad = (codes < PAD_CODE) | (~pad & (index >= num_elements))
    # Strictly increasing among non-padding codes: move them to the front
    # (stable), compare neighbours, map violations back to positions.
    order = tf.argsort(tf.cast(pad, tf.int32), axis=1, stable=True)
    packed = tf.gather(index, order, batch_dims=1)
    live = tf.reduce_sum(tf.cast(~pad, tf.int32), axis=1, keepdims=True)
    j = tf.range(1, tf.maximum(k, 1))[None, :]
    not_up = (j < live) & (packed[:, 1:] <= packed[:, :-1])
    at = tf.where(not_up, order[:, 1:], k)  # original position or k
    first_not_up = tf.reduce_min(
        tf.concat([at, tf.fill([tf.shape(codes)[0], 1], k)], axis=1), axis=1)
    pos = tf.range(k)[None, :]
    first_bad = tf.reduce_min(tf.where(bad, pos, k), axis=1)
    first = tf.minimum(first_bad, first_not_up)
    return first < k, first


def invalid_rows(codes: tf.Tensor, num_elements: int) -> tf.Tensor:
    """bool ``[M]``: the rows :func:`majority_vote` rejects (a code below
    -1, an index ``>= num_elements``, indices not strictly increasing)."""
    return _row_problems(tf.convert_to_tensor(codes, tf.int32),
                         num_elements)[0]


TINY = 1.17549435e-38  # smallest normal float32


def _flush_denormals(x):
    """Float32 denormals count as zero (weights and partial sums), so the
    result does not depend on the CPU's flush-to-zero mode."""
    return tf.where(tf.abs(x) < TINY, tf.zeros_like(x), x)


def majority_vote(codes: tf.Tensor, num_elements: int, weights=None,
                  on_invalid: str = "raise", return_tally: bool = False):
    """Reference for :func:`tf_sparsesign.ops.majority_vote`.

    Returns ``(votes, num_dropped)``; the public wrapper decides what to
    return. Rows are added in order in float32, as the compiled op does.
    """
    codes = tf.convert_to_tensor(codes, dtype=tf.int32)
    m = tf.shape(codes)[0]
    invalid, first = _row_problems(codes, num_elements)
    checks = []
    if weights is not None:
        weights = tf.convert_to_tensor(weights, dtype=tf.float32)
        checks.append(tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(weights)),
            ["majority_vote: weights must be finite"]))
    else:
        weights = tf.ones([m], tf.float32)
    if on_invalid == "raise":
        # Padding with a dummy row and column keeps the gathers in bounds
        # when nothing is invalid (or M or k is 0).
        row = tf.reduce_min(
            tf.concat([tf.where(invalid, tf.range(m), m), [m]], 0))
        pos = tf.gather(tf.concat([first, [0]], 0), row)
        padded = tf.pad(codes, [[0, 1], [0, 1]])
        code = tf.gather_nd(padded, tf.stack([row, pos]))
        checks.append(tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(invalid)),
            [tf.strings.format(
                "majority_vote: row {} (of {}) is invalid: code {} at "
                "position {} breaks the rules (codes are -1 or "
                "(index << 1) | sign with 0 <= index < {} strictly "
                "increasing along the row)",
                (row, m, code, pos, num_elements))]))
    with tf.control_dependencies(checks):
        live = ~invalid[:, None] & tf.not_equal(codes, PAD_CODE)
    index = tf.where(live, tf.bitwise.right_shift(codes, 1), 0)
    negative = tf.equal(tf.bitwise.bitwise_and(codes, 1), 1)
    w = _flush_denormals(weights)[:, None]
    contrib = tf.where(live, tf.where(negative, -w, w), 0.0)

    def add_row(r, tally):  # one row at a time: float32 sums in row order
        tally = tf.tensor_scatter_nd_add(tally, index[r][:, None], contrib[r])
        return r + 1, _flush_denormals(tally)

    _, tally = tf.while_loop(lambda r, _: r < m, add_row,
                             (tf.constant(0), tf.zeros([num_elements])))
    dropped = tf.reduce_sum(tf.cast(invalid, tf.int32))
    return (tally if return_tally else tf.sign(tally)), dropped


def accumulate_encode(memory: tf.Variable, gradient: tf.Tensor, k: int):
    """Reference for :func:`tf_sparsesign.ops.accumulate_encode`: the three
    steps it fuses. Returns ``(codes, values)``."""
    total = memory + gradient
    codes, residual = sparse_sign_encode(total, k, True)
    memory.assign(residual)
    return codes, selected_values(total, codes)


def selected_values(x: tf.Tensor, codes: tf.Tensor) -> tf.Tensor:
    """``x`` at each code's index (0 in padding slots), in ``x``'s dtype."""
    sent = tf.gather(tf.reshape(x, [-1]), tf.maximum(codes, 0) // 2)
    return tf.where(codes >= 0, sent, tf.zeros_like(sent))


def sparse_majority_vote(codes: tf.Tensor, num_elements: int, weights=None,
                         on_invalid: str = "raise"):
    """Reference for :func:`tf_sparsesign.ops.sparse_majority_vote`:
    the dense tally's nonzero entries. Returns ``(indices, tallies,
    dropped)``."""
    tally, dropped = majority_vote(codes, num_elements, weights, on_invalid,
                                   return_tally=True)
    indices = tf.cast(tf.reshape(tf.where(tally != 0), [-1]), tf.int32)
    return indices, tf.gather(tally, indices), dropped
