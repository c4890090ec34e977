"""The top-K-values baseline's combine: the sum of the values every replica
sent (zeros elsewhere). Like the dense path's SUM this is the mean
gradient, since Keras already divides each replica's loss by the number of
replicas."""

from __future__ import annotations

import tensorflow as tf

from . import SparseUpdate, Stateless


class MeanOfValues(Stateless):
    """Sums every live code's value per index (in row order, as a scatter
    add into zeros would)."""

    def combine(self, codes, values, num_elements: int):
        live = codes >= 0
        index = tf.boolean_mask(codes, live) // 2
        sent = tf.boolean_mask(values, live)
        order = tf.argsort(index, stable=True)  # equal indices keep row order
        index, sent = tf.gather(index, order), tf.gather(sent, order)
        unique, segment = tf.unique(index)
        total = tf.math.segment_sum(sent, segment)
        return (SparseUpdate(unique, total, tf.abs(total)),
                tf.zeros([], tf.int32))
