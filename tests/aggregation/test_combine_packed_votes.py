"""combine/packed_votes.py: the majority and weighted votes read straight
from packed rows equal the votes of the same signs as codes."""

import numpy as np
import tensorflow as tf

from fakes import codes_from_signs, dense, rule
from tf_sparsesign.aggregation import registry
from tf_sparsesign.aggregation.codec.packed_signs import PackedSignsCodec


def test_packed_votes_equal_the_code_votes():
    rng = np.random.default_rng(2)
    n, m = 45, 5
    signs = rng.choice([-1, 0, 1], (m, n))
    codes = codes_from_signs(signs)
    codec = PackedSignsCodec(n, n, False)
    rows = tf.stack([codec.encode(tf.constant(c), None) for c in codes])
    for name in ("plain", "weighted"):
        packed = rule(name, m, table=registry.PACKED_VOTES)
        plain = rule(name, m)
        got, _ = packed.combine(rows, None, n)
        want, _ = plain.combine(tf.constant(codes), None, n)
        np.testing.assert_array_equal(dense(got, n), dense(want, n))
    weighted = rule("weighted", m, table=registry.PACKED_VOTES)
    update, _ = weighted.combine(rows, None, n)
    np.testing.assert_array_equal(
        weighted.observe(rows, update),
        rule("weighted", m).observe(tf.constant(codes), update))
