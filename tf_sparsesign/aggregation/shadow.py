"""Shadow mode (``shadow=True``): train exactly as the dense baseline, and
watch what adopting the sparse vote would do.

Each step the dense SUM all-reduce trains (weights, slots and checkpoints
bit for bit those of ``dense=True``); beside it the sparse step runs as it
would (its own error-feedback memories and momentum, the real encode,
exchange and vote: the extra compute and traffic of shadow mode) and its
voted update is compared with the dense one, per replica, on every step:

* ``agreement`` — of the coordinates the vote moves, the share whose sign
  matches the dense step's (``-lr * vote`` against ``-lr * g``: the sign of
  the vote against the sign of the mean gradient ``g``);
* ``cosine`` — between the voted step and the dense step, over the whole
  model (``vote . g / (|vote| |g|)``);
* ``bytes_sent`` — what the sparse exchange sent (its real messages), next
  to the dense all-reduce's ``dense_bytes``.

The shadow's state (memories, momenta, its counters and these statistics)
is not tracked by the optimizer and not saved: a checkpoint taken in
shadow mode is the dense run's, and switching ``shadow`` off later starts
the sparse run with fresh memories.
"""

from __future__ import annotations

import tensorflow as tf

from .state import components

#: The statistics shadow mode keeps (the last step's, and sums).
STATS = ("agreement", "cosine", "steps")


class ShadowAggregator:
    """The dense aggregation trains; the sparse one is watched (see the
    module docstring).

    Args:
      dense: the :class:`.dense.DenseAggregator` whose result is applied.
      sparse: the :class:`.aggregator.Aggregator` run beside it, built with
        untracked state and per-variable gradients as its apply.
      stats: ``{name: variable}`` for :data:`STATS` (untracked, one value
        per replica).

    Attributes: those of :class:`.dense.DenseAggregator` (``layout``,
    ``state``, ``ks``, ``adversary``, ``accumulation``, ``owner``,
    ``routed_calls``), plus ``dense``, ``sparse`` and ``stats``.
    """

    def __init__(self, dense, sparse, stats: dict):
        self.dense = dense
        self.sparse = sparse
        self.stats = stats
        self.layout = dense.layout
        self.state = dense.state
        self.ks = sparse.ks
        self.adversary = dense.adversary
        self.accumulation = None
        self.owner = None
        self.routed_calls = 0

    def aggregate(self, grads_and_vars, active=None):
        """The dense all-reduce's pairs (what the optimizer applies); the
        sparse step runs and is compared on the way."""
        grads_and_vars = list(grads_and_vars)
        reduced = self.dense.aggregate(grads_and_vars)
        voted = self.sparse.aggregate(grads_and_vars)
        self._compare([g for g, _ in voted], [g for g, _ in reduced])
        return reduced

    def _compare(self, votes, grads) -> None:
        pairs = [(tf.reshape(tf.cast(v, tf.float32), [-1]),
                  tf.reshape(tf.cast(g, tf.float32), [-1]))
                 for v, g in zip(votes, grads)
                 if v is not None and g is not None]
        vote = tf.concat([v for v, _ in pairs], 0)
        grad = tf.concat([g for _, g in pairs], 0)
        moved = tf.reduce_sum(tf.cast(vote != 0, tf.float32))
        same = tf.reduce_sum(tf.cast((vote * grad) > 0, tf.float32))
        norm = tf.norm(vote) * tf.norm(grad)
        self.stats["agreement"].assign(
            tf.math.divide_no_nan(same, moved))
        self.stats["cosine"].assign(
            tf.math.divide_no_nan(tf.reduce_sum(vote * grad), norm))
        self.stats["steps"].assign_add(1.0)

    def extra_stats(self) -> dict:
        """The statistics (replica 0's) and the sparse step's bytes, as
        Python numbers: ``shadow_agreement``, ``shadow_cosine`` (the last
        step's), ``shadow_steps``, ``shadow_bytes_sent``,
        ``shadow_message_bytes`` (cumulative / last), and
        ``shadow_time_saved`` (seconds per step the time model predicts the
        sparse step would save)."""
        out = {f"shadow_{name}": float(components(var)[0].numpy())
               for name, var in self.stats.items()}
        counters = self.sparse.state.read_counters()
        out["shadow_steps"] = int(out["shadow_steps"])
        out["shadow_bytes_sent"] = counters["bytes_sent"]
        out["shadow_message_bytes"] = counters["message_bytes"]
        out["shadow_time_saved"] = self.sparse.time_saved
        out["time_saved"] = 0.0  # training is the dense step
        return out


class UntrackedFactory:
    """A state factory whose ``tracked`` variables are not tracked (the
    shadow's state is never saved)."""

    def __init__(self, factory):
        self.factory = factory

    def replica_local(self, reference, name: str):
        return self.factory.replica_local(reference, name)

    def tracked(self, name: str, shape=(), dtype="int64"):
        return self.factory.untracked(name, shape, dtype)

    def untracked(self, name: str, shape=(), dtype="int64"):
        return self.factory.untracked(name, shape, dtype)
