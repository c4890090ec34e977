"""Apply: the sparse update becomes the step, per variable.

Two parts, chosen once when the optimizer is built:

* :class:`DenseGradients` — every replica builds each variable's gradient
  straight from the sparse update (a scatter into zeros of the variable's
  shape: no global vector, no split copies), and the wrapped optimizer
  applies it (any optimizer: momentum and Adam need the zeros too).
* :class:`SparseSGD` — for plain SGD (no momentum), where a zero gradient
  changes nothing: ``x[i] -= lr * update[i]`` on the touched coordinates
  only (at most M·K per step), once per host for every replica's copy; the
  optimizer then has nothing left to apply. Bit for bit what SGD would do
  with the dense gradient.
"""

from __future__ import annotations

import tensorflow as tf

from ..ops.step import scatter_sub
from .state import tf_variable


def _pieces(layout, update, slots):
    """Per present variable (``slots``: its position among the gradients,
    its slot): (position, slot, local indices, values)."""
    bounds = tf.constant([[layout.offsets[s], layout.offsets[s] +
                           layout.sizes[s]] for _, s in slots] or
                         [[0, 0]], tf.int32)
    at = tf.searchsorted(update.indices, tf.reshape(bounds, [-1]))
    out = []
    for j, (i, slot) in enumerate(slots):
        lo, hi = at[2 * j], at[2 * j + 1]
        out.append((i, slot, update.indices[lo:hi] - layout.offsets[slot],
                    update.values[lo:hi]))
    return out


class DenseGradients:
    """Per-variable dense gradients for the wrapped optimizer."""

    def host_step(self, strategy, layout, update, slots) -> None:
        """Nothing to do once per host."""

    def gradients(self, layout, update, slots, grads_and_vars) -> list:
        out = [(None, v) for _, v in grads_and_vars]
        for i, slot, local, values in _pieces(layout, update, slots):
            v = grads_and_vars[i][1]
            dense = tf.scatter_nd(local[:, None], values,
                                  [layout.sizes[slot]])
            out[i] = (tf.cast(tf.reshape(dense, v.shape), v.dtype), v)
        return out


class SparseSGD:
    """Plain SGD on the touched coordinates only (see the module
    docstring); ``learning_rate`` returns the optimizer's current rate."""

    def __init__(self, learning_rate):
        self._learning_rate = learning_rate

    def host_step(self, strategy, layout, update, slots) -> None:
        lr = self._learning_rate()
        for _, slot, local, values in _pieces(layout, update, slots):
            var = layout.variable(slot)
            step = tf.cast(values, var.dtype) * tf.cast(lr, var.dtype)
            strategy.extended.update(
                tf_variable(var), scatter_sub, args=(local, step),
                group=False)

    def gradients(self, layout, update, slots, grads_and_vars) -> list:
        return []  # applied already: the optimizer has nothing left to do

