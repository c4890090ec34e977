"""The top-K-values baseline's combine: the sum of the values every replica
sent (zeros elsewhere). Like the dense path's SUM this is the mean
gradient, since Keras already divides each replica's loss by the number of
replicas."""

from __future__ import annotations

import tensorflow as tf


class MeanOfValues:
    """Scatter-adds every live code's value into the global space."""

    def __init__(self, state, num_replicas: int, num_elements: int):
        self.num_elements = int(num_elements)

    def combine(self, codes, values, on_invalid: str):
        live = codes >= 0
        index = tf.boolean_mask(codes, live) // 2
        total = tf.tensor_scatter_nd_add(
            tf.zeros([self.num_elements]), index[:, None],
            tf.boolean_mask(values, live))
        return total, tf.zeros([], tf.int32)
