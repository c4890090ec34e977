"""Keras 2 (``tf_keras``) adapter: the same three entry points for tf_keras.

tf_keras aggregates gradients in one documented, overridable method,
``Optimizer.aggregate_gradients(grads_and_vars)``, called in replica context
by ``apply_gradients`` (and by ``LossScaleOptimizer``) before anything is
written. Here it votes instead of summing, through the same aggregation as
Keras 3 (:func:`~tf_sparsesign.aggregation.build.build_aggregator`,
state variables from :class:`.state_factory.TFStateFactory`) and the same
routing decisions (:mod:`.routing`):

* the :class:`SparseSignOptimizer` wrapper for tf_keras optimizers
  (:func:`wrapper_class`; ``tf_sparsesign.SparseSignOptimizer`` returns it
  when given a tf_keras optimizer) overrides ``aggregate_gradients`` in its
  own class;
* optimizers built under a sparse-sign strategy vote through the guarded
  replacements in :mod:`._patches.keras2` (:func:`install`).

tf_keras is imported only when it is in use (:func:`in_use`): importing
this package never needs it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading

import tensorflow as tf

from .. import config as config_lib
from . import routing
from ._patches import keras2 as _patches_keras2
from .callbacks import CommunicationLogger
from .wrapping import DelegatesToInner

_LEGACY_FLAG = "TF_USE_LEGACY_KERAS"
_lock = threading.Lock()
_wrapper = None


def legacy_flag_set() -> bool:
    """``TF_USE_LEGACY_KERAS`` as TensorFlow reads it (``tf.keras`` is then
    tf_keras; ``import keras`` is still Keras 3)."""
    return os.environ.get(_LEGACY_FLAG, "") in ("1", "true", "True")


def in_use() -> bool:
    """tf_keras is imported, or ``TF_USE_LEGACY_KERAS`` is set and tf_keras
    is installed (``tf.keras`` will import it)."""
    if "tf_keras" in sys.modules:
        return True
    return legacy_flag_set() and importlib.util.find_spec("tf_keras") \
        is not None


def install_if_in_use() -> bool:
    """Routes tf_keras optimizers built under a sparse-sign strategy to the
    vote (once per process) when tf_keras is in use; True if installed."""
    if _patches_keras2.installed():
        return True
    if not in_use():
        return False
    install()
    return True


def register_if_in_use() -> None:
    """Registers the tf_keras wrapper for deserialization (``load_model``)
    when tf_keras is in use; nothing otherwise."""
    if in_use():
        wrapper_class()


def install() -> None:
    """Registers the tf_keras wrapper, lets ``CommunicationLogger`` run in
    tf_keras ``fit``, and routes tf_keras' aggregation here (idempotent)."""
    wrapper_class()
    _patches_keras2.adapt_callback(CommunicationLogger)
    _patches_keras2.install(sys.modules[__name__])


def is_tf_keras_optimizer(obj) -> bool:
    """True for any tf_keras optimizer (new or legacy) instance."""
    tf_keras = sys.modules.get("tf_keras")
    if tf_keras is None:
        return False
    return isinstance(obj, (tf_keras.optimizers.Optimizer,
                            tf_keras.optimizers.legacy.Optimizer))


# -- the routes _patches_keras2 calls ---------------------------------------

def aggregate(optimizer, grads_and_vars):
    """The voted ``grads_and_vars`` if ``optimizer`` votes (building its
    aggregator first when tf_keras aggregates before building), else None."""
    if routing.aggregator_of(optimizer) is None:
        if routing.sparse_strategy_of(optimizer) is None:
            return None
        grads_and_vars = list(grads_and_vars)
        with tf.init_scope():
            optimizer.build([v for _, v in grads_and_vars])
    return vote(routing.aggregator_of(optimizer), grads_and_vars)


def vote(agg, grads_and_vars):
    """Non-finite gradients stop the step (naming the variable) before the
    aggregation writes anything; then ``agg.aggregate``."""
    grads_and_vars = list(grads_and_vars)
    variables = [v for _, v in grads_and_vars]
    checked, checks = routing.check_finite([g for g, _ in grads_and_vars],
                                           variables)
    with tf.control_dependencies(checks):
        voted = agg.aggregate(list(zip(checked, variables)))
    agg.routed_calls += 1
    return voted


def routed(optimizer) -> int:
    agg = routing.aggregator_of(optimizer)
    return agg.routed_calls if agg is not None else 0


def votes(optimizer) -> bool:
    return routing.aggregator_of(optimizer) is not None


def under_sparse_strategy(optimizer) -> bool:
    return routing.sparse_strategy_of(optimizer) is not None


def on_build(optimizer, variables) -> None:
    if routing.aggregator_of(optimizer) is None:
        routing.on_build(optimizer, variables)


own_aggregator = routing.own_aggregator


# -- the wrapper --------------------------------------------------------------

