"""codec/rice.py: Rice-coded gaps and signs, padded to the worst case; an
undecodable row raises or abstains as built."""

import numpy as np
import pytest
import tensorflow as tf

from fakes import random_codes
from tf_sparsesign import policy
from tf_sparsesign.aggregation.codec.rice import RiceCodec


def test_round_trip_at_the_policy_length():
    rng = np.random.default_rng(0)
    n, k = 10_000, 100
    codec = RiceCodec(n, k, False)
    assert codec.words == policy.rice_max_words(n, k)
    rows = [random_codes(rng, n, k) for _ in range(3)]
    rows[2][-5:] = -1  # a short message pads like the others
    rows[2][:-5] = np.sort(rows[2][:-5])
    words = tf.stack([codec.encode(tf.constant(r), None) for r in rows])
    assert words.shape == (3, codec.words)
    decoded = codec.decode(words)
    np.testing.assert_array_equal(decoded.codes, np.stack(rows))
    assert decoded.valid.numpy().all()


def test_undecodable_rows_raise_or_abstain():
    n, k = 1000, 10
    good = RiceCodec(n, k, False).encode(
        tf.constant(random_codes(np.random.default_rng(1), n, k)), None)
    bad = tf.fill(tf.shape(good), -1)
    rows = tf.stack([good, bad])
    with pytest.raises(tf.errors.InvalidArgumentError):
        RiceCodec(n, k, False, "raise").decode(rows)
    decoded = RiceCodec(n, k, False, "drop").decode(rows)
    np.testing.assert_array_equal(decoded.valid, [True, False])


def test_values_are_refused():
    with pytest.raises(ValueError, match="not values"):
        RiceCodec(10, 2, True)
