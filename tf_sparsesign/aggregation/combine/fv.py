"""signSGD-FV (Park, Poor & Lee, ISIT 2024), with the weights the authors'
code computes (chanho26/SignSGD_Codec, ``train_signSGD_FV.py``,
``calc_weight``): each row's sign-error probability ``p_m`` is estimated
from how often its signs agreed with past votes, and the row votes with
the log-likelihood ratio ``log((1 - p_m) / p_m)``, clipped to
``[-10, 10]``. The weight goes negative for a row that is wrong more often
than right, so a consistent sign flipper's signs are turned around and
count for the vote instead of against it."""

from __future__ import annotations

import tensorflow as tf

from ..state import tf_variable
from . import clipped_llr, row_signs, vote

#: The authors' ``max_LLR`` (weight clipping).
MAX_LLR = 10.0
#: The authors' ``T_in``: the first steps vote plainly (weights 1) while
#: the counts accumulate.
WARMUP_STEPS = 100
#: The authors' ``eps`` in ``log((q + eps) / (1 - q + eps))``.
EPS = 1e-5


class FederatedVote:
    """``sign(sum_m w_m s_m)`` with ``w_m = 1`` for the first
    :data:`WARMUP_STEPS` steps, then ``w_m = clip(log((q_m + eps) / (1 -
    q_m + eps)), -10, 10)`` where ``q_m = right_m / sent_m = 1 - p_m``:
    ``sent_m`` counts the signs row ``m`` sent, ``right_m`` those equal to
    the step's final vote (a tie counts as wrong, as in the authors' code).

    Per row, not per coordinate as in the authors' simulation (which keeps
    ``M x N`` counts): the state is two float32 ``[M]`` vectors and a step
    counter, identical on every replica (all compute them from the same
    gathered rows and the same vote) and saved with the optimizer.
    """

    def __init__(self, state, num_replicas: int, num_elements: int):
        self.num_elements = int(num_elements)
        self.right = state.tracked("sparsesign_fv_right", (num_replicas,),
                                   "float32")
        self.sent = state.tracked("sparsesign_fv_sent", (num_replicas,),
                                  "float32")
        self.steps = state.tracked("sparsesign_fv_steps", (), "int64")

    def weights(self) -> tf.Tensor:
        """The current per-row weights, float32 ``[M]``."""
        right, sent = tf_variable(self.right), tf_variable(self.sent)
        q = right / (sent + EPS)
        llr = clipped_llr(q, 1.0 - q, MAX_LLR, EPS)
        warm = tf_variable(self.steps) < WARMUP_STEPS
        return tf.where(warm, tf.ones_like(llr), llr)

    def combine(self, codes, values, on_invalid: str):
        votes, dropped = vote(codes, self.num_elements, self.weights(),
                              on_invalid)
        live, index, sign = row_signs(codes, self.num_elements)
        agrees = live & (tf.gather(votes, index) * sign > 0)
        self.right.assign_add(tf.reduce_sum(tf.cast(agrees, tf.float32), 1))
        self.sent.assign_add(tf.reduce_sum(tf.cast(live, tf.float32), 1))
        self.steps.assign_add(tf.constant(1, tf.int64))
        return votes, dropped
