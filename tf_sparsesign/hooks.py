"""Guarded overrides that route Keras gradient aggregation through the vote.

Keras 3 aggregates gradients in exactly one place,
``TFOptimizer._all_reduce_sum_gradients`` (a dense SUM all-reduce, called in
replica context). :func:`install` replaces it with a version that defers to
the optimizer's :class:`~tf_sparsesign.collective.SignVoteAggregator` when it
has one and otherwise behaves exactly as before; SyncBatchNorm and metric
reductions go elsewhere and stay dense. Optimizers get an aggregator when
built under a sparse-sign strategy, or from :class:`SparseSignOptimizer`.

Also installed: ``jit_compile=True`` falls back (with a warning) for models
whose optimizer votes, since the custom ops have no XLA kernels.
"""

from __future__ import annotations

import functools
import threading
import warnings

_lock = threading.Lock()
_installed = False

AGGREGATOR_ATTR = "_sparsesign_aggregator"


def aggregator_of(optimizer):
    """The aggregator that votes for ``optimizer`` (or its inner one)."""
    for opt in (optimizer, getattr(optimizer, "inner_optimizer", None)):
        agg = getattr(opt, AGGREGATOR_ATTR, None) if opt is not None else None
        if agg is not None:
            return agg
    return None


def set_aggregator(optimizer, aggregator) -> None:
    # object.__setattr__: keep Keras' automatic tracking out of it; the
    # variables are tracked by the optimizer that created them.
    object.__setattr__(optimizer, AGGREGATOR_ATTR, aggregator)


def _sparse_strategy(optimizer):
    import tensorflow as tf

    from .strategy import is_sparse_sign_strategy

    for s in (getattr(optimizer, "_distribution_strategy", None),
              tf.distribute.get_strategy()):
        if s is not None and is_sparse_sign_strategy(s):
            return s
    return None


def install() -> None:
    """Installs the overrides once per process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        from keras.src.backend.tensorflow import optimizer as tf_optimizer
        from keras.src.backend.tensorflow import trainer as tf_trainer
        from keras.src.optimizers import base_optimizer

        from .collective import SignVoteAggregator

        original_build = base_optimizer.BaseOptimizer.build
        original_reduce = tf_optimizer.TFOptimizer._all_reduce_sum_gradients
        original_make_train = tf_trainer.TensorFlowTrainer.make_train_function
        original_apply = base_optimizer.BaseOptimizer._backend_apply_gradients
        original_save = base_optimizer.BaseOptimizer.save_own_variables
        original_load = base_optimizer.BaseOptimizer.load_own_variables
        from . import state

        @functools.wraps(original_build)
        def build(self, variables):
            original_build(self, variables)
            # Wrappers (SparseSignOptimizer, LossScaleOptimizer) delegate to
            # their inner optimizer, which gets the aggregator instead.
            if (getattr(self, AGGREGATOR_ATTR, None) is not None or
                    hasattr(self, "inner_optimizer")):
                return
            strategy = _sparse_strategy(self)
            if strategy is not None:
                set_aggregator(self, SignVoteAggregator(
                    self, variables, strategy.sparse_sign_config,
                    strategy.num_replicas_in_sync))

        @functools.wraps(original_reduce)
        def all_reduce_sum_gradients(self, grads_and_vars):
            agg = getattr(self, AGGREGATOR_ATTR, None)
            if agg is None:
                return original_reduce(self, grads_and_vars)
            return agg.aggregate(grads_and_vars)

        @functools.wraps(original_make_train)
        def make_train_function(self, force=False):
            if (self.jit_compile and getattr(self, "optimizer", None) is not
                    None and (aggregator_of(self.optimizer) is not None or
                              _sparse_strategy(self.optimizer) is not None)):
                warnings.warn(
                    "tf_sparsesign: jit_compile=True is not supported with "
                    "the sparse-sign vote (its ops have no XLA kernels, and "
                    "XLA fails for multi-replica CPU training upstream even "
                    "for dense all-reduce). Proceeding with "
                    "jit_compile=False.", UserWarning, stacklevel=2)
                self.jit_compile = False
            return original_make_train(self, force)

        def owned_aggregator(opt):
            agg = aggregator_of(opt)
            return agg if agg is not None and agg.owner is opt else None

        @functools.wraps(original_save)
        def save_own_variables(self, store):
            original_save(self, store)
            agg = owned_aggregator(self)
            if agg is not None:
                state.save_to_store(agg, store)

        @functools.wraps(original_load)
        def load_own_variables(self, store):
            agg = owned_aggregator(self)
            if agg is None:
                return original_load(self, store)
            original_load(self, state.without_our_keys(store))
            state.load_from_store(agg, store)

        @functools.wraps(original_apply)
        def backend_apply_gradients(self, grads, trainable_variables):
            if getattr(self, AGGREGATOR_ATTR, None) is None:
                return original_apply(self, grads, trainable_variables)
            # NaN/Inf in any gradient: fail naming the variable, before any
            # weight, slot or error-feedback memory is written.
            checked = [_check_finite(g, v)
                       for g, v in zip(grads, trainable_variables)]
            import tensorflow as tf

            with tf.control_dependencies(
                    [_values(g) for g in checked if g is not None]):
                return original_apply(self, checked, trainable_variables)

        base_optimizer.BaseOptimizer._backend_apply_gradients = (
            backend_apply_gradients)
        base_optimizer.BaseOptimizer.save_own_variables = save_own_variables
        base_optimizer.BaseOptimizer.load_own_variables = load_own_variables
        base_optimizer.BaseOptimizer.build = build
        tf_optimizer.TFOptimizer._all_reduce_sum_gradients = (
            all_reduce_sum_gradients)
        tf_trainer.TensorFlowTrainer.make_train_function = make_train_function
        _installed = True


def _values(g):
    return g.values if hasattr(g, "indices") else g


def _check_finite(g, variable):
    """``g`` passed through ``check_numerics`` with the variable's name."""
    if g is None:
        return None
    import tensorflow as tf

    name = getattr(variable, "path", None) or getattr(variable, "name", "?")
    message = (f"tf_sparsesign: the gradient of variable '{name}' is not "
               "finite; no weight was updated in this step")
    if isinstance(g, tf.IndexedSlices):
        return tf.IndexedSlices(tf.debugging.check_numerics(g.values, message),
                                g.indices, g.dense_shape)
    return tf.debugging.check_numerics(tf.convert_to_tensor(g), message)
