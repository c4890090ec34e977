"""Creates the aggregation's state variables for a Keras optimizer.

The factory :class:`~tf_sparsesign.aggregation.state.AggregatorState`
expects: ``replica_local`` (one value per replica, saved by the state
itself) and ``tracked`` (saved with the optimizer's own variables).
:class:`KerasStateFactory` makes ``keras.Variable`` for Keras 3 optimizers,
:class:`TFStateFactory` plain ``tf.Variable`` for tf_keras (Keras 2) ones;
:func:`for_owner` picks one.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from ..aggregation.state import tf_variable
from . import _patches
from ._patches import keras2 as _patches_keras2


class KerasStateFactory:
    """Creates the aggregation's state variables for a Keras 3 optimizer
    (the factory :class:`~tf_sparsesign.aggregation.state.AggregatorState`
    expects), in the right strategy scope."""

    #: The optimizer's variable key (a replica's component -> variable).
    var_key = staticmethod(_patches.var_key)

    def __init__(self, owner):
        self.owner = owner

    def scope(self):
        """The strategy scope state variables must be created in: the
        current one, else the owner's (``build`` called outside it)."""
        if tf.distribute.has_strategy():
            return contextlib.nullcontext()
        strategy = _patches.optimizer_strategy(self.owner)
        return strategy.scope() if strategy is not None else \
            contextlib.nullcontext()

    def replica_local(self, reference, name: str):
        """One value per replica, shaped like ``reference``; not tracked
        (the aggregation's state saves every replica's value itself)."""
        with tf.distribute.get_strategy().extended.colocate_vars_with(
                tf_variable(reference)):
            return keras.Variable(
                initializer="zeros", shape=reference.shape,
                dtype=reference.dtype, trainable=False,
                synchronization="on_read", aggregation="only_first_replica",
                name=f"{name}_{_clean(reference.name)}")

    def tracked(self, name: str, shape=(), dtype="int64"):
        """A variable saved with the owner's own (replica 0's value)."""
        var = self.untracked(name, shape, dtype)
        _patches.track_variable(self.owner, var)
        return var

    def untracked(self, name: str, shape=(), dtype="int64"):
        """One value per replica, not tracked (never saved)."""
        return keras.Variable(
            initializer="zeros", shape=shape, dtype=dtype, trainable=False,
            synchronization="on_read", aggregation="only_first_replica",
            name=name)


class TFStateFactory(KerasStateFactory):
    """The same variables as :class:`KerasStateFactory`, as plain
    ``tf.Variable`` tracked by a tf_keras (Keras 2) optimizer."""

    # var_key and scope: tf_keras keeps the same private names as Keras 3
    # (_patches.names).

    def replica_local(self, reference, name: str):
        with tf.distribute.get_strategy().extended.colocate_vars_with(
                reference):
            return _variable(reference.shape, reference.dtype,
                             f"{name}_{_clean(reference.name)}")

    def tracked(self, name: str, shape=(), dtype="int64"):
        var = self.untracked(name, shape, dtype)
        _patches_keras2.track_variable(self.owner, var)
        return var

    def untracked(self, name: str, shape=(), dtype="int64"):
        return _variable(shape, dtype, name)


def for_owner(owner):
    """The factory for the optimizer that owns the state: Keras 3 or
    tf_keras."""
    if isinstance(owner, keras.optimizers.Optimizer):
        return KerasStateFactory(owner)
    return TFStateFactory(owner)


def _variable(shape, dtype, name):
    """Zeros, one value per replica, replica 0's saved (not trainable)."""
    return tf.Variable(
        tf.zeros(shape, tf.as_dtype(dtype)), trainable=False, name=name,
        synchronization=tf.VariableSynchronization.ON_READ,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


def _clean(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)
