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


class VoteAsUpdate:
    """The watched sparse step's :class:`~.interfaces.Apply`: writes
    nothing and hands the vote back as it is, sparse (global indices and
    values), as the one pair ``(update, None)``."""

    def __init__(self, layout):
        self.layout = layout

    def host_step(self, update, present) -> None:
        """Nothing to do once per host."""

    def gradients(self, update, present, grads_and_vars) -> list:
        return [(update, None)]


class ShadowAggregator:
    """The dense aggregation trains; the sparse one is watched (see the
    module docstring).

    Args:
      dense: the :class:`.dense.DenseAggregator` whose result is applied.
      sparse: the :class:`.aggregator.Aggregator` run beside it, built with
        untracked state and :class:`VoteAsUpdate` as its apply.
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
        (update, _), = self.sparse.aggregate(grads_and_vars)
        self._compare(update, [g for g, _ in reduced])
        return reduced

    def _compare(self, update, grads) -> None:
        """The statistics from the vote's touched coordinates (gathered
        from the dense step; one pass over N, for its norm)."""
        grad = tf.concat(
            [tf.zeros([n], tf.float32) if g is None else
             tf.reshape(tf.cast(g, tf.float32), [-1])
             for g, n in zip(grads, self.layout.sizes)], 0)
        vote = tf.cast(update.values, tf.float32)
        dense = tf.gather(grad, update.indices)
        moved = tf.reduce_sum(tf.cast(vote != 0, tf.float32))
        same = tf.reduce_sum(tf.cast((vote * dense) > 0, tf.float32))
        norm = tf.norm(vote) * tf.norm(grad)
        self.stats["agreement"].assign(
            tf.math.divide_no_nan(same, moved))
        self.stats["cosine"].assign(
            tf.math.divide_no_nan(tf.reduce_sum(vote * dense), norm))
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
