"""The majority and weighted votes, read straight from packed rows
(:mod:`..codec.packed_signs`) by :func:`tf_sparsesign.ops.packed_signs_vote`:
no ``[M, N]`` array of codes, and the votes of
:func:`tf_sparsesign.ops.majority_vote` over the same signs, bit for bit.
The vote is dense (every coordinate can get one), returned in sparse form
like every rule's."""

from __future__ import annotations

import tensorflow as tf

from ... import ops
from ...reference.packed import row_signs
from . import SparseUpdate, Stateless
from .weighted import WeightedVote


def _sparse(votes) -> SparseUpdate:
    indices = tf.cast(tf.reshape(tf.where(votes != 0), [-1]), tf.int32)
    values = tf.gather(votes, indices)
    return SparseUpdate(indices, values, tf.abs(values))


class PackedMajorityVote(Stateless):
    """:class:`~.majority.MajorityVote` over packed rows."""

    def combine(self, codes, values, num_elements: int):
        # The codec checked the rows; unusable ones are all -1 (abstain).
        return (_sparse(ops.packed_signs_vote(codes, num_elements)),
                tf.zeros([], tf.int32))


class PackedWeightedVote(WeightedVote):
    """:class:`~.weighted.WeightedVote` over packed rows (the same weights,
    reliability counts and saved state)."""

    def combine(self, codes, values, num_elements: int):
        votes = ops.packed_signs_vote(codes, num_elements, self.weights())
        return _sparse(votes), tf.zeros([], tf.int32)

    def observe(self, codes, update) -> tf.Tensor:
        """``[2, M]``: each row's signs that agreed / disagreed."""
        n = int(codes.shape[1]) * 20  # digits per packed row (>= N)
        votes = tf.scatter_nd(update.indices[:, None], update.values, [n])

        def counts(row):
            signs = row_signs(row, n)
            product = signs * votes[:tf.shape(signs)[0]]
            return (tf.reduce_sum(tf.cast(product > 0, tf.float32)),
                    tf.reduce_sum(tf.cast(product < 0, tf.float32)))

        agree, disagree = tf.map_fn(
            counts, codes, fn_output_signature=(tf.float32, tf.float32))
        return tf.stack([agree, disagree])
