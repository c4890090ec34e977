"""combine/mean_values.py: the top-K-values baseline sums what was sent."""

import numpy as np
import tensorflow as tf

from fakes import dense
from tf_sparsesign.aggregation import registry


def test_sum_of_sent_values_per_index_in_row_order():
    rule = registry.load(registry.VALUES_COMBINER)(None, 2, "raise")
    codes = tf.constant([[2, 7, -1], [2, 4, 9]], tf.int32)
    values = tf.constant([[0.5, -1.0, 0.0], [0.25, 2.0, -3.0]])
    update, dropped = rule.combine(codes, values, 6)
    np.testing.assert_array_equal(dense(update, 6), [0, 0.75, 2.0, -1, -3, 0])
    np.testing.assert_array_equal(update.scores, np.abs(update.values))
    assert int(dropped) == 0 and not rule.learns
