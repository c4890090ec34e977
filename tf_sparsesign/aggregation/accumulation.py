"""Gradient accumulation under the vote (Keras' ``gradient_accumulation_steps
= A``): each replica adds its micro-step gradients into accumulators of its
own (per-replica state, saved like the memories), and only every A-th
micro-step sends: the mean of the A gradients goes through the step (one
exchange per A micro-steps, the bytes of one step), then the accumulators
restart from zero. Up to floating-point summation order this is the step
of the A-times-larger batch.

Keras' own accumulation wraps the aggregation in a ``cond`` whose branch
cannot hold the vote's ``merge_call`` (``merge_call called while defining a
new graph``); here the micro-step sums stay local and the conditional parts
of the step are placed where no ``merge_call`` is inside them
(:meth:`.aggregator.Aggregator.aggregate` with ``active``).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from .state import tf_variable


class Accumulation:
    """Per-replica sums of the micro-steps' gradients.

    Args:
      accumulators: one per-replica variable per trainable variable.
      steps: A, micro-steps per optimizer step (at least 2).
    """

    def __init__(self, accumulators: Sequence, steps: int):
        if int(steps) < 2:
            raise ValueError(f"gradient accumulation needs at least 2 steps, "
                             f"got {steps}")
        self.accumulators = list(accumulators)
        self.steps = int(steps)

    def mean(self, grads: Sequence, indices: Sequence[int], active):
        """For each gradient (``None`` stays ``None``) of variable
        ``indices[j]``: ``total = accumulator + g``; the accumulator becomes
        0 where ``active`` (this micro-step sends) and ``total`` otherwise.
        Returns ``total / A``: what the step sends when ``active``."""
        out = []
        for g, index in zip(grads, indices):
            if g is None:
                out.append(None)
                continue
            g = tf.convert_to_tensor(g)
            var = self.accumulators[index]
            total = tf.cast(tf_variable(var), g.dtype) + g
            var.assign(tf.where(active, tf.zeros_like(total), total))
            out.append(total / tf.cast(self.steps, g.dtype))
        return out
