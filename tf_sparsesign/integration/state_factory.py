"""Creates the aggregation's state variables for a Keras 3 optimizer.

The factory :class:`~tf_sparsesign.aggregation.state.AggregatorState`
expects: ``replica_local`` (one value per replica, saved by the state
itself) and ``tracked`` (saved with the optimizer's own variables).
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from ..aggregation.state import tf_variable
from . import _patches


class KerasStateFactory:
    """Creates the aggregation's state variables for a Keras 3 optimizer
    (the factory :class:`~tf_sparsesign.aggregation.state.AggregatorState`
    expects), in the right strategy scope."""

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
        var = keras.Variable(
            initializer="zeros", shape=shape, dtype=dtype, trainable=False,
            synchronization="on_read", aggregation="only_first_replica",
            name=name)
        _patches.track_variable(self.owner, var)
        return var


def _clean(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)
