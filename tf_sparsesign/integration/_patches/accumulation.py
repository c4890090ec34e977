"""Keras 3 ``gradient_accumulation_steps`` for optimizers that vote.

Keras' own ``_backend_apply_gradients`` puts the whole update step (the
aggregation's ``merge_call`` included) in a ``cond`` branch, which fails
(``merge_call called while defining a new graph``) under our strategies
and under a plain ``MirroredStrategy`` alike. For a voting optimizer this
replaces it: every micro-step each replica adds its gradient into its own
accumulators (no collective); the A-th sends the mean, clipped as Keras
clips it, through the vote (:meth:`Aggregator.aggregate` with ``active``:
the conditional parts hold no ``merge_call``); then, once per host in
cross-replica context, a ``cond`` applies Keras' decoupled weight decay and
the optimizer's own update step on that micro-step only. Private Keras
names used here: ``_iterations``, ``_clip_gradients``,
``_use_weight_decay``, ``_distributed_tf_update_step`` (checked with the
other targets at install).
"""

from __future__ import annotations

import tensorflow as tf

#: The optimizer attributes this module needs (checked at install).
NEEDED = ("_iterations", "_clip_gradients", "_use_weight_decay",
          "_distributed_tf_update_step")


def apply(optimizer, agg, grads, variables) -> None:
    """One micro-step of a voting optimizer with gradient accumulation (in
    replica context; Keras increments ``_iterations`` after it)."""
    import keras

    steps = optimizer.gradient_accumulation_steps
    active = tf.equal((optimizer._iterations + 1) % steps, 0)
    tf_vars = [v.value if isinstance(v, keras.Variable) else v
               for v in variables]
    indices = [agg.layout.index_of(v) for v in tf_vars]
    means = optimizer._clip_gradients(
        agg.accumulation.mean(grads, indices, active))
    ctx = tf.distribute.get_replica_context()
    # As Keras orders it: weight decay, then the step (the vote's own apply
    # or the optimizer's update), on the micro-steps that send only.
    ctx.merge_call(lambda strategy, active: _when(
        strategy, active, lambda: _decay(strategy, optimizer, tf_vars)),
        args=(active,))
    voted = agg.aggregate(list(zip(means, tf_vars)), active=active)
    agg.routed_calls += 1
    ctx.merge_call(lambda strategy, voted, active: _when(
        strategy, active, lambda: optimizer._distributed_tf_update_step(
            strategy, voted, optimizer.learning_rate)),
        args=(voted, active))


def _when(strategy, active, fn) -> None:
    """Cross-replica context: ``fn()`` on the micro-steps that send."""
    tf.cond(strategy.experimental_local_results(active)[0],
            lambda: fn() and None, lambda: None)


def _decay(strategy, optimizer, variables) -> None:
    """Keras' decoupled weight decay (``TFOptimizer._apply_weight_decay``
    without its ``merge_call``: we are in cross-replica context already)."""
    if optimizer.weight_decay is None:
        return

    def decay(variable):
        if optimizer._use_weight_decay(variable):
            lr = tf.cast(optimizer.learning_rate, variable.dtype)
            wd = tf.cast(optimizer.weight_decay, variable.dtype)
            variable.assign_sub(variable * wd * lr)

    for variable in variables:
        strategy.extended.update(variable, decay, group=False)