def wrapper_class():
    """The tf_keras ``SparseSignOptimizer`` class (made, and registered for
    tf_keras deserialization, on first use)."""
    global _wrapper
    with _lock:
        if _wrapper is None:
            _wrapper = _make_wrapper_class()
    return _wrapper


def _make_wrapper_class():
    import tf_keras

    base = tf_keras.optimizers.Optimizer

    @tf_keras.saving.register_keras_serializable(package="tf_sparsesign")
    class SparseSignOptimizer(DelegatesToInner, base):
        __doc__ = _WRAPPER_DOC

        def __init__(self, optimizer, density=0.01, *, name=None,
                     **settings):
            config = config_lib.SparseSignConfig.from_settings(
                "SparseSignOptimizer", density, settings)
            if not isinstance(optimizer, base):
                optimizer = tf_keras.optimizers.get(optimizer)
            _check_inner(optimizer, base, SparseSignOptimizer)
            super().__init__(name=name or "SparseSignOptimizer")
            self.sparse_sign_config = config
            self.inner_optimizer = optimizer
            install()

        def build(self, var_list):
            super().build(var_list)
            if routing.aggregator_of(self) is None:
                strategy = (tf.distribute.get_strategy()
                            if tf.distribute.has_strategy() else
                            _patches_keras2.optimizer_strategy(
                                self.inner_optimizer))
                routing.attach(self.inner_optimizer, self, var_list,
                               self.sparse_sign_config, strategy)
            self.inner_optimizer.build(var_list)

        def aggregate_gradients(self, grads_and_vars):
            grads_and_vars = list(grads_and_vars)
            with tf.init_scope():
                self.build([v for _, v in grads_and_vars])
            return vote(self.aggregator, grads_and_vars)

        def apply_gradients(self, grads_and_vars, name=None,
                            skip_gradients_aggregation=False, **kwargs):
            grads_and_vars = list(grads_and_vars)
            if not skip_gradients_aggregation and kwargs.pop(
                    "experimental_aggregate_gradients", True):
                grads_and_vars = self.aggregate_gradients(grads_and_vars)
            return self.inner_optimizer.apply_gradients(
                grads_and_vars, name=name, skip_gradients_aggregation=True)

        @property
        def variables(self):
            return _patches_keras2.own_variables(self) + list(
                self.inner_optimizer.variables)

        @DelegatesToInner.iterations.setter
        def iterations(self, variable):
            self.inner_optimizer.iterations = variable

        lr = DelegatesToInner.learning_rate

        serialize_inner = staticmethod(tf_keras.optimizers.serialize)
        deserialize_inner = staticmethod(tf_keras.optimizers.deserialize)

    SparseSignOptimizer.__module__ = "tf_sparsesign"
    SparseSignOptimizer.__qualname__ = "SparseSignOptimizer"
    return SparseSignOptimizer


def _check_inner(optimizer, base, wrapper) -> None:
    if isinstance(optimizer, wrapper):
        raise ValueError("SparseSignOptimizer cannot wrap another "
                         "SparseSignOptimizer")
    if not isinstance(optimizer, base):
        raise TypeError(
            "tf_sparsesign: SparseSignOptimizer wraps a tf_keras optimizer "
            "from tf_keras.optimizers (e.g. tf.keras.optimizers.SGD with "
            f"TF_USE_LEGACY_KERAS=1); got {type(optimizer).__module__}."
            f"{type(optimizer).__name__}. The legacy optimizers "
            "(tf_keras.optimizers.legacy.*) are not supported.")


_WRAPPER_DOC = """Wraps a tf_keras (Keras 2) optimizer so gradients are
    aggregated by S3GD-MV: the tf_keras form of
    ``tf_sparsesign.SparseSignOptimizer``, which returns it when given a
    tf_keras optimizer.

    Per step on every replica (tf_keras' ``aggregate_gradients`` hook)::

        e = memory + g; codes = top_k_signs(e, K); memory = e - sent
        rows = all_gather(codes); g = sign(sum of rows)
        optimizer.apply_gradients(g, skip_gradients_aggregation=True)

    With ``tf.keras.optimizers.SGD(learning_rate=lr)`` inside a step is
    exactly S3GD-MV: ``x <- x - lr * vote``. tf_keras clips (``clipnorm``,
    ``clipvalue``, ``global_clipnorm`` of the inner optimizer) *after*
    aggregation, so with tf_keras clipping acts on the voted update.

    Args:
      optimizer: a ``tf_keras.optimizers.Optimizer`` instance (or its name
        or config). Legacy optimizers are not supported.
      density: and the other settings: as ``tf_sparsesign.SparseSignConfig``
        (default density 0.01).
      name: optional name.

    Example (``TF_USE_LEGACY_KERAS=1``)::

        opt = tf_sparsesign.SparseSignOptimizer(
            tf.keras.optimizers.SGD(1e-3), density=0.01)
        model.compile(optimizer=opt, loss="mse")
    """
