"""Worker-side momentum under the vote (``worker_momentum="lion"``): a
:class:`~.interfaces.Memory` that keeps, per replica, Lion's momentum and
the error-feedback memory together.

Distributed Lion (Liu et al., NeurIPS 2024) keeps Lion's momentum on each
worker, sends the sign of each worker's Lion direction and takes the
majority vote. Here every replica keeps ``m`` (and, with error feedback,
the memory ``e``; one of each per variable, saved like the memories) and
per step, for every variable:

1. ``c = e + g``: the error-compensated gradient (``c = g`` without error
   feedback);
2. ``u = beta_1 * m + (1 - beta_1) * c``, the Lion direction; the selector
   sends the signs of its ``K`` entries of largest ``|u|`` (every sign at
   density 1: exactly Distributed Lion with a majority vote);
3. ``e <- c`` with the sent entries cleared (what was not sent waits, as
   gradient, not as direction), ``m <- beta_2 * m + (1 - beta_2) * c``;
4. the vote is applied as Lion applies its sign (the sparse SGD apply:
   ``x -= lr * vote``; the decoupled weight decay is the optimizer's own).

Error feedback on the gradient with the momentum taken of the compensated
gradient was the best of the four ways measured to compose the two (the
memory on the direction ``u``, on ``sign(u)``, on the gradient, or none:
docs/RESULTS.md, "Transformers").
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from .interfaces import Selection
from .memory import SelectionsStep
from .state import tf_variable


class LionStep(SelectionsStep):
    """One step of :class:`LionMomentum` (see the module docstring)."""

    def __init__(self, momentum: "LionMomentum"):
        super().__init__()
        self.momentum = momentum
        self.compensated: dict[int, tf.Tensor] = {}
        self.residuals: dict[int, tf.Tensor] = {}

    def _compensated(self, index: int, g) -> tf.Tensor:
        memories = self.momentum.memories
        if not memories:
            return g
        return tf.cast(tf_variable(memories[index]), g.dtype) + g

    def _direction(self, index: int, c) -> tf.Tensor:
        mom = self.momentum
        m = tf.cast(tf_variable(mom.momenta[index]), c.dtype)
        return (tf.constant(mom.beta_1, c.dtype) * m +
                tf.constant(1.0 - mom.beta_1, c.dtype) * c)

    def select(self, index: int, g) -> Selection:
        mom = self.momentum
        c = self._compensated(index, g)
        chosen = mom.selector.select(self._direction(index, c),
                                     mom.ks[index], index, False)
        self.compensated[index] = c
        if mom.memories:
            sent = tf.boolean_mask(chosen.codes, chosen.codes >= 0) // 2
            flat = tf.reshape(c, [-1])
            self.residuals[index] = tf.tensor_scatter_nd_update(
                flat, sent[:, None], tf.zeros_like(sent, c.dtype))
        self.chosen.append((index, chosen))
        return chosen

    def accumulated(self, index: int, g) -> tf.Tensor:
        return self._direction(index, self._compensated(index, g))

    def restore(self, index: int, local, values) -> None:
        """Unsent entries keep their compensated gradient (not the
        direction's value) in the memory."""
        if index in self.residuals:
            c = tf.reshape(self.compensated[index], [-1])
            self.residuals[index] = tf.tensor_scatter_nd_update(
                self.residuals[index], local[:, None], tf.gather(c, local))

    def commit(self, after) -> None:
        mom = self.momentum
        with tf.control_dependencies([after]):
            for index, c in self.compensated.items():
                if index in self.residuals:
                    var = mom.memories[index]
                    var.assign(tf.cast(tf.reshape(
                        self.residuals[index], tf.shape(c)), var.dtype))
                var = mom.momenta[index]
                m = tf.cast(tf_variable(var), c.dtype)
                var.assign(tf.cast(
                    tf.constant(mom.beta_2, c.dtype) * m +
                    tf.constant(1.0 - mom.beta_2, c.dtype) * c, var.dtype))


class LionMomentum:
    """Lion momentum and error feedback per replica (see the module
    docstring).

    Args:
      selector: the :class:`~.interfaces.Selector` (top-K, every sign).
      ks: entries each variable sends per step.
      memories: the error-feedback memories (empty: no error feedback).
      momenta: one per-replica variable per trainable variable.
      beta_1: weight of the momentum in the sent direction.
      beta_2: the momentum's decay.
    """

    def __init__(self, selector, ks: Sequence[int], memories: Sequence,
                 momenta: Sequence, beta_1: float, beta_2: float):
        self.selector = selector
        self.ks = list(ks)
        self.memories = list(memories)
        self.momenta = list(momenta)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)

    def begin(self) -> LionStep:
        return LionStep(self)
