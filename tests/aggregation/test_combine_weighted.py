"""combine/weighted.py: the deprecated weighted vote learns from the votes
through observe/apply (summed over shards)."""

import numpy as np
import tensorflow as tf

from fakes import codes_from_signs, dense, rule


def test_weights_follow_agreement_and_disagreement():
    r = rule("weighted", 3)
    assert r.learns
    np.testing.assert_array_equal(r.weights(), [1, 1, 1])
    codes = tf.constant(codes_from_signs([[1, 1], [1, 1], [-1, -1]]))
    update, _ = r.combine(codes, None, 2)
    np.testing.assert_array_equal(dense(update, 2), [1, 1])
    delta = r.observe(codes, update)
    np.testing.assert_array_equal(delta, [[2, 2, 0], [0, 0, 2]])
    r.apply(delta)
    w = r.weights().numpy()
    np.testing.assert_allclose(w, [1 + np.log(3), 1 + np.log(3),
                                   max(0, 1 + np.log(1 / 3))], rtol=1e-6)
