"""An FD-style defense (after signSGD-FD, Park & Lee, ICML 2024: decode the
gradient signs with per-worker reliability weights that may go negative,
so an adversary's signs are used, turned around, instead of discarded).

Model: each worker's sign of a coordinate goes through a binary symmetric
channel, right with probability ``(1 + r_m) / 2``. Two workers' signs on
the coordinates both sent then correlate by ``rho_mj = r_m r_j``, which
needs no reference vote: with sparse messages a worker is often the only
one to send a coordinate, so agreement with the vote says little, and
agreement with the others' majority is pulled down by the adversaries in
it. Each worker's ``r_m`` is read from its correlations with the others,
weighted by their own current estimates (a few rounds of a clipped power
iteration), relative to the median worker's (honest workers are the
majority), and clipped so that no worker counts more than a typical honest
one: a consistent sign flipper gets weight -1 (its flipped signs count the
right way), a worker sending random signs about 0, an honest worker 1.
"""

from __future__ import annotations

import math

import tensorflow as tf

from ..state import tf_variable
from . import LIVE, Stateless, row_signs

#: Steps voted plainly (weights 1) before the correlations are used.
WARMUP_STEPS = 20
#: Correlations are computed on at most about ``SAMPLE_BUDGET / M**2``
#: coordinates (every ``stride``-th one), so a step costs ``O(M**2 * B)``.
SAMPLE_BUDGET = 2 ** 22
#: Rounds of the weighted score (a clipped power iteration).
ROUNDS = 4
#: Weights are rounded to multiples of this, so that every replica (and
#: every host) votes with exactly the same weights.
QUANTUM = 2.0 ** -10


class FederatedDefense(Stateless):
    """``sign(sum_m w_m s_m)``. With ``rho_mj`` the correlation of rows
    ``m`` and ``j``'s signs on the coordinates both sent (summed over all
    steps so far; ``rho_mm = 0``), start from ``w = 1`` and repeat
    :data:`ROUNDS` times: ``score_m = sum_j rho_mj w_j``, ``s =
    median_m score_m``, ``w_m = clip(score_m / s, -1, 1)`` (divided by 1
    while ``s <= 0``). The weights are rounded to multiples of
    :data:`QUANTUM`; they are 1 for every row while the last ``s <= 0``
    and during the first :data:`WARMUP_STEPS` steps. Correlations use
    every :func:`stride`-th coordinate (all of them for small models).

    Needs every row of every coordinate: all-gather exchange, codes (not
    packed rows), see
    :func:`tf_sparsesign.aggregation.registry.check_vote`.

    State (saved with the optimizer): the ``[M, M]`` sums of sign
    products and of shared coordinates (float64, exact integers) and a
    step counter, identical on every replica.
    """

    # It learns inside :meth:`combine`, from every row at once (which is
    # why it needs the all-gather), not through observe/apply.
    learns = False

    def __init__(self, state, num_replicas: int, on_invalid: str = "raise"):
        super().__init__(state, num_replicas, on_invalid)
        self.live = LIVE[on_invalid]
        m = int(num_replicas)
        # The rows' count: across workers the gathered codes' first
        # dimension is not known while the step is traced.
        self.num_replicas = m
        self.products = state.tracked("sparsesign_fd_products", (m, m),
                                      "float64")
        self.shared = state.tracked("sparsesign_fd_shared", (m, m),
                                    "float64")
        self.steps = state.tracked("sparsesign_fd_steps", (), "int64")

    def weights(self) -> tf.Tensor:
        """The current per-row weights, float32 ``[M]``."""
        products = tf_variable(self.products)
        shared = tf_variable(self.shared)
        m = tf.shape(products)[0]
        rho = tf.linalg.set_diag(products / tf.maximum(shared, 1.0),
                                 tf.zeros([m], tf.float64))
        w = tf.ones([m], tf.float64)
        for _ in range(ROUNDS):
            score = tf.reduce_sum(rho * w[None, :], 1)
            typical = _median(score[None, :])[0]
            w = tf.clip_by_value(
                score / tf.where(typical > 0, typical, 1.0), -1.0, 1.0)
        w = tf.round(w / QUANTUM) * QUANTUM
        use = (typical > 0) & (tf_variable(self.steps) >= WARMUP_STEPS)
        return tf.cast(tf.where(use, w, tf.ones_like(w)), tf.float32)

    def combine(self, codes, values, num_elements: int):
        """The weighted vote of this step's rows (weights from the steps
        before), then this step's correlations added to the state."""
        update, dropped = self.vote(codes, num_elements, self.weights())
        products, shared = self.correlate(codes, num_elements)
        with tf.control_dependencies([update.indices]):  # a failed vote
            self.products.assign_add(products)           # adds none
            self.shared.assign_add(shared)
            self.steps.assign_add(tf.constant(1, tf.int64))
        return update, dropped

    def correlate(self, codes, num_elements: int):
        """This step's ``[M, M]`` sums of sign products and counts of
        shared coordinates (float64; exact) over every
        :func:`stride`-th coordinate; rows the vote rejects count for
        nothing."""
        step = stride(num_elements, self.num_replicas)
        width = -(-int(num_elements) // step)
        live, index, sign = row_signs(codes, num_elements, self.live)
        kept = live & (index % step == 0)
        rows = tf.broadcast_to(tf.range(tf.shape(codes)[0])[:, None],
                               tf.shape(codes))
        at = tf.stack([tf.boolean_mask(rows, kept),
                       tf.boolean_mask(index // step, kept)], 1)
        m = tf.shape(codes)[0]
        signs = tf.scatter_nd(at, tf.boolean_mask(sign, kept),
                              tf.stack([m, width]))
        sent = tf.abs(signs)
        products = tf.matmul(signs, signs, transpose_b=True)
        shared = tf.matmul(sent, sent, transpose_b=True)
        return tf.cast(products, tf.float64), tf.cast(shared, tf.float64)


def stride(num_elements: int, num_replicas: int) -> int:
    """Every how many coordinates the correlations read:
    ``ceil(N * M**2 / SAMPLE_BUDGET)``, at least 1 (all of them for small
    models)."""
    return max(1, math.ceil(int(num_elements) * int(num_replicas) ** 2 /
                            SAMPLE_BUDGET))


def _median(x):
    """Median of each row of ``x`` (mean of the two middle values)."""
    n = tf.shape(x)[1]
    s = tf.sort(x, axis=1)
    return 0.5 * (tf.gather(s, (n - 1) // 2, axis=1) +
                  tf.gather(s, n // 2, axis=1))
