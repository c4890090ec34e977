"""Step scaling by vote agreement (pilot): ``update_i *= |sum_m s_mi| /
n_i`` with ``n_i`` the rows that sent coordinate ``i`` (plain counts)."""

from __future__ import annotations

import tensorflow as tf

from . import row_signs


class NoScale:
    def __init__(self, num_elements: int):
        pass

    def __call__(self, update, codes):
        return update


class AgreementScale:
    def __init__(self, num_elements: int):
        self.num_elements = int(num_elements)

    def __call__(self, update, codes):
        live, index, sign = row_signs(codes, self.num_elements)
        at = tf.reshape(index, [-1, 1])
        plus = tf.reshape(tf.cast(live, tf.int32) * tf.cast(sign, tf.int32),
                          [-1])
        zeros = tf.zeros([self.num_elements], tf.int32)
        tally = tf.tensor_scatter_nd_add(zeros, at, plus)
        count = tf.tensor_scatter_nd_add(zeros, at,
                                         tf.reshape(tf.cast(live, tf.int32),
                                                    [-1]))
        frac = tf.cast(tf.abs(tally), tf.float32) / tf.cast(
            tf.maximum(count, 1), tf.float32)
        return update * frac
