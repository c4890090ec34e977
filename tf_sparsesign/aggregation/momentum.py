"""Worker-side momentum under the vote (``worker_momentum="lion"``): a
:class:`~.interfaces.Memory` around the error-feedback memory.

Distributed Lion (Liu et al., NeurIPS 2024) keeps Lion's momentum on each
worker, sends the sign of each worker's Lion direction and takes the
majority vote. Here every replica keeps ``m`` (one per variable, per
replica, saved like the memories) and per step:

1. ``u = beta_1 * m + (1 - beta_1) * g`` is what the inner memory selects
   from: through error feedback and top-K below density 1 (sparse
   Distributed Lion), every sign at density 1 without error feedback
   (exactly Distributed Lion with a majority vote);
2. the vote is applied as Lion applies its sign (the aggregation's sparse
   SGD apply: ``x -= lr * vote``; the optimizer's decoupled weight decay
   ``x -= lr * weight_decay * x`` is Keras' own);
3. once the step's update exists, ``m <- beta_2 * m + (1 - beta_2) * g``.

The worker's own Lion direction is what error feedback accumulates (the
memory holds the part of ``u`` not sent yet); see docs/RESULTS.md for the
measurements behind that choice.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from .interfaces import Selection
from .state import tf_variable


class LionStep:
    """One step of :class:`LionMomentum` around the inner memory's step."""

    def __init__(self, momentum: "LionMomentum", inner):
        self.momentum = momentum
        self.inner = inner
        self.grads: dict[int, tf.Tensor] = {}

    def direction(self, index: int, g) -> tf.Tensor:
        """``beta_1 * m + (1 - beta_1) * g`` of variable ``index``."""
        mom = self.momentum
        m = tf.cast(tf_variable(mom.momenta[index]), g.dtype)
        return (tf.constant(mom.beta_1, g.dtype) * m +
                tf.constant(1.0 - mom.beta_1, g.dtype) * g)

    def select(self, index: int, g) -> Selection:
        self.grads[index] = g
        return self.inner.select(index, self.direction(index, g))

    def accumulated(self, index: int, g) -> tf.Tensor:
        return self.inner.accumulated(index, self.direction(index, g))

    def give_back(self, kept) -> tf.Tensor:
        return self.inner.give_back(kept)

    def commit(self, after) -> None:
        self.inner.commit(after)
        mom = self.momentum
        with tf.control_dependencies([after]):
            for index, g in self.grads.items():
                var = mom.momenta[index]
                m = tf.cast(tf_variable(var), g.dtype)
                var.assign(tf.cast(
                    tf.constant(mom.beta_2, g.dtype) * m +
                    tf.constant(1.0 - mom.beta_2, g.dtype) * g, var.dtype))


class LionMomentum:
    """Lion momentum per replica around ``inner`` (a
    :class:`~.interfaces.Memory`; see the module docstring).

    Args:
      inner: the memory that selects (error feedback, or none).
      momenta: one per-replica variable per trainable variable.
      beta_1: weight of the momentum in the sent direction.
      beta_2: the momentum's decay.
    """

    def __init__(self, inner, momenta: Sequence, beta_1: float,
                 beta_2: float):
        self.inner = inner
        self.momenta = list(momenta)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)

    def begin(self) -> LionStep:
        return LionStep(self, self.inner.begin())
