"""codec/int32.py: wire format v1 as is (values as float32 bit patterns)."""

import numpy as np
import tensorflow as tf

from tf_sparsesign.aggregation.codec.int32 import Int32Codec


def test_codes_alone_are_the_message():
    codec = Int32Codec(100, 3, False)
    assert codec.words == 3 and codec.name == "int32"
    codes = tf.constant([3, 10, -1], tf.int32)
    words = codec.encode(codes, None)
    np.testing.assert_array_equal(words, codes)
    decoded = codec.decode(tf.stack([words, words]))
    np.testing.assert_array_equal(decoded.codes, [[3, 10, -1]] * 2)
    assert decoded.values is None and decoded.valid.numpy().all()


def test_values_ride_along_bit_for_bit():
    codec = Int32Codec(100, 2, True)
    assert codec.words == 4
    values = tf.constant([-0.0, 1e-30], tf.float32)
    words = codec.encode(tf.constant([1, 6], tf.int32), values)
    decoded = codec.decode(words[None])
    np.testing.assert_array_equal(decoded.codes, [[1, 6]])
    np.testing.assert_array_equal(
        tf.bitcast(decoded.values, tf.int32), [tf.bitcast(values, tf.int32)])
