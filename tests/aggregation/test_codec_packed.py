"""codec/packed_signs.py: one ternary digit per coordinate; invalid rows
raise naming the row, or abstain as built."""

import numpy as np
import pytest
import tensorflow as tf

from tf_sparsesign.aggregation.codec.packed_signs import PackedSignsCodec
from tf_sparsesign.reference.packed import row_signs


def test_codes_round_trip_through_the_digits():
    n = 23
    codec = PackedSignsCodec(n, n, False)
    assert codec.words == 2  # ceil(23 / 20)
    codes = tf.constant([1, 4, -1, 44], tf.int32)  # 0 -, 2 +, pad, 22 +
    words = codec.encode(codes, None)
    decoded = codec.decode(words[None])
    signs = row_signs(decoded.codes[0], n).numpy()
    want = np.zeros(n)
    want[[0, 2, 22]] = [-1, 1, 1]
    np.testing.assert_array_equal(signs, want)


def test_bad_rows_raise_or_abstain():
    n = 7
    good = PackedSignsCodec(n, n, False).encode(tf.constant([0], tf.int32),
                                                None)
    rows = tf.stack([good, tf.fill(tf.shape(good), -1)])  # bytes 255
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"row 1 \(of 2\) is not a valid message"):
        PackedSignsCodec(n, n, False, "raise").decode(rows)
    decoded = PackedSignsCodec(n, n, False, "drop").decode(rows)
    np.testing.assert_array_equal(decoded.valid, [True, False])


def test_a_digit_past_n_is_invalid():
    codec = PackedSignsCodec(3, 3, False, "drop")
    words = PackedSignsCodec(4, 4, False).encode(tf.constant([6], tf.int32),
                                                 None)
    assert not codec.decode(words[None]).valid.numpy()[0]
