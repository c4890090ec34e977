"""The weighted vote (signSGD-FV, Park & Lee, ISIT 2024): each row's signs
count as much as that replica has been reliable."""

from __future__ import annotations

import tensorflow as tf

from ..state import tf_variable
from . import VOTE, votes_at

#: Upper bound of the reliability weight.
WEIGHT_MAX = 5.0


class WeightedVote:
    """``sign(sum_m w_m s_m)`` with ``w_m = clip(1 + log((a_m + 1) /
    (d_m + 1)), 0, 5)``, where ``a_m`` / ``d_m`` count how often row
    ``m``'s signs agreed / disagreed with past votes: 1 for every row at the
    start, 0 for a row that keeps contradicting the majority (a sign
    flipper), larger for reliable rows. The counts are identical on every
    replica (all compute them from the same gathered rows) and are saved
    with the optimizer."""

    learns = True

    def __init__(self, state, num_replicas: int, on_invalid: str = "raise"):
        self.vote = VOTE[on_invalid]
        self.agree = state.tracked("sparsesign_agree", (num_replicas,),
                                   "float32")
        self.disagree = state.tracked("sparsesign_disagree",
                                      (num_replicas,), "float32")

    def weights(self) -> tf.Tensor:
        """The current per-row weights, float32 ``[M]``."""
        llr = tf.math.log((tf_variable(self.agree) + 1.0) /
                          (tf_variable(self.disagree) + 1.0))
        return tf.clip_by_value(1.0 + llr, 0.0, WEIGHT_MAX)

    def combine(self, codes, values, num_elements: int):
        return self.vote(codes, num_elements, self.weights())

    def observe(self, codes, update) -> tf.Tensor:
        """``[2, M]``: each row's codes that agreed / disagreed with the
        vote."""
        sign = tf.cast(1 - 2 * (codes % 2), tf.float32)
        product = votes_at(update, codes) * sign
        return tf.stack([tf.reduce_sum(tf.cast(product > 0, tf.float32), 1),
                         tf.reduce_sum(tf.cast(product < 0, tf.float32), 1)])

    def apply(self, delta) -> None:
        self.agree.assign_add(delta[0])
        self.disagree.assign_add(delta[1])
