"""Apply: the sparse update becomes the step, per variable (the
:class:`~tf_sparsesign.aggregation.interfaces.Apply` contract).

One object per optimizer, chosen once when it is built:

* :class:`DenseGradients` — every replica builds each variable's gradient
  straight from the sparse update (a scatter into zeros of the variable's
  shape: no global vector, no split copies), and the wrapped optimizer
  applies it (any optimizer: momentum and Adam need the zeros too).
* :class:`SparseSGD` — for plain SGD (no momentum), where a zero gradient
  changes nothing: ``x[i] -= lr * update[i]`` on the touched coordinates
  only (at most M·K per step), once per host for every replica's copy; the
  optimizer then has nothing left to apply. Bit for bit what SGD would do
  with the dense gradient.

``present`` lists ``(position among the gradients, variable index,
gradient)`` of the gradients that are not None.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from ..ops.step import scatter_sub
from .state import tf_variable


def _pieces(layout, update, present):
    """Per present variable: (position, index, local indices, values)."""
    bounds = tf.constant([[layout.offsets[i], layout.offsets[i] +
                           layout.sizes[i]] for _, i, _ in present] or
                         [[0, 0]], tf.int32)
    at = tf.searchsorted(update.indices, tf.reshape(bounds, [-1]))
    out = []
    for j, (position, index, _) in enumerate(present):
        lo, hi = at[2 * j], at[2 * j + 1]
        out.append((position, index,
                    update.indices[lo:hi] - layout.offsets[index],
                    update.values[lo:hi]))
    return out


class DenseGradients:
    """Per-variable dense gradients for the wrapped optimizer."""

    def __init__(self, layout):
        self.layout = layout

    def host_step(self, update, present) -> None:
        """Nothing to do once per host."""

    def gradients(self, update, present, grads_and_vars) -> list:
        out = [(None, v) for _, v in grads_and_vars]
        for position, index, local, values in _pieces(self.layout, update,
                                                      present):
            v = grads_and_vars[position][1]
            dense = tf.scatter_nd(local[:, None], values,
                                  [self.layout.sizes[index]])
            out[position] = (tf.cast(tf.reshape(dense, v.shape), v.dtype), v)
        return out


def write_directly(variable, local, step) -> None:
    """``variable.flat[local] -= step`` (no strategy: tests, timing)."""
    scatter_sub(tf_variable(variable), local, step)


def strategy_writer(strategy) -> Callable:
    """A write for :class:`SparseSGD` that updates every local replica's
    copy of a variable (cross-replica context)."""
    def write(variable, local, step) -> None:
        strategy.extended.update(tf_variable(variable), scatter_sub,
                                 args=(local, step), group=False)
    return write


class SparseSGD:
    """Plain SGD on the touched coordinates only (see the module
    docstring).

    Args:
      learning_rate: returns the optimizer's current rate.
      layout: the :class:`~.layout.Layout`.
      write: ``write(variable, local, step)`` subtracts ``step`` at flat
        indices ``local`` of every copy of ``variable`` on this host
        (:func:`strategy_writer`, or :func:`write_directly`).
    """

    def __init__(self, learning_rate: Callable, layout,
                 write: Callable = write_directly):
        self._learning_rate = learning_rate
        self.layout = layout
        self.write = write

    def host_step(self, update, present) -> None:
        lr = self._learning_rate()
        for _, index, local, values in _pieces(self.layout, update, present):
            var = self.layout.variable(index)
            step = tf.cast(values, var.dtype) * tf.cast(lr, var.dtype)
            self.write(var, local, step)

    def gradients(self, update, present, grads_and_vars) -> list:
        return []  # applied already: the optimizer has nothing left to do
