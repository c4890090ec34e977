"""The majority and weighted votes, read straight from packed rows
(:mod:`..codec.packed_signs`) by :func:`tf_sparsesign.ops.packed_signs_vote`:
no ``[M, N]`` array of codes, and the votes of
:func:`tf_sparsesign.ops.majority_vote` over the same signs, bit for bit."""

from __future__ import annotations

import tensorflow as tf

from ... import ops
from ...reference.packed import row_signs
from .weighted import WeightedVote


class PackedMajorityVote:
    """:class:`~.majority.MajorityVote` over packed rows."""

    def __init__(self, state, num_replicas: int, num_elements: int):
        self.num_elements = int(num_elements)

    def combine(self, codes, values, on_invalid: str):
        # The codec checked the rows; unusable ones are all -1 (abstain).
        return (ops.packed_signs_vote(codes, self.num_elements),
                tf.zeros([], tf.int32))


class PackedWeightedVote(WeightedVote):
    """:class:`~.weighted.WeightedVote` over packed rows (the same weights,
    reliability counts and saved state)."""

    def combine(self, codes, values, on_invalid: str):
        votes = ops.packed_signs_vote(codes, self.num_elements,
                                      self.weights())
        self._update_reliability(codes, votes)
        return votes, tf.zeros([], tf.int32)

    def _update_reliability(self, codes, votes):
        def counts(row):
            product = row_signs(row, self.num_elements) * votes
            return (tf.reduce_sum(tf.cast(product > 0, tf.float32)),
                    tf.reduce_sum(tf.cast(product < 0, tf.float32)))

        agree, disagree = tf.map_fn(
            counts, codes, fn_output_signature=(tf.float32, tf.float32))
        self.agree.assign_add(agree)
        self.disagree.assign_add(disagree)
